// trellis/core/signal_facet.h — where the signals an open_signal_receiver block catches come
// from.
//
// open_signal_receiver (signal/signal_receiver.h) registers its receiver here, one signal
// number at a time, and the facet hands every signal that arrives to the innermost receiver
// listening for it (SignalFacet::deliver). Two implementations:
// - the run's process-wide hub (core/internal/signal_hub.h): real POSIX signals through
//   sigaction. It is what a run uses when its backend offers no facet (Backend::signals()
//   returns nullptr: the real backend), so that real signals reach the real process.
// - the simulator's (sim/internal/sim_signals.h): the world sends signals to a simulated
//   host (Host::send_signal) and they reach that host's receivers; the process's real signal
//   dispositions are never touched.
//
// Like the other facets it knows nothing of receive() or cancellation: those live in
// SignalReceiver. Every member runs on the run-loop thread, in a task.
#pragma once

namespace trellis {

class SignalReceiver;

// The name of a signal ("SIGINT"), or "unknown signal". The buffer it returns is the calling
// thread's, valid until its next call.
const char* signal_name(int signo) noexcept;
// Throws std::invalid_argument unless signo is a signal a receiver can catch: 1 ..
// SignalFacet::kSignalLimit - 1, and neither SIGKILL nor SIGSTOP.
void check_signal_catchable(int signo);

class SignalFacet {
 public:
  // Signal numbers are 1 .. kSignalLimit - 1 (1..64 on Linux).
  static constexpr int kSignalLimit = 65;

  virtual ~SignalFacet() = default;

  // From now on signo goes to receiver (the innermost for signo until it is removed; blocks
  // nest). signo is catchable (the caller checked). Throws UsageError if signo cannot be
  // caught here (another run catches it; no simulated host), OSError if the OS refuses.
  virtual void add_receiver(int signo, SignalReceiver& receiver) = 0;
  // Undoes add_receiver (receivers leave innermost first).
  virtual void remove_receiver(int signo, SignalReceiver& receiver) noexcept = 0;
  // Hands out signals that arrived but were not handed to a receiver yet (a receiver about
  // to close calls it, so that no signal slips through the switch-over).
  virtual void flush() = 0;
  // signo, received by a receiver that closed before taking it out, arrives again at the
  // calling task's process: the innermost receiver still open for it gets it, else the
  // signal's default action happens (as raise(3)).
  virtual void raise(int signo) noexcept = 0;
  // A receiver's task parks waiting for a signal / stops waiting. The real hub counts these
  // as pending sources of the run (a real signal may come at any time); the simulator does
  // not (only a task or an event of the world can send one, so a run where nothing else can
  // happen is deadlocked).
  virtual void waiter_added() noexcept = 0;
  virtual void waiter_removed() noexcept = 0;

 protected:
  // signo arrived for receiver (innermost for signo): pending until received; wakes the
  // task receiving. Loop thread.
  static void deliver(SignalReceiver& receiver, int signo);
  // The receiver's process is gone (a simulated host crashed): the receiver closes without
  // giving its pending signals anywhere, and a task still waiting in receive() is woken with
  // UsageError. The facet has already forgotten the receiver. Never throws.
  static void abandon(SignalReceiver& receiver) noexcept;
};

}  // namespace trellis
