// trellis/signal/signal_receiver.h — catching POSIX signals in a run (Trio's
// open_signal_receiver).
//
//   trellis::open_signal_receiver({SIGHUP, SIGTERM}, [&](trellis::SignalReceiver& signals) {
//     for (int signo : signals) {           // blocks until a signal arrives; never ends
//       if (signo == SIGTERM) return;
//       reload_configuration();
//     }
//   });
//
// While the block runs, the listed signals are caught: the process-wide handler only notes
// the signal and wakes the run; the receiver hands it out in arrival order, once per signal
// number however often it arrived before being received. On exit the previous handlers come
// back, and a signal received by the block but never taken out of it is raised again, so it
// is handled as if the block had not been there (no signal slips through the gap). Blocks
// nest: the innermost one listening for a signal gets it. A signal is caught by one run at a
// time: another run's block for the same signal throws UsageError.
//
// Where signals come from is the run backend's SignalFacet (core/signal_facet.h). On the
// real backend: the real process's signals, as above. In a simulated World (sim/world.h)
// the block catches the signals the world sends to the host its task runs on
// (Host::send_signal) with the same semantics, and no process-wide handler is installed:
// without a receiver a simulated signal takes its default action on the host (ignored for
// SIGCHLD, SIGURG, SIGWINCH, SIGCONT; the host crashes for the rest), and a crash of the
// host closes its blocks (their pending signals die with it). A World's driver, which runs
// on no host, cannot open a block (UsageError).
//
// A task receiving from the block's receiver must finish before the block exits (start it
// in a nursery inside the block).
//
// SIGINT needs no receiver: trellis::run turns it into KeyboardInterrupt (see run.h). A
// receiver for SIGINT takes precedence while it is open.
#pragma once

#include <cstddef>
#include <deque>
#include <initializer_list>
#include <type_traits>
#include <utility>
#include <vector>

#include "trellis/core/task.h"

namespace trellis {

class SignalFacet;

class SignalReceiver {
 public:
  SignalReceiver(const SignalReceiver&) = delete;
  SignalReceiver& operator=(const SignalReceiver&) = delete;

  // Waits for the next signal and returns its number. A checkpoint. Throws BusyResourceError
  // if another task is receiving from this receiver, UsageError once the block has exited.
  int receive();
  // Signals that arrived and are not yet received (distinct numbers).
  std::size_t pending_count() const noexcept { return pending_.size(); }
  // The signals this receiver listens for.
  const std::vector<int>& signals() const noexcept { return signals_; }

  // `for (int signo : receiver)`: receive() forever (leave with break, return or a
  // cancel scope).
  class iterator {
   public:
    using value_type = int;
    using difference_type = std::ptrdiff_t;
    int operator*() const { return receiver_->receive(); }
    iterator& operator++() { return *this; }
    void operator++(int) {}
    friend bool operator==(const iterator&, std::default_sentinel_t) { return false; }

   private:
    friend class SignalReceiver;
    explicit iterator(SignalReceiver* receiver) : receiver_(receiver) {}
    SignalReceiver* receiver_;
  };
  iterator begin() { return iterator(this); }
  std::default_sentinel_t end() { return {}; }

 private:
  template <class F>
  friend decltype(auto) open_signal_receiver(std::initializer_list<int> signals, F&& body);
  friend class SignalFacet;

  explicit SignalReceiver(std::initializer_list<int> signals);
  void close() noexcept;
  // A signal arrived (the facet, on the loop thread).
  void add(int signo);
  // The facet dropped this receiver (its simulated host crashed): see SignalFacet::abandon.
  void abandon() noexcept;
  // Wakes a task still in receive() with UsageError(why); closed from now on.
  void finish_closing(const char* why) noexcept;

  std::vector<int> signals_;
  // Invariant: non-null from the constructor's end until close() or abandon().
  SignalFacet* facet_ = nullptr;
  std::deque<int> pending_;
  lowlevel::Task* waiter_ = nullptr;
  bool receiving_ = false;
  bool closed_ = false;
};

// Catches `signals` while body(SignalReceiver&) runs; returns what body returns. Throws
// std::invalid_argument for an empty list or a signal that cannot be caught (SIGKILL,
// SIGSTOP, a number out of range), UsageError outside a task, if another run catches one
// of the signals, or in a simulated World's driver (no host). Not a checkpoint by itself.
template <class F>
decltype(auto) open_signal_receiver(std::initializer_list<int> signals, F&& body) {
  SignalReceiver receiver(signals);
  struct Closer {
    SignalReceiver& receiver;
    ~Closer() { receiver.close(); }
  } closer{receiver};
  return std::forward<F>(body)(receiver);
}

}  // namespace trellis
