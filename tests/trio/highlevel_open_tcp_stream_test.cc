// Port of Trio's src/trio/_tests/test_highlevel_open_tcp_stream.py.
//
// The Happy Eyeballs scheduling tests run open_tcp_stream against a scripted network, as
// Trio's do with its custom hostname resolver and socket factory: ScenarioBackend is a
// Backend whose NetworkFacet resolves "test.example.com" to a list of addresses and whose
// connects take a scripted (virtual) time and then succeed or fail, under a MockClock that
// autojumps. open_tcp_stream is the production code, untouched: it only sees the facets.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <chrono>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "trellis/fakes/mock_clock.h"
#include "trellis/io/tcp.h"
#include "trellis/trellis.h"

namespace trellis {
namespace {

using namespace std::chrono_literals;

enum class Outcome { kSuccess, kError };

struct Target {
  std::string ip;
  Duration delay;
  Outcome outcome;
};

class ScenarioBackend final : public Backend, public IoFacet, public NetworkFacet {
 public:
  struct FakeSocket {
    int family = 0;
    std::string ip;  // set by connect
    bool closed = false;
    bool succeeded = false;
    Duration delay{};
    Outcome outcome = Outcome::kError;
  };

  ScenarioBackend(std::uint16_t port, std::vector<Target> targets, std::set<int> families)
      : port_(port), targets_(std::move(targets)), families_(std::move(families)) {}

  // Backend: nothing real ever happens; all waits are sleeps on the MockClock.
  std::string_view name() const override { return "scenario"; }
  bool wait_and_dispatch(Duration) override { return false; }
  void wake_from_any_thread() noexcept override {}
  bool has_pending_sources() const override { return false; }
  BackendStatistics statistics() const override { return {}; }
  IoFacet* io() noexcept override { return this; }
  NetworkFacet* network() noexcept override { return this; }

  // IoFacet.
  void wait_readable(IoHandle) override { sleep_forever(); }
  void wait_writable(IoHandle handle) override {
    FakeSocket& s = sockets_.at(handle.value);
    sleep(s.delay);  // the connect takes this long; cancellable like a real wait
  }
  void notify_closing(IoHandle) override {}
  int close(IoHandle handle) override {
    sockets_.at(handle.value).closed = true;
    return 0;
  }
  IoResult<std::size_t> read(IoHandle, void*, std::size_t) override { return {0, EAGAIN}; }
  IoResult<std::size_t> write(IoHandle, const void*, std::size_t) override { return {0, EAGAIN}; }

  // NetworkFacet.
  IoResult<IoHandle> socket(int domain, int type, int) override {
    EXPECT_EQ(type, SOCK_STREAM);
    if (families_.count(domain) == 0) return {{}, EAFNOSUPPORT};
    const std::int64_t id = next_handle_++;
    sockets_[id].family = domain;
    return {IoHandle{id}, 0};
  }
  int bind(IoHandle, const SocketAddress&) override { return 0; }
  int listen(IoHandle, int) override { return 0; }
  IoResult<AcceptedSocket> accept(IoHandle) override { return {{}, EINVAL}; }
  int connect(IoHandle handle, const SocketAddress& address) override {
    FakeSocket& s = sockets_.at(handle.value);
    EXPECT_EQ(address.port(), port_);
    EXPECT_EQ(address.family(), s.family);
    s.ip = address.host();
    connect_times_[s.ip] = current_time() - start_;
    for (const Target& target : targets_) {
      if (target.ip == s.ip) {
        s.delay = target.delay;
        s.outcome = target.outcome;
      }
    }
    return EINPROGRESS;
  }
  IoResult<int> socket_error(IoHandle handle) override {
    FakeSocket& s = sockets_.at(handle.value);
    s.succeeded = s.outcome == Outcome::kSuccess;
    return {s.succeeded ? 0 : ECONNREFUSED, 0};
  }
  IoResult<std::size_t> send(IoHandle, const void*, std::size_t) override { return {0, EAGAIN}; }
  IoResult<std::size_t> recv(IoHandle, void*, std::size_t) override { return {0, EAGAIN}; }
  IoResult<std::size_t> send_to(IoHandle, const void*, std::size_t, const SocketAddress&) override {
    return {0, EAGAIN};
  }
  IoResult<ReceivedDatagram> receive_from(IoHandle, void*, std::size_t) override {
    return {{}, EAGAIN};
  }
  int shutdown(IoHandle, int) override { return 0; }
  int set_option(IoHandle, int, int, int) override { return 0; }
  IoResult<int> get_option(IoHandle, int level, int name) override {
    if (level == SOL_SOCKET && name == SO_TYPE) return {SOCK_STREAM, 0};
    return {0, 0};
  }
  IoResult<SocketAddress> local_address(IoHandle) override { return {{}, 0}; }
  IoResult<SocketAddress> peer_address(IoHandle) override { return {{}, 0}; }
  IoResult<std::vector<SocketAddress>> resolve(const std::string& host, std::uint16_t port,
                                               int family, int type) override {
    EXPECT_EQ(host, "test.example.com");
    EXPECT_EQ(port, port_);
    EXPECT_EQ(family, AF_UNSPEC);
    EXPECT_EQ(type, SOCK_STREAM);
    start_ = current_time();
    std::vector<SocketAddress> out;
    for (const Target& target : targets_) out.push_back(*SocketAddress::parse(target.ip, port));
    return {out, 0};
  }

