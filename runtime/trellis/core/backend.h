// trellis/core/backend.h — the run loop's one route to the outside world (I/O readiness and
// cross-thread wake-ups).
//
// The loop calls wait_and_dispatch() once per iteration. Operating-system services arrive as
// separate small facets (core/io_facet.h: readiness and closing of handles;
// core/network_facet.h: sockets and names; core/file_system_facet.h: files and directories;
// core/thread_facet.h: blocking work off the loop; core/process_facet.h: child processes
// and pipes; core/signal_facet.h: signals), each asked
// for and absent (nullptr) when a backend does not offer it. Implementations: EpollBackend
// (posix/), the simulator's backend.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "trellis/core/time.h"

namespace trellis {

class FileSystemFacet;
class IoFacet;
class NetworkFacet;
class ProcessFacet;
class SignalFacet;
class ThreadFacet;

struct BackendStatistics {
  std::size_t tasks_waiting_io = 0;  // tasks parked on a readiness wait
  std::size_t pending_sources = 0;   // registrations that could still deliver an event
};

class Backend {
 public:
  virtual ~Backend() = default;

  // "epoll", "sim", ...
  virtual std::string_view name() const = 0;
  // Wait up to `timeout` (Duration::max(): no limit) for I/O readiness or a wake-up, and
  // reschedule every task whose I/O became ready. Returns false iff the timeout expired with
  // nothing delivered. Run-loop thread only; not a checkpoint; never throws Cancelled.
  virtual bool wait_and_dispatch(Duration timeout) = 0;
  // Make a concurrent or future wait_and_dispatch() return promptly. The only member that
  // any thread (and a signal handler) may call.
  virtual void wake_from_any_thread() noexcept = 0;
  // True if some registration (a task waiting for I/O, an outstanding worker thread, a
  // foreign thread holding a RunToken) could still wake a task. With no runnable task, no
  // pending deadline and no pending source, the run is deadlocked.
  virtual bool has_pending_sources() const = 0;
  virtual BackendStatistics statistics() const = 0;

  // A deterministic backend (the simulator's) gives libraries that draw randomness of their
  // own (OpenSSL: trellis::tls) a seed derived from the run's, so that a run stays
  // reproducible from its seed. Real backends: nullopt (the system's entropy).
  virtual std::optional<std::uint64_t> library_seed() const { return std::nullopt; }

  // Guest runs (trellis/guest.h): block up to `timeout` (Duration::max(): no limit) until a
  // wait_and_dispatch(0) would deliver something or wake_from_any_thread() is called, and
  // deliver nothing. Called on a helper thread while the loop's thread makes no other call
  // on the backend. A backend that cannot do this (the default) cannot host a guest run:
  // returns false at once.
  virtual bool wait_for_readiness(Duration timeout) {
    (void)timeout;
    return false;
  }

  // Facets (see above); lowlevel::current_io() / current_network() ask for them and throw
  // UsageError naming the backend when it lacks one.
  virtual IoFacet* io() noexcept { return nullptr; }
  virtual NetworkFacet* network() noexcept { return nullptr; }
  virtual FileSystemFacet* file_system() noexcept { return nullptr; }
  // Blocking work off the loop (core/thread_facet.h).
  virtual ThreadFacet* threads() noexcept { return nullptr; }
  // Child processes and pipes (core/process_facet.h).
  virtual ProcessFacet* processes() noexcept { return nullptr; }
  // Signals for open_signal_receiver (core/signal_facet.h), offered by a backend that
  // simulates them (the simulator's). Absent (the real backend), the run catches the
  // process's real signals itself (core/internal/signal_hub.h).
  virtual SignalFacet* signals() noexcept { return nullptr; }
};

}  // namespace trellis
