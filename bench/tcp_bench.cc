// TCP on loopback: a Trellis echo server (serve_tcp + SocketStream, trellis::run on the epoll
// backend) beside a single-threaded Boost.Asio echo server (callback style, one io_context),
// both driven by the same load client, so the ratios compare servers.
//
//   build/bench/trellis_bench --benchmark_filter=TcpEcho --benchmark_repetitions=3
//   build/bench/trellis_bench --benchmark_filter=TcpIdle    # 10k connections, ~20k fds
//
// Groups:
//   TcpEcho  64-byte messages echoed back (TrellisGuest: the Trellis server as the guest of
//            an Asio io_context, trellis/asio.h); the server runs on its own thread, the client in
//            the benchmark loop (one iteration = one round trip per connection). With 1
//            connection the client does blocking send/recv round trips in sequence; with
//            100 it keeps one message in flight on every connection (epoll, nonblocking),
//            sending the next as soon as an echo is complete. Counters: round_trips (per
//            second of wall time) and server_cpu_per_round_trip (the server thread's CPU
//            time / round trips: less sensitive than wall time to other load on the machine).
//   TcpIdle  10,000 idle connections held by the server, which runs in a fresh child
//            process: its RSS growth from before the first connection to when all are
//            accepted and waiting for data, per connection. Needs ~10k descriptors in each
//            process: the soft RLIMIT_NOFILE is raised to the hard limit, and if that is too
//            low, as many connections as fit are used (the `connections` counter says how
//            many). Excluded from ctest's bench_smoke (see bench/CMakeLists.txt).
//
// Debian's Boost 1.74 Asio under g++ 12 in C++20 mode needs <utility> before
// <boost/asio.hpp>.
#include "tcp_bench.h"

#include <utility>
// (Keep <utility> first: see above.)
#include <arpa/inet.h>
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <boost/asio.hpp>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <fstream>
#include <functional>
#include <future>
#include <memory>
#include <sstream>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "trellis/asio.h"
#include "trellis/base/assert.h"
#include "trellis/fakes.h"
#include "trellis/trellis.h"

namespace trellis_bench {
namespace {

using namespace std::chrono_literals;
namespace asio = boost::asio;
using asio::ip::tcp;

constexpr std::size_t kMessageSize = 64;
constexpr int kEchoConnectionsMax = 100;
constexpr long kIdleConnectionsMax = 10'000;
// Descriptors kept free for everything else when sizing the idle benchmark to the limit.
constexpr long kDescriptorReserve = 64;
// How long an idle-connections child waits for its connections before it reports an error
// (the parent may have failed to open them all): the parent's pclose() never hangs.
constexpr auto kIdleChildTimeout = std::chrono::seconds(60);

[[noreturn]] void throw_errno(const char* operation) {
  throw std::system_error(errno, std::generic_category(), operation);
}

// Raises the soft RLIMIT_NOFILE to the hard limit; returns the soft limit now in force.
long raise_descriptor_limit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) throw_errno("getrlimit(RLIMIT_NOFILE)");
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) throw_errno("setrlimit(RLIMIT_NOFILE)");
  }
  return limit.rlim_cur == RLIM_INFINITY ? kIdleConnectionsMax + kDescriptorReserve
                                         : static_cast<long>(limit.rlim_cur);
}

// ---- The load client (plain blocking / epoll sockets, the same for both servers) ---------

int connect_loopback(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw_errno("socket");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
    const int error = errno;
    ::close(fd);
    throw std::system_error(error, std::generic_category(), "connect to 127.0.0.1");
  }
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

