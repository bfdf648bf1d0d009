// trellis/sim/internal/sim_signals.h — the simulator's SignalFacet: signals the world sends
// to a simulated host (Host::send_signal) reach the open_signal_receiver blocks of that
// host's tasks, or take their default action on it. No sigaction is ever called: the real
// process's signal dispositions stay as they were.
//
// Fault model. A signal to a host is delivered at once, in the order sent:
// - a host that is down (crashed, not restarted) drops it;
// - else the innermost receiver of the host's current incarnation listening for it gets it
//   (pending there until received; sent again before being received, it is received once);
// - else the default action: SIGCHLD, SIGURG, SIGWINCH and SIGCONT are ignored; the stop
//   signals (SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU) are ignored too, since stopping a host is
//   not simulated; every other signal terminates the host's process, which the world models
//   as a crash of the host (Host::crash: unsynced disk data is lost, a conservative fault).
//   SIGINT too: a host's main is not a trellis::run, so there is no KeyboardInterrupt.
// A crash closes every receiver of the host; their pending signals are lost with the
// process. Every outcome is a trace event, so the trace hash covers it. A receiver's task
// waiting for a signal is not a pending source of the run: a run in which only the world
// could still send one, and no task or event of it can run, is deadlocked.
//
// Deterministic: receivers sit in vectors per signal number in the order they opened;
// nothing depends on an address (pointers are compared for identity only).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "trellis/core/signal_facet.h"
#include "trellis/sim/internal/host_state.h"

namespace trellis::sim {
class Trace;
}

namespace trellis::sim::internal {

class SimSignals final : public SignalFacet {
 public:
  struct Hooks {
    // The host the running task belongs to (nullptr: outside every host).
    std::function<HostState*()> current_host;
    // True if the running task belongs to a crashed incarnation of its host.
    std::function<bool()> caller_is_stale;
    // The default action of a terminating signal: crash the host.
    std::function<void(HostState&)> terminate;
  };

  SimSignals(Hooks hooks, Trace* trace);

  // SignalFacet. add_receiver throws UsageError outside a host's task.
  void add_receiver(int signo, SignalReceiver& receiver) override;
  void remove_receiver(int signo, SignalReceiver& receiver) noexcept override;
  void flush() override {}
  void raise(int signo) noexcept override;
  void waiter_added() noexcept override {}
  void waiter_removed() noexcept override {}

  // World-facing. signo is 1 .. kSignalLimit - 1 (the caller checked). Delivers it to host
  // as described above. May crash the host (then it returns normally).
  void send(HostState& host, int signo);
  // The host crashed: its receivers close (SignalFacet::abandon).
  void host_crashed(const HostState& host) noexcept;
  // Receivers open on host (all incarnations), for tests and reports.
  std::size_t receivers_open(const HostState& host) const;

 private:
  struct Entry {
    SignalReceiver* receiver = nullptr;
    std::uint32_t host = 0;  // HostState::index
    std::uint64_t incarnation = 0;
  };

  // The default action of signo on host (no receiver).
  void default_action(HostState& host, int signo);

  Hooks hooks_;
  Trace* trace_;
  // Per signal number, the receivers listening for it, innermost (latest opened) last.
  // Invariant: a receiver appears at most once per signal number.
  std::array<std::vector<Entry>, kSignalLimit> entries_{};
};

}  // namespace trellis::sim::internal
