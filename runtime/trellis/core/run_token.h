// trellis/core/run_token.h — RunToken: a handle on a run that other threads may use (Trio's
// TrioToken).
//
// Get one inside the run with lowlevel::current_run_token() and hand it to a foreign thread;
// that thread can then queue work for the run-loop thread, or (thread/from_thread.h) call
// into the run and wait for the answer. Tokens are cheap to copy and may outlive the run:
// after the run ended every call throws RunFinishedError, never crashes.
//
// A token does not keep a run alive: a task that waits only for a foreign thread's
// run_sync_soon (no deadline, no I/O, no worker job) is a deadlock to the run loop. Wait with
// a deadline, or register the thread with EpollBackend::add_external_source().
//
//   trellis::RunToken token = trellis::lowlevel::current_run_token();
//   std::thread([token] { token.run_sync_soon([] { event.set(); }); }).detach();
#pragma once

#include <functional>
#include <memory>

namespace trellis {

namespace internal {
class RunTokenState;
}

class RunToken {
 public:
  // An empty token: every call throws UsageError.
  RunToken() = default;
  explicit RunToken(std::shared_ptr<internal::RunTokenState> state) : state_(std::move(state)) {}

  // Any thread, including the run-loop thread. Queues fn to run on the run-loop thread, outside
  // every task, soon (before the loop next waits); closures run in the order they were
  // queued. fn must not block; an exception escaping it is a bug and fails the run with
  // InternalError (Trio: TrioInternalError). Throws RunFinishedError once the run has ended
  // (fn is then destroyed unrun). Thread-safe, but it locks a mutex and allocates, so it is
  // not async-signal-safe: from a signal handler, use Backend::wake_from_any_thread().
  void run_sync_soon(std::function<void()> fn) const;
  // Any thread. False once the run has ended (a later run_sync_soon would throw).
  bool run_active() const noexcept;

  friend bool operator==(const RunToken& a, const RunToken& b) noexcept {
    return a.state_ == b.state_;
  }

 private:
  std::shared_ptr<internal::RunTokenState> state_;
};

}  // namespace trellis