class EchoClient {
 public:
  // Connects `connections` sockets to 127.0.0.1:port (nonblocking and in an epoll set when
  // there is more than one).
  EchoClient(std::uint16_t port, int connections) {
    TRELLIS_ASSERT(connections >= 1 && connections <= kEchoConnectionsMax);
    message_.fill('x');
    try {
      for (int i = 0; i < connections; ++i) fds_.push_back(connect_loopback(port));
      if (connections > 1) {
        epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
        if (epoll_fd_ < 0) throw_errno("epoll_create1");
        received_.assign(fds_.size(), 0);
        for (std::size_t i = 0; i < fds_.size(); ++i) {
          if (::fcntl(fds_[i], F_SETFL, O_NONBLOCK) != 0) throw_errno("fcntl(O_NONBLOCK)");
          epoll_event event{};
          event.events = EPOLLIN;
          event.data.u64 = i;
          if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fds_[i], &event) != 0) throw_errno("epoll_ctl");
        }
      }
    } catch (...) {
      close_all();
      throw;
    }
  }
  EchoClient(const EchoClient&) = delete;
  EchoClient& operator=(const EchoClient&) = delete;
  ~EchoClient() { close_all(); }

  // One connection: send a message, block until its echo is back.
  void round_trip() {
    send_message(fds_[0]);
    std::size_t got = 0;
    while (got < kMessageSize) {
      const ssize_t n = ::recv(fds_[0], buffer_.data() + got, kMessageSize - got, 0);
      if (n <= 0) throw std::runtime_error("echo server closed the connection");
      got += static_cast<std::size_t>(n);
    }
  }

  // Many connections: put one message in flight on each.
  void start_pipeline() {
    for (const int fd : fds_) send_message(fd);
  }
  // Waits until `count` echoes are complete; each completed connection is sent its next
  // message at once (so one message stays in flight per connection).
  void complete_round_trips(long count) { pump(count, true); }
  // Waits for the messages still in flight (one per connection).
  void drain_pipeline() { pump(static_cast<long>(fds_.size()), false); }

 private:
  void send_message(int fd) {
    // 64 bytes always fit in an empty socket buffer: one send.
    const ssize_t n = ::send(fd, message_.data(), kMessageSize, MSG_NOSIGNAL);
    if (n != static_cast<ssize_t>(kMessageSize)) throw std::runtime_error("short send");
  }

  void pump(long count, bool resend) {
    constexpr int kEventsMax = kEchoConnectionsMax;
    epoll_event events[kEventsMax];
    long done = 0;
    while (done < count) {
      const int ready = ::epoll_wait(epoll_fd_, events, kEventsMax, -1);
      if (ready < 0) {
        if (errno == EINTR) continue;
        throw_errno("epoll_wait");
      }
      for (int e = 0; e < ready; ++e) {
        const std::size_t i = events[e].data.u64;
        const ssize_t n =
            ::recv(fds_[i], buffer_.data(), kMessageSize - received_[i], MSG_DONTWAIT);
        if (n < 0 && errno == EAGAIN) continue;
        if (n <= 0) throw std::runtime_error("echo server closed the connection");
        received_[i] += static_cast<std::size_t>(n);
        if (received_[i] < kMessageSize) continue;
        received_[i] = 0;
        ++done;
        if (resend) send_message(fds_[i]);
      }
    }
  }

  void close_all() noexcept {
    for (const int fd : fds_) ::close(fd);
    fds_.clear();
    if (epoll_fd_ >= 0) ::close(epoll_fd_);
    epoll_fd_ = -1;
  }

  std::vector<int> fds_;
  // Invariant: received_[i] < kMessageSize is the part of connection i's echo read so far.
  std::vector<std::size_t> received_;
  int epoll_fd_ = -1;
  std::array<char, kMessageSize> message_{};
  std::array<char, kMessageSize> buffer_{};
};

// ---- Servers -------------------------------------------------------------------------------

// Asio: a session object per connection, read -> write -> read callbacks.
class AsioSession : public std::enable_shared_from_this<AsioSession> {
 public:
  explicit AsioSession(tcp::socket socket) : socket_(std::move(socket)) {}
  void read() {
    socket_.async_read_some(
        asio::buffer(buffer_),
        [self = shared_from_this()](boost::system::error_code error, std::size_t n) {
          if (!error) self->write(n);
        });
  }

 private:
  void write(std::size_t n) {
    asio::async_write(socket_, asio::buffer(buffer_.data(), n),
                      [self = shared_from_this()](boost::system::error_code error, std::size_t) {
                        if (!error) self->read();
                      });
  }

  tcp::socket socket_;
  std::array<char, kEchoBufferSize> buffer_;
};