  // Trio's Scenario.check: every socket that lost is closed.
  void check(const std::string& winner) const {
    for (const auto& [id, s] : sockets_) {
      if (s.ip != winner || winner.empty()) {
        EXPECT_TRUE(s.closed) << s.ip;
      }
    }
  }
  std::map<std::string, double> connect_times() const {
    std::map<std::string, double> out;
    for (const auto& [ip, t] : connect_times_) out[ip] = seconds(t);
    return out;
  }
  const std::map<std::int64_t, FakeSocket>& sockets() const { return sockets_; }
  Time start() const { return start_; }

  static double seconds(Duration d) { return std::chrono::duration<double>(d).count(); }

 private:
  std::uint16_t port_;
  std::vector<Target> targets_;
  std::set<int> families_;
  std::int64_t next_handle_ = 100;
  std::map<std::int64_t, FakeSocket> sockets_;
  std::map<std::string, Duration> connect_times_;
  Time start_{};
};

struct Result {
  std::string winner;  // empty on error
  std::string error;   // what() of the OSError
  int error_errno = 0;
  double elapsed = 0;  // virtual seconds
  std::map<std::string, double> connect_times;
};

Result run_scenario(std::uint16_t port, std::vector<Target> targets,
                    Duration delay = kHappyEyeballsDelayDefault,
                    std::set<int> families = {AF_INET, AF_INET6}) {
  ScenarioBackend backend(port, std::move(targets), std::move(families));
  fakes::MockClock clock;
  clock.set_autojump_threshold(Duration::zero());
  Result result;
  run(
      [&] {
        const Time start = current_time();
        try {
          SocketStream stream = open_tcp_stream("test.example.com", port, delay);
          result.winner = backend.sockets().at(stream.socket().handle().value).ip;
          backend.check(result.winner);
        } catch (const OSError& error) {
          result.error = error.what();
          result.error_errno = error.errno_value();
          backend.check("");
        }
        result.elapsed = ScenarioBackend::seconds(current_time() - start);
      },
      {.clock = &clock, .backend = &backend});
  result.connect_times = backend.connect_times();
  return result;
}

using Times = std::map<std::string, double>;

TEST(TrioOpenTcpStream, FormatHostPort) {
  EXPECT_EQ(format_host_port("127.0.0.1", 80), "127.0.0.1:80");
  EXPECT_EQ(format_host_port("example.com", 443), "example.com:443");
  EXPECT_EQ(format_host_port("::1", 80), "[::1]:80");
}

TEST(TrioOpenTcpStream, RealSocketSmoketest) {
  run([] {
    auto listeners = open_tcp_listeners(0, "127.0.0.1");
    SocketStream client = open_tcp_stream("127.0.0.1", listeners[0]->local_address().port());
    std::unique_ptr<SocketStream> server = listeners[0]->accept();
    EXPECT_EQ(client.socket().peer_address(), server->socket().local_address());
  });
}

TEST(TrioOpenTcpStream, InputValidation) {
  run([] {
    EXPECT_THROW((void)open_tcp_stream("", 80), std::invalid_argument);
    EXPECT_THROW((void)open_tcp_stream("127.0.0.1", 80, -1s), std::invalid_argument);
  });
}

TEST(TrioOpenTcpStream, OneHostQuickSuccess) {
  Result r = run_scenario(80, {{"1.2.3.4", 123ms, Outcome::kSuccess}});
  EXPECT_EQ(r.winner, "1.2.3.4");
  EXPECT_DOUBLE_EQ(r.elapsed, 0.123);
}

TEST(TrioOpenTcpStream, OneHostSlowSuccess) {
  Result r = run_scenario(81, {{"1.2.3.4", 100s, Outcome::kSuccess}});
  EXPECT_EQ(r.winner, "1.2.3.4");
  EXPECT_DOUBLE_EQ(r.elapsed, 100);
}

TEST(TrioOpenTcpStream, OneHostQuickFail) {
  Result r = run_scenario(82, {{"1.2.3.4", 123ms, Outcome::kError}});
  EXPECT_EQ(r.winner, "");
  EXPECT_EQ(r.error_errno, ECONNREFUSED);
  EXPECT_DOUBLE_EQ(r.elapsed, 0.123);
}

TEST(TrioOpenTcpStream, OneHostSlowFail) {
  Result r = run_scenario(83, {{"1.2.3.4", 100s, Outcome::kError}});
  EXPECT_EQ(r.winner, "");
  EXPECT_DOUBLE_EQ(r.elapsed, 100);
}

TEST(TrioOpenTcpStream, BasicFallthrough) {
  Result r = run_scenario(80, {{"1.1.1.1", 1s, Outcome::kSuccess},
                               {"2.2.2.2", 1s, Outcome::kSuccess},
                               {"3.3.3.3", 200ms, Outcome::kSuccess}});
  EXPECT_EQ(r.winner, "3.3.3.3");
  EXPECT_DOUBLE_EQ(r.elapsed, 0.250 + 0.250 + 0.2);
  EXPECT_EQ(r.connect_times, (Times{{"1.1.1.1", 0}, {"2.2.2.2", 0.250}, {"3.3.3.3", 0.500}}));
}

TEST(TrioOpenTcpStream, EarlySuccess) {
  Result r = run_scenario(80, {{"1.1.1.1", 1s, Outcome::kSuccess},
                               {"2.2.2.2", 100ms, Outcome::kSuccess},
                               {"3.3.3.3", 200ms, Outcome::kSuccess}});
  EXPECT_EQ(r.winner, "2.2.2.2");
  EXPECT_DOUBLE_EQ(r.elapsed, 0.250 + 0.1);
  // 3.3.3.3 was never even started.
  EXPECT_EQ(r.connect_times, (Times{{"1.1.1.1", 0}, {"2.2.2.2", 0.250}}));
}

TEST(TrioOpenTcpStream, CustomDelay) {
  Result r = run_scenario(80,
                          {{"1.1.1.1", 1s, Outcome::kSuccess},
                           {"2.2.2.2", 1s, Outcome::kSuccess},
                           {"3.3.3.3", 200ms, Outcome::kSuccess}},
                          450ms);
  EXPECT_EQ(r.winner, "1.1.1.1");
  EXPECT_DOUBLE_EQ(r.elapsed, 1);
  EXPECT_EQ(r.connect_times, (Times{{"1.1.1.1", 0}, {"2.2.2.2", 0.450}, {"3.3.3.3", 0.900}}));
}

TEST(TrioOpenTcpStream, ErrorsExpediteTheNextAttempt) {
  Result r = run_scenario(80, {{"1.1.1.1", 100ms, Outcome::kError},
                               {"2.2.2.2", 200ms, Outcome::kError},
                               {"3.3.3.3", 10s, Outcome::kSuccess},
                               {"4.4.4.4", 250ms, Outcome::kSuccess}});
  EXPECT_EQ(r.winner, "4.4.4.4");
  EXPECT_NEAR(r.elapsed, 0.1 + 0.2 + 0.25 + 0.25, 1e-9);
  const Times expected{{"1.1.1.1", 0}, {"2.2.2.2", 0.1}, {"3.3.3.3", 0.3}, {"4.4.4.4", 0.55}};
  ASSERT_EQ(r.connect_times.size(), expected.size());
  for (const auto& [ip, t] : expected) EXPECT_NEAR(r.connect_times[ip], t, 1e-9) << ip;
}

TEST(TrioOpenTcpStream, AllFailListsEveryAttempt) {
  Result r = run_scenario(80, {{"1.1.1.1", 100ms, Outcome::kError},
                               {"2.2.2.2", 200ms, Outcome::kError},
                               {"3.3.3.3", 10s, Outcome::kError},
                               {"4.4.4.4", 250ms, Outcome::kError}});
  EXPECT_EQ(r.winner, "");
  EXPECT_EQ(r.error_errno, ECONNREFUSED);
  EXPECT_NE(r.error.find("all attempts to connect to test.example.com:80 failed"),
            std::string::npos)
      << r.error;
  for (const char* ip : {"1.1.1.1:80", "2.2.2.2:80", "3.3.3.3:80", "4.4.4.4:80"}) {
    EXPECT_NE(r.error.find(std::string("connect to ") + ip), std::string::npos) << r.error;
  }
  EXPECT_NEAR(r.elapsed, 0.1 + 0.2 + 10, 1e-9);
  const Times expected{{"1.1.1.1", 0}, {"2.2.2.2", 0.1}, {"3.3.3.3", 0.3}, {"4.4.4.4", 0.55}};
  for (const auto& [ip, t] : expected) EXPECT_NEAR(r.connect_times[ip], t, 1e-9) << ip;
}

TEST(TrioOpenTcpStream, MultiSuccess) {
  Result r = run_scenario(80,
                          {{"1.1.1.1", 500ms, Outcome::kError},
                           {"2.2.2.2", 10s, Outcome::kSuccess},
                           {"3.3.3.3", 9s, Outcome::kSuccess},
                           {"4.4.4.4", 8s, Outcome::kSuccess},
                           {"5.5.5.5", 500ms, Outcome::kError}},
                          1s);
  EXPECT_TRUE(r.winner == "2.2.2.2" || r.winner == "3.3.3.3" || r.winner == "4.4.4.4") << r.winner;
  EXPECT_DOUBLE_EQ(r.elapsed, 0.5 + 10);
  EXPECT_EQ(
      r.connect_times,
      (Times{
          {"1.1.1.1", 0}, {"2.2.2.2", 0.5}, {"3.3.3.3", 1.5}, {"4.4.4.4", 2.5}, {"5.5.5.5", 3.5}}));
}

TEST(TrioOpenTcpStream, DoesReorderForRfc6555) {
  Result r = run_scenario(80,
                          {{"1.1.1.1", 10s, Outcome::kError},
                           // This would win if we tried it first...
                           {"2.2.2.2", 1s, Outcome::kSuccess},
                           // ...but this one goes second, because of section 5.4.
                           {"::3", 500ms, Outcome::kSuccess}},
                          1s);
  EXPECT_EQ(r.winner, "::3");
  EXPECT_DOUBLE_EQ(r.elapsed, 1 + 0.5);
  EXPECT_EQ(r.connect_times, (Times{{"1.1.1.1", 0}, {"::3", 1}}));
}

TEST(TrioOpenTcpStream, HandlesNoIpv4) {
  Result r = run_scenario(80,
                          {{"::1", 10s, Outcome::kSuccess},
                           {"2.2.2.2", 0s, Outcome::kSuccess},
                           {"::3", 100ms, Outcome::kSuccess},
                           {"4.4.4.4", 0s, Outcome::kSuccess}},
                          1s, {AF_INET6});
  EXPECT_EQ(r.winner, "::3");
  EXPECT_DOUBLE_EQ(r.elapsed, 1 + 0.1);
  EXPECT_EQ(r.connect_times, (Times{{"::1", 0}, {"::3", 1}}));
}

TEST(TrioOpenTcpStream, HandlesNoIpv6) {
  Result r = run_scenario(80,
                          {{"::1", 0s, Outcome::kSuccess},
                           {"2.2.2.2", 10s, Outcome::kSuccess},
                           {"::3", 0s, Outcome::kSuccess},
                           {"4.4.4.4", 100ms, Outcome::kSuccess}},
                          1s, {AF_INET});
  EXPECT_EQ(r.winner, "4.4.4.4");
  EXPECT_DOUBLE_EQ(r.elapsed, 1 + 0.1);
  EXPECT_EQ(r.connect_times, (Times{{"2.2.2.2", 0}, {"4.4.4.4", 1}}));
}

TEST(TrioOpenTcpStream, NoHosts) {
  Result r = run_scenario(80, {});
  EXPECT_NE(r.error.find("no results found for hostname lookup"), std::string::npos) << r.error;
}

TEST(TrioOpenTcpStream, CancelClosesEverySocket) {
  ScenarioBackend backend(80,
                          {{"1.1.1.1", 10s, Outcome::kSuccess},
                           {"2.2.2.2", 10s, Outcome::kSuccess},
                           {"3.3.3.3", 10s, Outcome::kSuccess},
                           {"4.4.4.4", 10s, Outcome::kSuccess}},
                          {AF_INET, AF_INET6});
  fakes::MockClock clock;
  clock.set_autojump_threshold(Duration::zero());
  run(
      [&] {
        const Time start = current_time();
        CancelScope scope;
        scope.set_deadline(start + 5s);
        scope.run([] { (void)open_tcp_stream("test.example.com", 80); });
        EXPECT_TRUE(scope.cancelled_caught());
        EXPECT_EQ(current_time() - start, 5s);
      },
      {.clock = &clock, .backend = &backend});
  backend.check("");
  EXPECT_EQ(backend.sockets().size(), 4u);
}

}  // namespace
}  // namespace trellis
