#include "trellis/scenarios/kv/kv_scenario.h"

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "trellis/core/cancel_scope.h"
#include "trellis/core/nursery.h"
#include "trellis/scenarios/kv/kv_client.h"
#include "trellis/scenarios/kv/kv_replica.h"
#include "trellis/scenarios/kv/kv_server.h"
#include "trellis/scenarios/kv/linearizability.h"
#include "trellis/scenarios/nemesis.h"
#include "trellis/sim/liveness.h"

namespace trellis::scenarios {
namespace {

using namespace std::chrono_literals;
using kv::KvClient;
using kv::KvReplica;

constexpr int kReplicas = 3;
constexpr int kClients = 3;
// Clients work while the faults go on, up to this many operations each.
constexpr int kOperationsPerClientMax = 40;
constexpr int kFaultRounds = 8;
constexpr std::uint16_t kPort = 7000;
constexpr Duration kOperationTimeout = 400ms;
constexpr Duration kQuietReadTimeout = 2s;
const std::vector<std::string> kKeys = {"x", "y"};

// What the harness saw: every operation with its invocation and completion in one total
// order of events (the simulation is one thread, so a counter is that order).
struct Recorder {
  std::uint64_t events = 0;
  std::map<std::string, std::vector<RegisterOperation>> history;  // by key
  std::optional<std::string> liveness_failure;
  bool faults_over = false;
  int clients_done = 0;  // clients that finished their operations and the liveness read
};

// "c<id>-<i>", built by appending (GCC 12 at -O3 reports a false -Wrestrict for "c" + ...).
std::string value_name(std::uint32_t id, int i) {
  std::string out = "c";
  out.append(std::to_string(id)).append("-").append(std::to_string(i));
  return out;
}

void client_main(Recorder& recorder, sim::World& world, std::uint32_t id, bool planted_bug,
                 const std::vector<std::string>& replicas) {
  KvClient client(
      {.replicas = replicas, .port = kPort, .client_id = id, .read_skips_write_back = planted_bug});
  for (int i = 0; i < kOperationsPerClientMax && !recorder.faults_over; ++i) {
    const std::string& key = kKeys[world.prng().below(kKeys.size())];
    RegisterOperation op;
    op.client = id;
    op.invoked = ++recorder.events;
    if (world.prng().chance(2, 5)) {
      op.kind = RegisterOperation::Kind::kWrite;
      op.value = value_name(id, i);
      CancelScope scope(current_time() + kOperationTimeout);
      scope.run([&] { client.write(key, op.value); });
      if (!scope.cancelled_caught()) op.completed = ++recorder.events;
    } else {
      op.kind = RegisterOperation::Kind::kRead;
      std::optional<std::string> value =
          move_on_after(kOperationTimeout, [&] { return client.read(key); });
      if (value) {
        op.value = *value;
        op.completed = ++recorder.events;
      }
    }
    recorder.history[key].push_back(std::move(op));
    sleep(std::chrono::microseconds(world.prng().below(30'000)));
  }
  // Liveness: once the faults have stopped and the network is whole, a read finishes.
  while (!recorder.faults_over) sleep(1ms);
  for (const std::string& key : kKeys) {
    // Retried if a cancellation fault cuts it short: only the deadline itself counts.
    const Time deadline = current_time() + kQuietReadTimeout;
    bool done = false;
    while (!done && current_time() < deadline) {
      CancelScope scope(deadline);
      scope.run([&] {
        (void)client.read(key);
        done = true;
      });
    }
    if (!done && !recorder.liveness_failure) {
      recorder.liveness_failure = "client " + std::to_string(id) + "'s read of '" + key +
                                  "' did not finish within 2 s after the faults stopped";
    }
  }
  ++recorder.clients_done;
}

// Crashes, partitions, slow links and clogs, one at a time so that a majority of replicas
// can always make progress once the fault ends; only the kinds this seed's swarm allows.
// Each round's target is a replica (the victim).
void nemesis(sim::World& world, const std::vector<sim::Host*>& replicas,
             const std::vector<sim::Host*>& clients, const std::vector<sim::Host*>& everyone) {
  auto crash = [](sim::Host& victim, Duration duration) {
    victim.crash();
    sleep(duration);
    victim.restart();
  };
  auto partition_replica = [&](sim::Host& victim, Duration duration) {
    const bool one_way = world.prng().chance(1, 2);
    for (sim::Host* other : everyone) {
      if (other != &victim) world.partition(victim, *other, one_way);
    }
    sleep(duration);
    world.heal_all();
  };
  auto isolate_client = [&](sim::Host& victim, Duration duration) {
    // A client on the minority side: it reaches only one replica.
    sim::Host& client = *clients[world.prng().below(clients.size())];
    for (sim::Host* replica : replicas) {
      if (replica != &victim) world.partition(client, *replica);
    }
    sleep(3 * duration);
    world.heal_all();
  };
  auto slow_client = [&](sim::Host& victim, Duration duration) {
    // A client far from all replicas but one (a WAN link): its stores reach that one long
    // before the others.
    sim::Host& client = *clients[world.prng().below(clients.size())];
    const Duration slow = std::chrono::microseconds(5'000 + world.prng().below(30'000));
    for (sim::Host* replica : replicas) {
      if (replica == &victim) continue;
      world.set_link_latency(client, *replica, slow, 2 * slow);
      world.set_link_latency(*replica, client, slow, 2 * slow);
    }
    sleep(3 * duration);
    for (sim::Host* replica : replicas) {
      world.reset_link_latency(client, *replica);
      world.reset_link_latency(*replica, client);
    }
  };
  auto clog = [&](sim::Host& victim, Duration duration) {
    for (sim::Host* other : everyone) {
      if (other != &victim && world.prng().chance(1, 2)) world.clog(*other, victim, duration);
    }
    sleep(duration);
  };
  run_nemesis(world,
              {.rounds = kFaultRounds,
               .wait_min = 0ms,
               .wait_max = 30ms,
               .duration_min = 5ms,
               .duration_max = 85ms},
              replicas,
              {{.kind = sim::FaultKind::kCrash, .inject = crash},
               {.kind = sim::FaultKind::kPartition, .weight = 2, .inject = partition_replica},
               {.kind = sim::FaultKind::kPartition, .inject = isolate_client},
               {.kind = sim::FaultKind::kSlowLink, .inject = slow_client},
               {.kind = sim::FaultKind::kClog, .inject = clog}});
}

void simulate(sim::World& world, const Options& options) {
  const bool planted_bug = option_on(options, "planted_bug");
  Recorder recorder;
  std::vector<sim::Host*> replicas;
  std::vector<sim::Host*> clients;
  std::vector<sim::Host*> everyone;
  std::vector<std::string> replica_addresses;
  for (int r = 1; r <= kReplicas; ++r) {
    sim::Host& host = world.add_host("replica" + std::to_string(r), "10.0.0." + std::to_string(r));
    host.start([] { KvReplica::open({.directory = "/var/kv"}).serve(kPort); });
    replicas.push_back(&host);
    everyone.push_back(&host);
    replica_addresses.push_back(host.address());
  }
  for (int c = 1; c <= kClients; ++c) {
    sim::Host& host = world.add_host("client" + std::to_string(c), "10.0.1." + std::to_string(c));
    const auto id = static_cast<std::uint32_t>(c);
    host.start([&, id] { client_main(recorder, world, id, planted_bug, replica_addresses); });
    clients.push_back(&host);
    everyone.push_back(&host);
  }
  world.run([&] {
    nemesis(world, replicas, clients, everyone);
    world.heal_all();
    recorder.faults_over = true;
    // A client's last operation takes at most 430 ms after this, its liveness reads 2 * 2 s.
    sim::require_progress(10s, "every client finishing its operations and liveness reads",
                          [&] { return recorder.clients_done == kClients; });
  });
  for (const auto& [key, history] : recorder.history) {
    const LinearizabilityResult result = check_register_history(history, "");
    if (!result.linearizable) {
      throw InvariantViolation("key '" + key + "' is not linearizable: " + result.explanation);
    }
  }
  if (recorder.liveness_failure) throw InvariantViolation(*recorder.liveness_failure);
}

}  // namespace

Scenario kv_scenario() {
  Scenario s;
  s.name = "kv";
  s.description =
      "replicated key-value store (3 replicas, quorum reads and writes from 3 clients) under "
      "crashes, restarts, partitions and clogs; every key's history must be linearizable";
  s.option_help = {{"planted_bug", "off: on = reads skip the quorum write-back"}};
  s.configure = [](sim::Config& config, const Options&) { config.disk.torn_write_ppm = 1'000'000; };
  s.simulate = simulate;
  s.serve = kv::serve_replica;
  s.serve_option_help = kv::serve_replica_option_help();
  return s;
}

}  // namespace trellis::scenarios
