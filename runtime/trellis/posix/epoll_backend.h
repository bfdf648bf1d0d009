// trellis/posix/epoll_backend.h — the real Backend: an epoll instance plus an eventfd.
//
// It waits with a timeout and can be woken from any thread (and from a signal handler)
// through the eventfd. Its facets: io() (EpollIo: edge-triggered readiness waits on file
// descriptors, see posix/internal/epoll_io.h for why edge-triggered and how wait_readable
// keeps level-triggered meaning) and network() (PosixNetwork: nonblocking socket calls,
// getaddrinfo on worker threads whose results return through a ClosureQueue drained in
// wait_and_dispatch), threads() (PosixThreads: a pool of reused worker threads for
// to_thread, results through the same queue) and file_system() (PosixFileSystem: blocking
// POSIX file calls on those workers). When no task waits for I/O and no wake-up is pending, a
// zero-timeout poll returns without a system call, which keeps a busy run loop cheap; so does
// the first one after a blocking wait that brought events (the loop's poll between a task
// that read a message and the task it woke: a request/response exchange then costs a
// blocking wait per message, not a wait and a poll); the next one polls.
//
// SIGPIPE: a write to a pipe whose reader is gone is EPIPE, never the signal. Sockets get it
// from send(MSG_NOSIGNAL); for pipes the thread that writes one through this backend has
// SIGPIPE blocked in its own signal mask from its first such write until the backend is
// destroyed (posix/internal/sigpipe_block.h). The process's signal dispositions are not
// touched, and children start with an empty mask.
//
//   trellis::posix::EpollBackend backend;
//   trellis::run(main, {.backend = &backend});   // the default when RunOptions::backend is null
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>

#include <sys/epoll.h>

#include "trellis/core/backend.h"

namespace trellis {
class ClosureQueue;
}

namespace trellis::posix {

namespace internal {
class EpollIo;
class PosixFileSystem;
class PosixNetwork;
class PosixProcesses;
class PosixThreads;
}  // namespace internal

class EpollBackend final : public Backend {
 public:
  EpollBackend();
  ~EpollBackend() override;
  EpollBackend(const EpollBackend&) = delete;
  EpollBackend& operator=(const EpollBackend&) = delete;

  std::string_view name() const override { return "epoll"; }
  bool wait_and_dispatch(Duration timeout) override;
  void wake_from_any_thread() noexcept override;
  bool wait_for_readiness(Duration timeout) override;
  // True while a task waits for I/O, a name lookup or a worker thread's job, or a foreign
  // thread is registered.
  bool has_pending_sources() const override;
  BackendStatistics statistics() const override;
  IoFacet* io() noexcept override;
  NetworkFacet* network() noexcept override;
  FileSystemFacet* file_system() noexcept override;
  ThreadFacet* threads() noexcept override;
  ProcessFacet* processes() noexcept override;

  // A foreign thread that may call wake_from_any_thread() later (a RunToken holder, a worker
  // thread) registers itself, so an idle run waits for it instead of reporting a deadlock.
  void add_external_source() noexcept { external_sources_.fetch_add(1); }
  void remove_external_source() noexcept { external_sources_.fetch_sub(1); }

 private:
  // wait_and_dispatch() past its fast path: the epoll wait and the dispatch of its events.
  [[gnu::noinline]] bool wait_and_dispatch_events(Duration timeout);
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  // Invariant: wake_pending_ is true from a wake_from_any_thread() until the loop has
  // drained the eventfd.
  std::atomic<bool> wake_pending_{false};
  std::atomic<std::size_t> external_sources_{0};
  // Set by wait_for_readiness() when the epoll instance was readable; the next
  // wait_and_dispatch() then takes the events even if no task waits for I/O. (The host's
  // queue orders the helper thread's store before the loop thread's load.)
  std::atomic<bool> readiness_seen_{false};
  // A zero-timeout wait_and_dispatch() returns at once, without a system call: when no task
  // waits for I/O (and no wake-up or readiness is pending), and once right after a blocking
  // wait that brought events (see fresh_wait_).
  bool skip_zero_wait() noexcept;
  // One epoll wait (retried on EINTR); the event count, or -1 with errno.
  int wait_for_events(epoll_event* events, int size, Duration timeout);
  bool have_epoll_pwait2_ = true;  // (else epoll_wait: see wait_for_events)
  // The last wait blocked (a nonzero timeout) and returned events, fewer than it could take;
  // no wait has been made or skipped since.
  bool fresh_wait_ = false;
  // Work finished on other threads (name lookups), run on the loop thread after a wake-up.
  // Shared with the worker threads, which may outlive this backend; closed in the destructor.
  std::shared_ptr<ClosureQueue> completions_;
  std::unique_ptr<internal::EpollIo> io_;
  std::unique_ptr<internal::PosixNetwork> network_;
  std::unique_ptr<internal::PosixThreads> threads_;
  std::unique_ptr<internal::PosixFileSystem> file_system_;
  std::unique_ptr<internal::PosixProcesses> processes_;
};

}  // namespace trellis::posix
