// trellis/core/internal/signal_hub.h — how POSIX signals reach a run. Internal.
//
// The run's SignalFacet (core/signal_facet.h) when its backend offers none, as the real
// backend: real signals of the real process. A run that handles a signal (SIGINT for
// KeyboardInterrupt, or any signal an open_signal_receiver block listens for) routes it to its
// SignalHub: the process-wide handler then only counts the signal in the hub and wakes the run's
// backend, both async-signal-safe. The run loop drains the hub after each wait and hands every
// signal that arrived to the innermost receiver listening for it, else to the KeyboardInterrupt
// logic. A signal is routed to at most one run at a time; nested receivers in one run
// stack (the innermost gets the signal).
#pragma once

#include <signal.h>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "trellis/core/backend.h"
#include "trellis/core/signal_facet.h"

namespace trellis {
class SignalReceiver;
}

namespace trellis::internal {

class SignalHub final : public SignalFacet {
 public:
  // `on_unclaimed(signo)` is told, on the loop thread, of a signal that arrived while no
  // receiver listened for it (SIGINT: KeyboardInterrupt).
  SignalHub(Backend& backend, std::function<void(int)> on_unclaimed);
  SignalHub(const SignalHub&) = delete;
  SignalHub& operator=(const SignalHub&) = delete;
  // Restores every handler still installed; waits for handlers in flight on other threads.
  ~SignalHub() override;

  // Installs the process-wide handler for signo, routed here (counted: the previous action
  // comes back when the last route goes). Throws UsageError if another run routes signo,
  // std::invalid_argument for a signal that cannot be caught, OSError if sigaction fails.
  void route(int signo);
  void unroute(int signo) noexcept;
  bool routed(int signo) const noexcept { return routes_[signo] > 0; }

  // SignalFacet. Receivers, innermost last per signal; add_receiver routes the signal.
  void add_receiver(int signo, SignalReceiver& receiver) override;
  void remove_receiver(int signo, SignalReceiver& receiver) noexcept override;
  void flush() override { dispatch(); }
  // ::raise(signo): the handler now installed (an outer receiver's route, or the one that
  // was there before) gets it.
  void raise(int signo) noexcept override;
  // A receiver's task is parked waiting for a signal (a pending source of the run).
  void waiter_added() noexcept override { ++waiters_; }
  void waiter_removed() noexcept override { --waiters_; }
  bool has_waiters() const noexcept { return waiters_ > 0; }

  // True if a signal arrived since the last dispatch. Cheap: one relaxed load.
  bool pending() const noexcept { return arrived_.load(std::memory_order_relaxed); }
  // Loop thread: hands every signal that arrived to its receiver or to on_unclaimed. A
  // signal that arrived several times since the last dispatch is handed over once (as Trio).
  void dispatch();

  // The handler's half (async-signal-safe).
  void note(int signo) noexcept;

 private:
  Backend& backend_;
  std::function<void(int)> on_unclaimed_;
  std::atomic<bool> arrived_{false};
  std::array<std::atomic<std::uint32_t>, kSignalLimit> counts_{};
  std::array<int, kSignalLimit> routes_{};
  std::array<struct sigaction, kSignalLimit> previous_{};
  std::array<std::vector<SignalReceiver*>, kSignalLimit> receivers_{};
  std::size_t waiters_ = 0;
};

}  // namespace trellis::internal
