// trellis/sim/internal/sim_backend.h — SimBackend: the simulator's Backend, behind the same
// IoFacet and NetworkFacet the real epoll backend offers, so production code cannot tell.
//
// A thin composition, split by job as posix/ is (one part per file):
//   SimEventLoop    the world's event queue (the one place virtual time advances) and the
//                   tasks parked on handles (sim_event_loop.h);
//   SimLinks        partitions, clogs and per-link latency (sim_links.h);
//   SimSocketTable  every host's sockets and bound ports, protocol-free calls
//                   (sim_socket_table.h);
//   SimTcp, SimUdp  the two protocols (sim_tcp.h, sim_udp.h);
//   SimPipes        the hosts' pipes (sim_pipes.h);
//   SimResolver     names (sim_resolver.h);
// plus the threads, processes and signals facets (sim_threads.h, sim_processes.h,
// sim_signals.h). Routing: one HandleTable says which part owns a handle, so the IoFacet
// calls (wait, read, write, close) reach a pipe end or a socket; a socket call is checked
// once, by the prologue of world_view.h (caller, host liveness, handle, in that order), then
// goes to TCP or UDP by the socket's type.
//
// Handles are numbers the world hands out (never reused within a run). Everything runs on
// the run-loop thread; nothing here reads a real clock or an address.
#pragma once

#include <signal.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "trellis/base/prng.h"
#include "trellis/core/backend.h"
#include "trellis/core/file_system_facet.h"
#include "trellis/core/io_facet.h"
#include "trellis/core/network_facet.h"
#include "trellis/core/schedule_policy.h"
#include "trellis/sim/internal/event_queue.h"
#include "trellis/sim/internal/handle_table.h"
#include "trellis/sim/internal/host_state.h"
#include "trellis/sim/internal/sim_clock.h"
#include "trellis/sim/internal/sim_event_loop.h"
#include "trellis/sim/internal/sim_links.h"
#include "trellis/sim/internal/sim_pipes.h"
#include "trellis/sim/internal/sim_processes.h"
#include "trellis/sim/internal/sim_resolver.h"
#include "trellis/sim/internal/sim_signals.h"
#include "trellis/sim/internal/sim_socket_table.h"
#include "trellis/sim/internal/sim_tcp.h"
#include "trellis/sim/internal/sim_threads.h"
#include "trellis/sim/internal/sim_udp.h"
#include "trellis/sim/internal/world_view.h"
#include "trellis/sim/network_config.h"

namespace trellis::sim {
class Trace;
}

namespace trellis::sim::internal {

class SimBackend final : public Backend, public IoFacet, public NetworkFacet {
 public:
  SimBackend(SimClock& clock, SchedulePolicy& policy, Prng& prng, NetworkConfig config,
             WorldView world, Trace* trace);
  ~SimBackend() override;

  // Backend.
  std::string_view name() const override { return "sim"; }
  bool wait_and_dispatch(Duration timeout) override { return loop_.wait_and_dispatch(timeout); }
  void wake_from_any_thread() noexcept override {}
  bool has_pending_sources() const override { return !loop_.events().empty(); }
  BackendStatistics statistics() const override;
  IoFacet* io() noexcept override { return this; }
  NetworkFacet* network() noexcept override { return this; }
  FileSystemFacet* file_system() noexcept override { return file_system_; }
  // to_thread: tasks with a virtual latency (sim_threads.h).
  ThreadFacet* threads() noexcept override { return &threads_; }
  // Fake programs and pipes (sim_processes.h).
  ProcessFacet* processes() noexcept override { return &processes_; }
  // Signals the world sends to hosts (sim_signals.h); never the process's real ones.
  SignalFacet* signals() noexcept override { return &signals_; }
  // Derived from the world's seed without drawing from its stream (no run changes).
  std::optional<std::uint64_t> library_seed() const override { return library_seed_; }
  void set_library_seed(std::uint64_t seed) noexcept { library_seed_ = seed; }
  // The world's simulated disks (owned by the world).
  void set_file_system(FileSystemFacet* file_system) noexcept { file_system_ = file_system; }

  // IoFacet: any handle, a socket or a pipe end. wait_* throw, besides what IoFacet says,
  // OSError(EBADF) for a handle that is not the caller's and OSError(ENETDOWN) when the
  // caller's host is down, as EpollIo throws OSError for a descriptor epoll refuses.
  void wait_readable(IoHandle handle) override { wait(handle, false); }
  void wait_writable(IoHandle handle) override { wait(handle, true); }
  void notify_closing(IoHandle handle) override;
  int close(IoHandle handle) override;
  IoResult<std::size_t> read(IoHandle handle, void* buffer, std::size_t size) override;
  IoResult<std::size_t> write(IoHandle handle, const void* data, std::size_t size) override;

