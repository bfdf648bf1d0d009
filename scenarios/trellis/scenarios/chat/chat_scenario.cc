#include "trellis/scenarios/chat/chat_scenario.h"

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "trellis/core/nursery.h"
#include "trellis/fakes/tls.h"
#include "trellis/scenarios/chat/chat_checker.h"
#include "trellis/scenarios/chat/chat_client.h"
#include "trellis/scenarios/chat/chat_serve.h"
#include "trellis/scenarios/chat/chat_server.h"
#include "trellis/scenarios/nemesis.h"
#include "trellis/sim/liveness.h"
#include "trellis/tls/openssl_random.h"
#include "trellis/tls/ssl_context.h"

namespace trellis::scenarios {
namespace {

using namespace std::chrono_literals;
using chat::ChatChecker;
using chat::ChatClient;
using chat::ChatMessage;
using chat::ChatServer;

constexpr int kClients = 3;
// Clients send while the faults go on, up to this many texts each.
constexpr int kTextsPerClientMax = 40;
constexpr std::size_t kTextBytesMax = 60;
constexpr int kFaultRounds = 6;
constexpr std::uint16_t kPort = 7100;
// Small enough that a client cut off for a few tens of milliseconds fills it.
constexpr std::size_t kTcpWindowBytes = 1024;
constexpr Duration kQuietEchoTimeout = 5s;
constexpr Duration kLastTextWait = 1s;

struct Recorder {
  ChatChecker checker;
  bool faults_over = false;
  int clients_done = 0;  // clients whose last text came back after the faults stopped
};

std::string random_text(Prng& prng) {
  std::string text(1 + prng.below(kTextBytesMax), ' ');
  for (char& c : text) c = static_cast<char>(' ' + prng.below('~' - ' ' + 1));
  return text;
}

// One client host's main: a fresh sender name per incarnation (a restarted client starts
// its numbering again).
void client_main(Recorder& recorder, sim::World& world, const sim::Host& host, int index,
                 const std::string& server, SslContext* tls) {
  const std::string name = "c" + std::to_string(index) + "." + std::to_string(host.incarnation());
  ChatClient client({.server = server, .port = kPort, .name = name, .tls = tls});
  open_nursery([&](Nursery& nursery) {
    nursery.start_soon([&] {
      client.run(
          {.message = [&](const ChatMessage& m) { recorder.checker.received(name, m); },
           .malformed = [&](std::string_view line) { recorder.checker.malformed(name, line); }});
    });
    for (int i = 0; i < kTextsPerClientMax && !recorder.faults_over; ++i) {
      std::string text = random_text(world.prng());
      recorder.checker.sent(name, text);
      client.send(std::move(text));
      sleep(std::chrono::microseconds(world.prng().below(20'000)));
    }
    // Liveness: once the faults have stopped, a text comes back. (Delivery is at most once:
    // a text sent on a connection the faults broke is lost, so try again after a while.)
    while (!recorder.faults_over) sleep(1ms);
    for (int attempt = 1;; ++attempt) {
      const std::string text = "last " + std::to_string(attempt);
      recorder.checker.sent(name, text);
      client.send(text);
      const std::uint64_t seq = client.queued();
      const Time deadline = current_time() + kLastTextWait;
      while (client.echoed_seq() < seq && current_time() < deadline) sleep(1ms);
      if (client.echoed_seq() >= seq) break;
    }
    ++recorder.clients_done;
    sleep_forever();  // keep receiving
  });
}

// Crashes, partitions, slow links and clogs between the server and one client at a time;
// only the kinds this seed's swarm allows.
void nemesis(sim::World& world, sim::Host& server, const std::vector<sim::Host*>& clients) {
  run_nemesis(world,
              {.rounds = kFaultRounds,
               .wait_min = 0ms,
               .wait_max = 31ms,
               .duration_min = 5ms,
               .duration_max = 85ms},
              clients,
              hub_and_spoke_faults(world, server,
                                   {.partition_weight = 2,
                                    .slow_latency_min = 5ms,
                                    .slow_latency_max = 35ms,
                                    .slow_duration_factor = 3}));
}

// The TLS option's certificates and contexts: a test CA, the server's certificate for its
// address, clients trusting the CA. OpenSSL's randomness comes from the seed while it lives.
struct ChatTls {
  explicit ChatTls(std::uint64_t seed) : random(seed) {
    ca.issue_server_certificate({"10.0.0.1"}).configure(server);
    ca.configure_trust(client);
  }
  DeterministicOpenSslRandom random;
  fakes::TestCertificateAuthority ca;
  SslContext server = SslContext::server();
  SslContext client = SslContext::client();
};

void simulate(sim::World& world, const Options& options) {
  const bool planted_bug = option_on(options, "planted_bug");
  std::optional<ChatTls> tls;
  if (option_on(options, "tls")) {
    if (planted_bug) throw std::invalid_argument("chat: planted_bug needs plain TCP (tls=off)");
    tls.emplace(world.config().seed);
  }
  SslContext* server_tls = tls ? &tls->server : nullptr;
  SslContext* client_tls = tls ? &tls->client : nullptr;
  Recorder recorder;
  sim::Host& server = world.add_host("server", "10.0.0.1");
  server.start([planted_bug, server_tls] {
    ChatServer({.single_send_writes = planted_bug, .tls = server_tls}).serve(kPort);
  });
  std::vector<sim::Host*> clients;
  for (int c = 1; c <= kClients; ++c) {
    sim::Host& host = world.add_host("client" + std::to_string(c), "10.0.1." + std::to_string(c));
    host.start([&, c] { client_main(recorder, world, host, c, server.address(), client_tls); });
    clients.push_back(&host);
  }
  world.run([&] {
    nemesis(world, server, clients);
    world.heal_all();
    recorder.faults_over = true;
    sim::require_progress(kQuietEchoTimeout, "every client's last text coming back to it",
                          [&] { return recorder.clients_done == kClients; });
  });
  if (recorder.checker.violation()) throw InvariantViolation(*recorder.checker.violation());
  if (recorder.checker.messages_received() == 0) {
    throw InvariantViolation("no client received any message");
  }
}

}  // namespace

Scenario chat_scenario() {
  Scenario s;
  s.name = "chat";
  s.description =
      "chat server relaying every message to 3 clients under server and client crashes, "
      "partitions, slow links and clogs; every message received must be one sent, uncorrupted, "
      "in order per sender, at most once";
  s.option_help = {{"planted_bug", "off: on = the server writes lines with one send()"},
                   {"tls",
                    "off: on = every connection runs TLS (a test CA's certificate; "
                    "OpenSSL's randomness from the seed)"}};
  s.configure = [](sim::Config& config, const Options&) {
    config.network.tcp_window_bytes = kTcpWindowBytes;
  };
  s.simulate = simulate;
  s.serve = chat::serve_chat;
  s.serve_option_help = chat::serve_chat_option_help();
  return s;
}

}  // namespace trellis::scenarios
