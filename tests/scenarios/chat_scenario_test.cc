// The chat scenario: its wire format, the checker, the planted bug (one send() per line)
// found within 1,000 seeds and replayed, 10,000 clean seeds without it, and the same server
// and clients on the real epoll backend over loopback — in this process, and as the
// `trellis serve chat` program stopped with SIGINT.
#include "trellis/scenarios/chat/chat_scenario.h"

#include <gtest/gtest.h>

#include <stdlib.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "scenario_sweep.h"
#include "trellis/core/run.h"
#include "trellis/fakes/tls.h"
#include "trellis/scenarios/chat/chat_checker.h"
#include "trellis/scenarios/chat/chat_client.h"
#include "trellis/scenarios/chat/chat_protocol.h"
#include "trellis/scenarios/chat/chat_server.h"
#include "trellis/scenarios/kv/kv_protocol.h"
#include "trellis/sim.h"
#include "trellis/tls.h"
#include "trellis/trellis.h"

#ifndef TRELLIS_CLI_PATH
#error "TRELLIS_CLI_PATH names the trellis tool (set by tests/CMakeLists.txt)"
#endif

namespace trellis::scenarios {
namespace {

using namespace std::chrono_literals;
using namespace chat;

TEST(ChatProtocol, MessagesRoundTrip) {
  for (const ChatMessage& m : {ChatMessage{"alice", 1, "hello world"}, ChatMessage{"b.2", 99, ""},
                               ChatMessage{"c_3-x", 18446744073709551615u, "M x 1 y"}}) {
    EXPECT_EQ(parse_message(encode_message(m)), m);
  }
  EXPECT_EQ(encode_message({"a", 7, "hi there"}), "M a 7 hi there");
}

TEST(ChatProtocol, MalformedLinesAreProtocolErrors) {
  for (const char* line : {"", "M", "M a", "M a 1", "X a 1 t", "M a 0 t", "M a -1 t", "M a 1x t",
                           "M a b 1 t", "M  1 t", "M a 99999999999999999999 t"}) {
    EXPECT_THROW(parse_message(line), kv::ProtocolError) << line;
  }
  EXPECT_THROW(parse_message("M a 1 \x01"), kv::ProtocolError);
  EXPECT_THROW(encode_message({"a b", 1, "t"}), std::invalid_argument);
  EXPECT_THROW(encode_message({"a", 0, "t"}), std::invalid_argument);
  EXPECT_THROW(encode_message({"a", 1, std::string(kTextBytesMax + 1, 't')}),
               std::invalid_argument);
  EXPECT_THROW(ChatClient({.server = "", .name = "a"}), std::invalid_argument);
  EXPECT_THROW(ChatClient({.server = "s", .name = ""}), std::invalid_argument);
}

TEST(ChatChecker, FlagsInventedCorruptedDuplicatedAndReorderedMessages) {
  const auto first_violation = [](const std::vector<ChatMessage>& received) {
    ChatChecker checker;
    checker.sent("a", "one");
    checker.sent("a", "two");
    checker.sent("b", "uno");
    for (const ChatMessage& m : received) checker.received("r", m);
    return checker.violation().value_or("");
  };
  EXPECT_EQ(first_violation({{"a", 1, "one"}, {"b", 1, "uno"}, {"a", 2, "two"}}), "");
  EXPECT_EQ(first_violation({{"a", 2, "two"}}), "");  // a lost message is allowed
  EXPECT_NE(first_violation({{"a", 3, "three"}}).find("never sent"), std::string::npos);
  EXPECT_NE(first_violation({{"c", 1, "one"}}).find("never sent"), std::string::npos);
  EXPECT_NE(first_violation({{"a", 1, "onM b"}}).find("corrupted"), std::string::npos);
  EXPECT_NE(first_violation({{"a", 1, "one"}, {"a", 1, "one"}}).find("twice"), std::string::npos);
  EXPECT_NE(first_violation({{"a", 2, "two"}, {"a", 1, "one"}}).find("out of order"),
            std::string::npos);
  ChatChecker checker;
  checker.malformed("r", "M a 1 onM b 1 uno");
  EXPECT_NE(checker.violation().value_or("").find("malformed"), std::string::npos);
}

TEST(ChatScenario, IsRegisteredWithItsOption) {
  const Scenario& chat = find_scenario("chat");
  EXPECT_NO_THROW(check_options(chat, {{"planted_bug", "on"}}));
  EXPECT_THROW(check_options(chat, {{"planted", "on"}}), std::invalid_argument);
}

TEST(ChatScenario, PlantedBugIsFoundWithin1000SeedsAndReplays) {
  const Scenario& chat = find_scenario("chat");
  const Options bug = {{"planted_bug", "on"}};
  const std::optional<sim::RunResult> failing = first_failing_seed(chat, bug);
  ASSERT_TRUE(failing) << "no failing seed in 1..1000";
  EXPECT_NE(failing->failure.find("invariant violated"), std::string::npos) << failing->failure;
  // The failing seed and its replay file reproduce the same failure, event for event.
  expect_failure_reproduces(chat, bug, *failing);
}

// 10,000 seeds in eight shards of about 10-20 s each (ctest runs them in parallel); sanitizer
// builds run 125 each.
#if defined(__SANITIZE_ADDRESS__)
constexpr std::uint64_t kSeedsPerShard = 125;
#else
constexpr std::uint64_t kSeedsPerShard = 1250;
#endif

class ChatScenarioClean : public ::testing::TestWithParam<std::uint64_t> {};

TEST_P(ChatScenarioClean, NoFailureWithoutTheBug) {
  expect_seeds_pass(find_scenario("chat"), {}, 1 + GetParam() * kSeedsPerShard, kSeedsPerShard);
}

INSTANTIATE_TEST_SUITE_P(Shards, ChatScenarioClean, ::testing::Range<std::uint64_t>(0, 8));

// Real mode: the same server and clients on the epoll backend, over loopback. Three clients
// each send kTexts texts once all are connected; every client gets every message, in order.
// (A generous echo timeout: on a loaded machine a client must not reconnect and miss some.)
// tls: the server's and clients' contexts, or null for plain TCP.
void relay_on_loopback(SslContext* server_tls, SslContext* client_tls) {
  constexpr int kClients = 3;
  constexpr std::uint64_t kTexts = 50;
  ChatChecker checker;
  ChatServer::Statistics server_statistics;
  trellis::run([&] {
    ChatServer server({.tls = server_tls});
    open_nursery([&](Nursery& nursery) {
      const auto listeners = nursery.start<std::vector<SocketListener*>>(
          [&](TaskStatus<std::vector<SocketListener*>>& status) {
            server.serve(0, "127.0.0.1", &status);
          });
      const std::uint16_t port = listeners.at(0)->local_address().port();
      std::vector<std::unique_ptr<ChatClient>> clients;
      std::vector<std::string> names;
      for (int c = 1; c <= kClients; ++c) {
        names.push_back("client" + std::to_string(c));
        clients.push_back(std::make_unique<ChatClient>(ChatClient::Options{.server = "127.0.0.1",
                                                                           .port = port,
                                                                           .name = names.back(),
                                                                           .echo_timeout = 5s,
                                                                           .tls = client_tls}));
      }
      fail_after(20s, [&] {
        open_nursery([&](Nursery& sessions) {
          for (int c = 0; c < kClients; ++c) {
            sessions.start_soon([&, c] {
              clients[c]->run(
                  {.message = [&, c](const ChatMessage& m) { checker.received(names[c], m); },
                   .malformed = [&, c](std::string_view l) { checker.malformed(names[c], l); }});
            });
          }
          while (server.statistics().connections < kClients) sleep(1ms);
          open_nursery([&](Nursery& senders) {
            for (int c = 0; c < kClients; ++c) {
              senders.start_soon([&, c] {
                for (std::uint64_t i = 1; i <= kTexts; ++i) {
                  std::string text = names[c] + " says " + std::to_string(i);
                  checker.sent(names[c], text);
                  clients[c]->send(std::move(text));
                }
              });
            }
          });
          const auto everyone_has_everything = [&] {
            for (const std::string& receiver : names) {
              for (const std::string& sender : names) {
                if (checker.last_seq(receiver, sender) < kTexts) return false;
              }
            }
            return true;
          };
          while (!everyone_has_everything() && !checker.violation()) sleep(1ms);
          sessions.cancel_scope().cancel();
        });
      });
      server_statistics = server.statistics();
      nursery.cancel_scope().cancel();
    });
  });
  EXPECT_FALSE(checker.violation()) << *checker.violation();
  EXPECT_EQ(checker.messages_received(), kClients * kClients * kTexts);
  EXPECT_EQ(server_statistics.messages_relayed, kClients * kTexts);
  EXPECT_EQ(server_statistics.connections, static_cast<std::uint64_t>(kClients));
}

TEST(ChatReal, ServerRelaysEveryMessageToEveryClientOnLoopback) {
  relay_on_loopback(nullptr, nullptr);
}

// The TLS option for real: the same server and clients, every connection over TLS.
TEST(ChatReal, OverTlsTooOnLoopback) {
  fakes::TestCertificateAuthority ca;
  SslContext server = SslContext::server();
  SslContext client = SslContext::client();
  ca.issue_server_certificate({"127.0.0.1"}).configure(server);
  ca.configure_trust(client);
  relay_on_loopback(&server, &client);
}

// The TLS option swept in the simulator: the same invariants and liveness under the same
// faults, with every connection over TLS (crashes and partitions in mid-handshake included).
#if defined(__SANITIZE_ADDRESS__)
constexpr std::uint64_t kTlsSeeds = 25;
#else
constexpr std::uint64_t kTlsSeeds = 200;
#endif

TEST(ChatScenarioTls, NoFailureOverTls) {
  expect_seeds_pass(find_scenario("chat"), {{"tls", "on"}}, 1, kTlsSeeds);
}

TEST(ChatScenarioTls, OneSeedIsOneRunAndTheBugNeedsPlainTcp) {
  const Scenario& chat = find_scenario("chat");
  const sim::RunResult first = run_seed(chat, {{"tls", "on"}}, 7);
  const sim::RunResult second = run_seed(chat, {{"tls", "on"}}, 7);
  EXPECT_FALSE(first.failed) << first.failure;
  EXPECT_EQ(first.trace_hash, second.trace_hash);
  EXPECT_NE(run_seed(chat, {}, 7).trace_hash, first.trace_hash);  // TLS changes the run
  const sim::RunResult both = run_seed(chat, {{"tls", "on"}, {"planted_bug", "on"}}, 7);
  EXPECT_TRUE(both.failed);
  EXPECT_NE(both.failure.find("planted_bug needs plain TCP"), std::string::npos) << both.failure;
}

// The server's per-sender table is bounded by its open connections: 2,000 names that each
// come, speak and go leave nothing behind, and a connection that switches names is dropped.
TEST(ChatReal, SenderTableIsBoundedByOpenConnections) {
  trellis::run([&] {
    ChatServer server;
    open_nursery([&](Nursery& nursery) {
      const auto listeners = nursery.start<std::vector<SocketListener*>>(
          [&](TaskStatus<std::vector<SocketListener*>>& status) {
            server.serve(0, "127.0.0.1", &status);
          });
      const std::uint16_t port = listeners.at(0)->local_address().port();
      const auto send_line = [](SocketStream& stream, const ChatMessage& message) {
        const std::string line = encode_message(message) + "\n";
        stream.send_all(std::as_bytes(std::span(line)));
      };
      fail_after(60s, [&] {
        for (int i = 0; i < 2000; ++i) {
          SocketStream stream = open_tcp_stream("127.0.0.1", port);
          send_line(stream, {.sender = "name" + std::to_string(i), .seq = 1, .text = "x"});
        }
        while (server.statistics().messages_relayed < 2000 || server.senders_tracked() > 0) {
          sleep(1ms);
        }
        // An open connection keeps its sender's entry (its stale messages must still be
        // recognised); closing it releases the entry.
        {
          SocketStream open = open_tcp_stream("127.0.0.1", port);
          send_line(open, {.sender = "stays", .seq = 1, .text = "a"});
          while (server.statistics().messages_relayed < 2001) sleep(1ms);
          EXPECT_EQ(server.senders_tracked(), 1u);
        }
        while (server.senders_tracked() > 0) sleep(1ms);
        // A second name on one connection: dropped, and its claim on the first name released.
        SocketStream two_names = open_tcp_stream("127.0.0.1", port);
        send_line(two_names, {.sender = "first", .seq = 1, .text = "a"});
        send_line(two_names, {.sender = "second", .seq = 1, .text = "b"});
        while (server.statistics().clients_dropped_bad_sender == 0) sleep(1ms);
        while (server.senders_tracked() > 0) sleep(1ms);
        EXPECT_EQ(server.statistics().messages_relayed, 2002u);
      });
      nursery.cancel_scope().cancel();
    });
  });
}

// The real program: `trellis serve chat ARGS` in a child process, two clients talking through
// it (over TLS with client_tls() once the lines before the banner are read, when given),
// then SIGINT: it says so and exits 0. Returns the lines it printed before its banner.
std::string chat_through_server_process(const std::vector<std::string>& args,
                                        const std::string& banner_marker,
                                        const std::function<SslContext*()>& client_tls = {}) {
  constexpr std::uint64_t kTexts = 20;
  ChatChecker checker;
  std::string preamble;
  std::string banner;
  std::string rest;
  int exit_status = -1;
  trellis::run([&] {
    std::vector<std::string> argv = {TRELLIS_CLI_PATH, "serve", "chat"};
    argv.insert(argv.end(), args.begin(), args.end());
    Process server = open_process(argv, {.stdout_mode = Stdio::kPipe});
    kv::LineReader output(*server.stdout_stream());
    fail_after(30s, [&] {
      for (;;) {
        std::optional<std::string> line = output.read_line();
        ASSERT_TRUE(line.has_value()) << "no banner after:\n" << preamble;
        if (line->rfind("serving chat", 0) == 0) {
          banner = *line;
          break;
        }
        preamble += *line + "\n";
      }
    });
    ASSERT_EQ(banner.rfind(banner_marker, 0), 0u) << banner;
    const auto port = static_cast<std::uint16_t>(std::stoi(banner.substr(banner.rfind(':') + 1)));
    SslContext* tls = client_tls ? client_tls() : nullptr;
    const std::vector<std::string> names = {"alice", "bob"};
    std::vector<std::unique_ptr<ChatClient>> clients;
    for (const std::string& name : names) {
      clients.push_back(std::make_unique<ChatClient>(ChatClient::Options{
          .server = "127.0.0.1", .port = port, .name = name, .echo_timeout = 5s, .tls = tls}));
    }
    fail_after(30s, [&] {
      open_nursery([&](Nursery& sessions) {
        for (std::size_t c = 0; c < clients.size(); ++c) {
          sessions.start_soon([&, c] {
            clients[c]->run(
                {.message = [&, c](const ChatMessage& m) { checker.received(names[c], m); },
                 .malformed = [&, c](std::string_view l) { checker.malformed(names[c], l); }});
          });
        }
        // A first text each, echoed: both are connected from then on.
        for (std::size_t c = 0; c < clients.size(); ++c) {
          checker.sent(names[c], "hello");
          clients[c]->send("hello");
        }
        while (clients[0]->echoed_seq() < 1 || clients[1]->echoed_seq() < 1) sleep(1ms);
        for (std::uint64_t i = 1; i <= kTexts; ++i) {
          for (std::size_t c = 0; c < clients.size(); ++c) {
            std::string text = names[c] + " " + std::to_string(i);
            checker.sent(names[c], text);
            clients[c]->send(std::move(text));
          }
        }
        const auto all_through = [&] {
          for (const std::string& receiver : names) {
            for (const std::string& sender : names) {
              if (checker.last_seq(receiver, sender) < 1 + kTexts) return false;
            }
          }
          return true;
        };
        while (!all_through() && !checker.violation()) sleep(1ms);
        sessions.cancel_scope().cancel();
      });
    });
    server.send_signal(SIGINT);
    fail_after(30s, [&] {
      while (std::optional<std::string> line = output.read_line()) rest += *line + "\n";
      exit_status = server.wait();
    });
  });
  EXPECT_FALSE(checker.violation()) << *checker.violation();
  EXPECT_EQ(exit_status, 0);
  EXPECT_NE(rest.find("stopped by SIGINT"), std::string::npos) << rest;
  return preamble;
}

TEST(ChatServe, ServerProcessRelaysMessagesAndStopsOnSigint) {
  EXPECT_EQ(chat_through_server_process({}, "serving chat on "), "");
}

// A temporary directory, removed with what is in it.
class TempDir {
 public:
  TempDir() {
    char name[] = "/tmp/trellis-chat-XXXXXX";
    if (::mkdtemp(name) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = name;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

std::string read_file(const std::string& path) {
  std::ifstream file(path);
  std::ostringstream text;
  text << file.rdbuf();
  return text.str();
}

// `--tls` alone: the server makes a test CA and writes its certificate to --tls_ca_out; the
// clients trust that file and talk TLS (a plain TCP client would not get an echo).
TEST(ChatServe, TlsWithAGeneratedTestCa) {
  TempDir dir;
  const std::string ca_file = dir.file("ca.pem");
  SslContext client = SslContext::client();
  const std::string preamble = chat_through_server_process(
      {"--tls", "--tls_ca_out=" + ca_file}, "serving chat over TLS on ", [&] {
        client.load_verify_locations(read_file(ca_file));
        return &client;
      });
  EXPECT_EQ(preamble, "test CA certificate written to " + ca_file + "\n");
}

// `--tls --tls_cert --tls_key`: the server uses the given files (here from a CA of the test's
// own, which only the clients trust).
TEST(ChatServe, TlsWithAGivenCertificateAndKey) {
  TempDir dir;
  fakes::TestCertificateAuthority ca;
  const fakes::IssuedCertificate certificate = ca.issue_server_certificate({"127.0.0.1"});
  std::ofstream(dir.file("chain.pem")) << certificate.certificate_chain_pem;
  std::ofstream(dir.file("key.pem")) << certificate.private_key_pem;
  SslContext client = SslContext::client();
  ca.configure_trust(client);
  chat_through_server_process(
      {"--tls", "--tls_cert=" + dir.file("chain.pem"), "--tls_key", dir.file("key.pem")},
      "serving chat over TLS on ", [&] { return &client; });
}

// Bad TLS flags are bad usage (exit 2, a message naming the problem), before anything listens.
TEST(ChatServe, BadTlsFlagsAreUsageErrors) {
  TempDir dir;
  std::ofstream(dir.file("garbage.pem")) << "not a certificate";
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"serve", "chat", "--tls_cert=" + dir.file("garbage.pem")}, "need tls=on"},
      {{"serve", "chat", "--tls", "--tls_cert=" + dir.file("garbage.pem")}, "go together"},
      {{"serve", "chat", "--tls", "--tls_cert=" + dir.file("missing.pem"),
        "--tls_key=" + dir.file("garbage.pem")},
       "cannot read cert="},
      {{"serve", "chat", "--tls", "--tls_cert=" + dir.file("garbage.pem"),
        "--tls_key=" + dir.file("garbage.pem")},
       "cannot use cert="},
      {{"serve", "lease", "--tls"}, "unknown option 'tls'"}};
  trellis::run([&] {
    for (const auto& [args, message] : cases) {
      std::vector<std::string> argv = {TRELLIS_CLI_PATH};
      argv.insert(argv.end(), args.begin(), args.end());
      fail_after(30s, [&] {
        const CompletedProcess done =
            run_process(argv, {.capture_stdout = true, .capture_stderr = true, .check = false});
        EXPECT_EQ(done.returncode, 2) << args.back();
        EXPECT_NE(done.stderr_data.find(message), std::string::npos) << done.stderr_data;
      });
    }
  });
}

}  // namespace
}  // namespace trellis::scenarios