  // NetworkFacet.
  IoResult<IoHandle> socket(int domain, int type, int protocol) override;
  int bind(IoHandle socket, const SocketAddress& address) override;
  int listen(IoHandle socket, int backlog) override;
  IoResult<AcceptedSocket> accept(IoHandle socket) override;
  int connect(IoHandle socket, const SocketAddress& address) override;
  IoResult<int> socket_error(IoHandle socket) override;
  IoResult<std::size_t> send(IoHandle socket, const void* data, std::size_t size) override;
  IoResult<std::size_t> recv(IoHandle socket, void* buffer, std::size_t size) override;
  IoResult<std::size_t> send_to(IoHandle socket, const void* data, std::size_t size,
                                const SocketAddress& to) override;
  IoResult<ReceivedDatagram> receive_from(IoHandle socket, void* buffer, std::size_t size) override;
  int shutdown(IoHandle socket, int how) override;
  int set_option(IoHandle socket, int level, int name, int value) override;
  IoResult<int> get_option(IoHandle socket, int level, int name) override;
  IoResult<SocketAddress> local_address(IoHandle socket) override;
  IoResult<SocketAddress> peer_address(IoHandle socket) override;
  IoResult<std::vector<SocketAddress>> resolve(const std::string& host, std::uint16_t port,
                                               int family, int type) override;

  // Pipes on the calling host (sim_pipes.h), which must be up (the caller checks). Throws
  // UsageError outside every host.
  std::pair<IoHandle, IoHandle> make_pipe() { return pipes_.make(world_.caller("pipe")); }
  std::pair<IoHandle, IoHandle> make_pipe(HostState& read_host, HostState& write_host) {
    return pipes_.make(read_host, write_host);
  }

  // World-facing.
  EventQueue& events() noexcept { return loop_.events(); }
  // Schedules fn at virtual time t (the world's timers, fault plans).
  std::uint64_t at(Time t, std::function<void()> fn) { return loop_.at(t, std::move(fn)); }
  // The host's sockets and pipes vanish (no FIN), its programs are killed, its signal
  // receivers close; its waiters must already have been cancelled.
  void host_crashed(HostState& host);
  // A planned kKillProcess: SIGKILL to program `which` (mod the running ones, in spawn order)
  // of host. Returns its pid, 0 if the host runs no program.
  int kill_program(const HostState& host, std::uint32_t which) {
    return processes_.kill_running(host, which, SIGKILL);
  }
  // Host::send_signal's delivery.
  SimSignals& sim_signals() noexcept { return signals_; }
  // Link faults between two hosts (by index); one_way: only from -> to.
  void set_partitioned(std::uint32_t from, std::uint32_t to, bool partitioned) {
    links_.set_partitioned(from, to, partitioned);
  }
  void clog(std::uint32_t from, std::uint32_t to, Time until) { links_.clog(from, to, until); }
  // Packets from -> to take [low, high] instead of the config's latency; high == 0 restores
  // the config's.
  void set_link_latency(std::uint32_t from, std::uint32_t to, Duration low, Duration high) {
    links_.set_latency(from, to, low, high);
  }
  std::uint64_t messages_delivered() const noexcept {
    return tcp_.messages_delivered() + udp_.messages_delivered();
  }
  std::size_t open_sockets() const noexcept { return sockets_.size(); }

 private:
  std::uint64_t library_seed_ = 0;
  void wait(IoHandle handle, bool for_write);
  void wait_socket(SimSocket& socket, bool for_write);
  // Wakes the socket's waiters whose condition now holds (by its protocol).
  void poke(SimSocket& socket);
  void notify_socket_closing(SimSocket& socket);
  bool is_pipe(IoHandle handle) const noexcept {
    return handles_.kind(handle.value) == HandleKind::kPipe;
  }

  NetworkConfig config_;
  WorldView world_;
  Trace* trace_;
  FileSystemFacet* file_system_ = nullptr;
  SimThreads threads_;
  HandleTable handles_;
  SimEventLoop loop_;
  SimLinks links_;
  SimSocketTable sockets_{handles_, world_};
  SimTcp tcp_;
  SimUdp udp_;
  SimPipes pipes_{loop_, handles_, world_};
  SimResolver resolver_{config_, world_};
  // Last: its programs' pipes live in pipes_.
  SimProcesses processes_{*this, world_.current_host, world_.host_named, world_.bind_current_task};
  SimSignals signals_{
      SimSignals::Hooks{world_.current_host, world_.caller_is_stale, world_.crash_host}, trace_};
};

}  // namespace trellis::sim::internal