class AsioEchoServer {
 public:
  // Listens on 127.0.0.1 (ephemeral port) in `io`; on_accept runs after each connection's
  // session has started reading.
  explicit AsioEchoServer(asio::io_context& io, std::function<void()> on_accept = {})
      : acceptor_(io, tcp::endpoint(asio::ip::address_v4::loopback(), 0)),
        on_accept_(std::move(on_accept)) {
    accept();
  }
  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }

 private:
  void accept() {
    acceptor_.async_accept([this](boost::system::error_code error, tcp::socket socket) {
      if (error) return;
      socket.set_option(tcp::no_delay(true));  // as SocketStream does
      std::make_shared<AsioSession>(std::move(socket))->read();
      if (on_accept_) on_accept_();
      accept();
    });
  }

  tcp::acceptor acceptor_;
  std::function<void()> on_accept_;
};

using Listeners = TrellisServerThread::Listeners;

void serve_tcp_echo(trellis::TaskStatus<Listeners>& status) {
  trellis::serve_tcp(trellis_echo<trellis::SocketStream>, 0,
                     {.host = "127.0.0.1", .task_status = &status});
}

class TrellisTcpServerThread final : public TrellisServerThread {
 public:
  TrellisTcpServerThread() : TrellisServerThread(serve_tcp_echo) {}
};

// The same server as the guest of an Asio io_context on the server thread.
class TrellisGuestServerThread final : public TrellisServerThread {
 public:
  TrellisGuestServerThread() : TrellisServerThread(serve_tcp_echo, /*guest=*/true) {}
};

class AsioServerThread final : public ServerThread {
 public:
  AsioServerThread() {
    start([this] {
      try {
        server_ = std::make_unique<AsioEchoServer>(io_);
        ready_.set_value(server_->port());
      } catch (...) {
        ready_.set_exception(std::current_exception());
        return;
      }
      io_.run();
    });
  }
  ~AsioServerThread() {
    io_.stop();
    join();
  }

 private:
  asio::io_context io_{1};  // concurrency hint 1: one thread, Asio may skip its locking
  std::unique_ptr<AsioEchoServer> server_;
};

// ---- TcpEcho -------------------------------------------------------------------------------

template <class Server>
void tcp_echo(benchmark::State& state) {
  const int connections = static_cast<int>(state.range(0));
  try {
    Server server;
    EchoClient client(server.port(), connections);
    if (connections == 1) {
      client.round_trip();  // warm-up: the server has accepted and started the handler
    } else {
      client.start_pipeline();
      client.complete_round_trips(connections);
    }
    measure_round_trips(state, server, static_cast<std::size_t>(connections),
                        "server_cpu_per_round_trip", [&] {
                          if (connections == 1) {
                            client.round_trip();
                          } else {
                            client.complete_round_trips(connections);
                          }
                        });
    if (connections > 1) client.drain_pipeline();
  } catch (const std::exception& error) {
    state.SkipWithError(error.what());
  }
}

void BM_Trellis_TcpEcho(benchmark::State& state) {
  tcp_echo<TrellisTcpServerThread>(state);
}
BENCHMARK(BM_Trellis_TcpEcho)->ArgName("connections")->Arg(1)->Arg(100)->UseRealTime();

// The same server as a guest of an Asio io_context (guest mode's cost: issue 21 asks <= 1.3x).
void BM_TrellisGuest_TcpEcho(benchmark::State& state) {
  tcp_echo<TrellisGuestServerThread>(state);
}
BENCHMARK(BM_TrellisGuest_TcpEcho)->ArgName("connections")->Arg(1)->Arg(100)->UseRealTime();

void BM_Asio_TcpEcho(benchmark::State& state) {
  tcp_echo<AsioServerThread>(state);
}
BENCHMARK(BM_Asio_TcpEcho)->ArgName("connections")->Arg(1)->Arg(100)->UseRealTime();

// ---- TcpIdle -------------------------------------------------------------------------------
//
// The child process (this binary, re-executed with kIdleConnectionsChildFlag) opens its
// server, prints "port <port>", waits until <count> connections are accepted and waiting for
// data, and prints "ok <rss_kib> <heap_bytes>": the growth since just before the first
// connection (or "error <text>").

long vm_rss_kib() {
  std::ifstream status("/proc/self/status");
  std::string word;
  while (status >> word) {
    if (word == "VmRSS:") {
      long kib = 0;
      status >> kib;
      return kib;
    }
    status.ignore(1 << 10, '\n');
  }
  return -1;
}

long long heap_bytes() {
  const struct mallinfo2 info = ::mallinfo2();
  return static_cast<long long>(info.uordblks + info.hblkhd);
}

