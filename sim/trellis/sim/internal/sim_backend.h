// trellis/sim/internal/sim_backend.h — the simulator's Backend: the world's event queue (the
// one place virtual time advances) and the simulated network behind the same IoFacet and
// NetworkFacet the real epoll backend offers, so production code cannot tell.
//
// Handles are numbers the world hands out (never reused within a run). Everything runs on
// the run-loop thread; nothing here reads a real clock or an address.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <tuple>
#include <utility>
#include <vector>

#include "trellis/base/prng.h"
#include "trellis/core/backend.h"
#include "trellis/core/file_system_facet.h"
#include "trellis/core/io_facet.h"
#include "trellis/core/network_facet.h"
#include "trellis/core/schedule_policy.h"
#include "trellis/core/task.h"
#include "trellis/sim/internal/event_queue.h"
#include "trellis/sim/internal/host_state.h"
#include "trellis/sim/internal/sim_clock.h"
#include "trellis/sim/internal/sim_processes.h"
#include "trellis/sim/internal/sim_signals.h"
#include "trellis/sim/internal/sim_threads.h"
#include "trellis/sim/network_config.h"

namespace trellis::sim {
class Trace;
}

namespace trellis::sim::internal {

// What the backend needs from the world.
struct WorldView {
  // The host the running task belongs to (nullptr: outside every host).
  std::function<HostState*()> current_host;
  // True if the running task belongs to a crashed incarnation of its host.
  std::function<bool()> caller_is_stale;
  // The host with this numeric address, or nullptr.
  std::function<HostState*(const std::string& address)> host_by_address;
  // Addresses a name resolves to (empty: unknown name).
  std::function<std::vector<std::string>(const std::string& name)> resolve_name;
  // Crashes a host (Host::crash): a terminating signal's default action.
  std::function<void(HostState&)> crash_host;
};

class SimBackend final : public Backend, public IoFacet, public NetworkFacet {
 public:
  SimBackend(SimClock& clock, SchedulePolicy& policy, Prng& prng, NetworkConfig config,
             WorldView world, Trace* trace);
  ~SimBackend() override;

  // Backend.
  std::string_view name() const override { return "sim"; }
  bool wait_and_dispatch(Duration timeout) override;
  void wake_from_any_thread() noexcept override {}
  bool has_pending_sources() const override { return !events_.empty(); }
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
  // The world's simulated disks (owned by the world).
  void set_file_system(FileSystemFacet* file_system) noexcept { file_system_ = file_system; }

  // IoFacet.
  void wait_readable(IoHandle handle) override;
  void wait_writable(IoHandle handle) override;
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

  // Pipes: {read end, write end}, 64 KiB of buffer, on the calling host; bytes move at once
  // (no virtual latency). Errors as the kernel's: EPIPE writing with no reader, end of file
  // reading with no writer.
  std::pair<IoHandle, IoHandle> make_pipe();

  // World-facing.
  EventQueue& events() noexcept { return events_; }
  // Schedules fn at virtual time t (the world's timers, fault plans).
  std::uint64_t at(Time t, std::function<void()> fn) { return events_.schedule(t, std::move(fn)); }
  // The host's sockets vanish (no FIN), its programs are killed, its signal receivers
  // close; its waiters must already have been cancelled.
  void host_crashed(HostState& host);
  // Host::send_signal's delivery.
  SimSignals& sim_signals() noexcept { return signals_; }
  // Link faults between two hosts (by index); one_way: only from -> to.
  void set_partitioned(std::uint32_t from, std::uint32_t to, bool partitioned);
  void clog(std::uint32_t from, std::uint32_t to, Time until);
  // Packets from -> to take [low, high] instead of the config's latency; high == 0 restores
  // the config's.
  void set_link_latency(std::uint32_t from, std::uint32_t to, Duration low, Duration high);
  std::uint64_t messages_delivered() const noexcept { return messages_delivered_; }
  std::size_t open_sockets() const noexcept { return sockets_.size(); }