struct Footprint {
  long rss_kib = 0;
  long long heap = 0;
  static Footprint take() { return {vm_rss_kib(), heap_bytes()}; }
};

void announce_port(std::uint16_t port) {
  std::printf("port %u\n", static_cast<unsigned>(port));
  std::fflush(stdout);
}

void print_growth(const Footprint& before, const Footprint& idle) {
  std::printf("ok %ld %lld\n", idle.rss_kib - before.rss_kib, idle.heap - before.heap);
}

int idle_child_trellis(long count) {
  Footprint before;
  Footprint idle;
  long accepted = 0;
  bool complete = false;
  trellis::posix::EpollBackend backend;
  trellis::run(
      [&] {
        trellis::open_nursery([&](trellis::Nursery& nursery) {
          auto listeners = nursery.start<std::vector<trellis::SocketListener*>>(
              [&](trellis::TaskStatus<std::vector<trellis::SocketListener*>>& status) {
                trellis::serve_tcp(
                    [&](trellis::SocketStream& stream) {
                      ++accepted;
                      trellis_echo(stream);
                    },
                    0, {.host = "127.0.0.1", .task_status = &status});
              });
          before = Footprint::take();
          announce_port(listeners.at(0)->local_address().port());
          trellis::move_on_after(kIdleChildTimeout, [&] {
            while (accepted < count) trellis::sleep(1ms);
            trellis::fakes::wait_all_tasks_blocked();  // every handler waits in receive_some
            complete = true;
          });
          if (complete) idle = Footprint::take();
          nursery.cancel_scope().cancel();
        });
      },
      {.backend = &backend});
  if (!complete) {
    std::printf("error only %ld of %ld connections came\n", accepted, count);
    return 1;
  }
  print_growth(before, idle);
  return 0;
}

int idle_child_asio(long count) {
  Footprint before;
  Footprint idle;
  long accepted = 0;
  bool timed_out = false;
  asio::io_context io{1};
  asio::steady_timer timeout(io, kIdleChildTimeout);
  timeout.async_wait([&](boost::system::error_code error) {
    if (error) return;  // cancelled: every connection came
    timed_out = true;
    io.stop();
  });
  // Each session has started its read when on_accept runs.
  AsioEchoServer server(io, [&] {
    if (++accepted == count) {
      idle = Footprint::take();
      timeout.cancel();
      io.stop();
    }
  });
  before = Footprint::take();
  announce_port(server.port());
  io.run();
  if (timed_out) {
    std::printf("error only %ld of %ld connections came\n", accepted, count);
    return 1;
  }
  print_growth(before, idle);
  return 0;
}

void measure_idle_connections(benchmark::State& state, const char* mode) {
  long connections = 0;
  long rss_kib = 0;
  long long heap = 0;
  std::string failure;
  try {
    const long limit = raise_descriptor_limit();
    connections = std::min(kIdleConnectionsMax, limit - kDescriptorReserve);
    if (connections <= 0) throw std::runtime_error("RLIMIT_NOFILE too low");
    char exe[4096];
    const ssize_t length = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (length <= 0) throw std::runtime_error("cannot find /proc/self/exe");
    exe[length] = '\0';
    const std::string command = "'" + std::string(exe) + "' " +
                                std::string(kIdleConnectionsChildFlag) + mode + ":" +
                                std::to_string(connections);
    for (auto _ : state) {
      FILE* child = ::popen(command.c_str(), "r");
      if (child == nullptr) throw std::runtime_error("popen failed");
      std::vector<int> clients;
      clients.reserve(static_cast<std::size_t>(connections));
      char line[512];
      std::string result;
      try {
        unsigned port = 0;
        if (std::fgets(line, sizeof line, child) == nullptr ||
            std::sscanf(line, "port %u", &port) != 1) {
          throw std::runtime_error(std::string("child did not report its port: ") + line);
        }
        for (long i = 0; i < connections; ++i) {
          clients.push_back(connect_loopback(static_cast<std::uint16_t>(port)));
        }
        if (std::fgets(line, sizeof line, child) != nullptr) result = line;
      } catch (...) {
        for (const int fd : clients) ::close(fd);
        ::pclose(child);
        throw;
      }
      for (const int fd : clients) ::close(fd);
      ::pclose(child);
      std::istringstream in(result);
      std::string status;
      in >> status >> rss_kib >> heap;
      if (status != "ok" || !in) throw std::runtime_error("child failed: " + result);
    }
  } catch (const std::exception& error) {
    failure = error.what();
  }
  if (!failure.empty()) {
    state.SkipWithError(failure.c_str());
    return;
  }
  state.counters["connections"] = static_cast<double>(connections);
  state.counters["KiB_per_connection"] = static_cast<double>(rss_kib) / connections;
  state.counters["heap_B_per_connection"] = static_cast<double>(heap) / connections;
}