 private:
  struct Segment {
    std::vector<std::byte> bytes;
    bool fin = false;
    Time due{};
    std::uint64_t id = 0;  // for the trace's message arrows
  };
  struct Datagram {
    SocketAddress from;
    std::vector<std::byte> bytes;
  };
  enum class State { kFresh, kListening, kConnecting, kConnected };
  struct Socket {
    std::int64_t id = -1;
    HostState* host = nullptr;
    std::uint64_t incarnation = 0;
    int type = 0;  // SOCK_STREAM or SOCK_DGRAM
    State state = State::kFresh;
    // Invariant: closed_by_user sockets are invisible to handles and stay only while their
    // outgoing segments drain (TCP delivers data and FIN after close()).
    bool closed_by_user = false;
    SocketAddress local;  // port 0 until bound
    SocketAddress peer;
    // Listening.
    int backlog = 0;
    std::deque<std::int64_t> accept_queue;
    // Connected. peer_id: the other end's socket id (-1 before connection).
    std::int64_t peer_id = -1;
    std::deque<std::byte> received;
    bool fin_received = false;
    bool shut_read = false;
    bool shut_write = false;
    // Pending error (ECONNREFUSED, ECONNRESET, ETIMEDOUT): reported by the next operation.
    int error = 0;
    bool reset = false;  // got a reset: sends fail with EPIPE after the first error
    // Sent, not yet delivered, in order; at most one delivery event pending.
    std::deque<Segment> outgoing;
    std::size_t outgoing_bytes = 0;
    bool delivery_scheduled = false;
    Time last_due{};
    // Connecting: when the attempt gives up.
    Time connect_deadline{};
    // Datagram.
    std::deque<Datagram> datagrams;
    // At most one task waits to read and one to write (BusyResourceError otherwise).
    lowlevel::Task* reader = nullptr;
    lowlevel::Task* writer = nullptr;
  };
  struct Pipe {
    std::deque<std::byte> bytes;
    bool read_open = true;
    bool write_open = true;
    lowlevel::Task* reader = nullptr;
    lowlevel::Task* writer = nullptr;
  };
  struct PipeEnd {
    std::shared_ptr<Pipe> pipe;
    bool write_end = false;
  };
  static constexpr std::size_t kPipeCapacity = 65536;
  PipeEnd* find_pipe(std::int64_t id);
  void pipe_wait(PipeEnd& end, bool for_write);
  // Wakes the task waiting in that slot, if any (with error, if non-null).
  void wake_pipe_waiter(lowlevel::Task*& slot, std::exception_ptr error = nullptr);

  struct Link {
    bool partitioned = false;
    Time clogged_until{};
    // Invariant: latency_min <= latency_max; latency_max == 0 means the config's latency.
    Duration latency_min{};
    Duration latency_max{};
  };

  // The caller's host; throws UsageError outside every host.
  HostState& caller(const char* operation);
  // The caller's open socket for handle, or nullptr (then *error is EBADF or ENETDOWN).
  Socket* lookup(IoHandle handle, int* error, const char* operation);
  Socket* find(std::int64_t id);
  Link& link(std::uint32_t from, std::uint32_t to) { return links_[{from, to}]; }
  bool link_up(const HostState& from, const HostState& to, Time now);
  // A packet's delay from -> to (either may be nullptr: the config's latency).
  Duration latency(const HostState* from, const HostState* to);
  // The host an address belongs to (self for 127.0.0.1), or nullptr.
  HostState* host_at(const SocketAddress& address, HostState* self) const;
  int bind_port(Socket& socket, std::uint16_t port);
  void unbind(Socket& socket);
  std::size_t window_left(const Socket& socket);

  bool readable(const Socket& socket);
  bool writable(const Socket& socket);
  // Wakes the socket's waiters whose condition now holds.
  void poke(Socket& socket);
  void wait(IoHandle handle, bool for_write);

  void enqueue(Socket& socket, Segment segment);
  void schedule_delivery(Socket& socket);
  void deliver(std::int64_t id);
  void reset_peer_of(Socket& socket);
  void syn_arrives(std::int64_t client_id, SocketAddress target, std::uint64_t incarnation);
  void erase_if_drained(Socket& socket);
  void erase(std::int64_t id);

  SimClock& clock_;
  SchedulePolicy& policy_;
  Prng& prng_;
  NetworkConfig config_;
  WorldView world_;
  Trace* trace_;
  FileSystemFacet* file_system_ = nullptr;
  SimThreads threads_{prng_};
  EventQueue events_;
  std::map<std::int64_t, std::unique_ptr<Socket>> sockets_;
  std::int64_t next_handle_ = 3;  // as fds: 0-2 are taken
  // (host index, type, port) -> socket id, for bound sockets.
  std::map<std::tuple<std::uint32_t, int, std::uint16_t>, std::int64_t> ports_;
  std::map<std::uint32_t, std::uint16_t> next_ephemeral_;
  std::map<std::pair<std::uint32_t, std::uint32_t>, Link> links_;
  std::map<std::int64_t, PipeEnd> pipe_ends_;
  std::size_t waiters_ = 0;
  std::uint64_t messages_delivered_ = 0;
  std::uint64_t next_message_id_ = 1;
  // Last: its programs' pipes live in pipe_ends_.
  SimProcesses processes_{*this, world_.current_host};
  SimSignals signals_{
      SimSignals::Hooks{world_.current_host, world_.caller_is_stale, world_.crash_host}, trace_};
};

}  // namespace trellis::sim::internal