void BM_Trellis_TcpIdleConnections(benchmark::State& state) {
  measure_idle_connections(state, "trellis");
}
BENCHMARK(BM_Trellis_TcpIdleConnections)->Unit(benchmark::kMillisecond)->Iterations(1);

void BM_Asio_TcpIdleConnections(benchmark::State& state) {
  measure_idle_connections(state, "asio");
}
BENCHMARK(BM_Asio_TcpIdleConnections)->Unit(benchmark::kMillisecond)->Iterations(1);

}  // namespace

double ServerThread::cpu_seconds() const {
  timespec now{};
  ::clock_gettime(cpu_clock_, &now);
  return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) * 1e-9;
}

void ServerThread::start(std::function<void()> body) {
  thread_ = std::thread(std::move(body));
  port_ = ready_.get_future().get();  // rethrows a failed start
  if (::pthread_getcpuclockid(thread_.native_handle(), &cpu_clock_) != 0) {
    throw std::runtime_error("pthread_getcpuclockid failed");
  }
}

void ServerThread::join() {
  if (thread_.joinable()) thread_.join();
}

TrellisServerThread::TrellisServerThread(Serve serve, bool guest) : serve_(std::move(serve)) {
  TRELLIS_ASSERT(serve_ != nullptr);
  start([this, guest] { guest ? serve_as_guest() : this->serve(); });
}

TrellisServerThread::~TrellisServerThread() {
  try {
    token_.run_sync_soon([this] { scope_->cancel(); });
  } catch (const trellis::RunFinishedError&) {
    // The run already ended (it failed): nothing to stop.
  }
  join();
}

void TrellisServerThread::serve_main() {
  trellis::open_nursery([this](trellis::Nursery& nursery) {
    const Listeners listeners = nursery.start<Listeners>(serve_);
    scope_ = &nursery.cancel_scope();
    token_ = trellis::lowlevel::current_run_token();
    TRELLIS_ASSERT(!listeners.empty());
    ready_.set_value(listeners.at(0)->local_address().port());
  });
}

void TrellisServerThread::serve() {
  try {
    trellis::posix::EpollBackend backend;
    trellis::run([this] { serve_main(); }, {.backend = &backend});
  } catch (...) {
    failed(std::current_exception());
  }
}

void TrellisServerThread::serve_as_guest() {
  try {
    asio::io_context io{1};
    std::exception_ptr outcome;
    trellis::asio_host::start_guest_run(
        io, [this] { serve_main(); }, [&](std::exception_ptr error) { outcome = error; });
    io.run();
    if (outcome != nullptr) std::rethrow_exception(outcome);
  } catch (...) {
    failed(std::current_exception());
  }
}

void TrellisServerThread::failed(std::exception_ptr error) {
  try {
    ready_.set_exception(error);
  } catch (const std::future_error&) {
    std::fprintf(stderr, "trellis server failed after it started\n");
  }
}

int idle_connections_child(std::string_view argument) {
  const std::size_t colon = argument.find(':');
  long count = 0;
  if (colon == std::string_view::npos ||
      std::from_chars(argument.data() + colon + 1, argument.data() + argument.size(), count).ec !=
          std::errc{} ||
      count <= 0) {
    std::printf("error bad argument\n");
    return 2;
  }
  const std::string_view mode = argument.substr(0, colon);
  try {
    raise_descriptor_limit();
    if (mode == "trellis") return idle_child_trellis(count);
    if (mode == "asio") return idle_child_asio(count);
  } catch (const std::exception& error) {
    std::printf("error %s\n", error.what());
    return 1;
  }
  std::printf("error unknown mode\n");
  return 2;
}

}  // namespace trellis_bench
