#include "trellis/scenarios/kv/kv_scenario.h"

#include <signal.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "trellis/base/assert.h"
#include "trellis/core/cancel_scope.h"
#include "trellis/core/nursery.h"
#include "trellis/core/os_error.h"
#include "trellis/core/run.h"
#include "trellis/scenarios/kv/kv_client.h"
#include "trellis/scenarios/kv/kv_replica.h"
#include "trellis/scenarios/kv/kv_server.h"
#include "trellis/scenarios/kv/linearizability.h"
#include "trellis/scenarios/nemesis.h"
#include "trellis/signal/signal_receiver.h"
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

// Host numbers in the world (fault_plan.h): simulate() adds the replicas, then the clients.
constexpr std::uint32_t kFirstReplica = 0;
constexpr std::uint32_t kFirstClient = kReplicas;
constexpr std::uint32_t kHosts = kReplicas + kClients;

using Kind = sim::PlannedFault::Kind;

// The planned faults a run may draw beyond the nemesis's own (options, off by default so
// that existing seeds keep their meaning).
struct ExtraFaults {
  bool disk_faults = false;  // windows of EIO on a replica's disk
  bool signals = false;      // SIGHUP (reload) and SIGTERM (stop; restarted) to a replica
};

ExtraFaults extra_faults(const Options& options) {
  return {.disk_faults = option_on(options, "disk_faults"),
          .signals = option_on(options, "signals")};
}

// A replica host's program: the replica, under a supervisor that opens it again (recovering
// its log) after its disk failed (disk_faults: 1 ms later), a SIGHUP (at once) or a SIGTERM
// (which stops it: started again 5 ms later).
void replica_main(const ExtraFaults& faults) {
  bool after_disk_error = false;
  CancelScope* incarnation = nullptr;
  Duration down = Duration::zero();  // how long the stopped replica stays down
  auto supervise = [&] {
    for (;;) {
      CancelScope scope;
      incarnation = &scope;
      scope.run([&] {
        try {
          KvReplica::open({.directory = "/var/kv", .after_disk_error = after_disk_error})
              .serve(kPort);
        } catch (const OSError& e) {
          if (!faults.disk_faults || e.code().value() != EIO) throw;
          after_disk_error = true;
          down = std::max(down, Duration(1ms));
        }
      });
      incarnation = nullptr;
      if (down > Duration::zero()) sleep(std::exchange(down, Duration::zero()));
    }
  };
  if (!faults.signals) {
    supervise();
    return;
  }
  open_signal_receiver({SIGHUP, SIGTERM}, [&](SignalReceiver& signals) {
    open_nursery([&](Nursery& n) {
      n.start_soon(supervise);
      for (int signo : signals) {
        if (signo == SIGTERM) down = std::max(down, Duration(5ms));
        if (incarnation != nullptr) incarnation->cancel();
      }
    });
  });
}

// Crashes, partitions, slow links and clogs, one at a time so that a majority of replicas
// can always make progress once the fault ends, drawn up front from the seed as a fault
// plan the world injects (nemesis.h). Each round's target is a replica (the victim); each
// fault is its pairs of hosts, so that shrinking keeps only the links a failure needs.
sim::FaultPlan draw_kv_faults(std::uint64_t seed) {
  using Faults = std::vector<sim::PlannedFault>;
  auto crash = [](Prng&, std::uint32_t victim, Duration at, Duration duration, Faults& out) {
    out.push_back({.kind = Kind::kCrash, .at = at, .a = victim, .duration = duration});
    return duration;
  };
  auto partition_replica = [](Prng& prng, std::uint32_t victim, Duration at, Duration duration,
                              Faults& out) {
    const Kind kind = prng.chance(1, 2) ? Kind::kPartitionOneWay : Kind::kPartition;
    for (std::uint32_t other = 0; other < kHosts; ++other) {
      if (other == victim) continue;
      out.push_back({.kind = kind, .at = at, .a = victim, .b = other, .duration = duration});
    }
    return duration;
  };
  auto isolate_client = [](Prng& prng, std::uint32_t victim, Duration at, Duration duration,
                           Faults& out) {
    // A client on the minority side: it reaches only one replica.
    const auto client = kFirstClient + static_cast<std::uint32_t>(prng.below(kClients));
    for (std::uint32_t replica = kFirstReplica; replica < kFirstClient; ++replica) {
      if (replica == victim) continue;
      out.push_back({.kind = Kind::kPartition,
                     .at = at,
                     .a = client,
                     .b = replica,
                     .duration = 3 * duration});
    }
    return 3 * duration;
  };
  auto slow_client = [](Prng& prng, std::uint32_t victim, Duration at, Duration duration,
                        Faults& out) {
    // A client far from all replicas but one (a WAN link): its stores reach that one long
    // before the others.
    const auto client = kFirstClient + static_cast<std::uint32_t>(prng.below(kClients));
    const Duration slow = std::chrono::microseconds(5'000 + prng.below(30'000));
    for (std::uint32_t replica = kFirstReplica; replica < kFirstClient; ++replica) {
      if (replica == victim) continue;
      out.push_back({.kind = Kind::kSlowLink,
                     .at = at,
                     .a = client,
                     .b = replica,
                     .duration = 3 * duration,
                     .latency = slow});
    }
    return 3 * duration;
  };
  auto clog = [](Prng& prng, std::uint32_t victim, Duration at, Duration duration, Faults& out) {
    for (std::uint32_t other = 0; other < kHosts; ++other) {
      if (other == victim || !prng.chance(1, 2)) continue;
      out.push_back({.kind = Kind::kClog, .at = at, .a = other, .b = victim, .duration = duration});
    }
    return duration;
  };
  return draw_fault_plan(
      seed,
      {.rounds = kFaultRounds,
       .wait_min = 0ms,
       .wait_max = 30ms,
       .duration_min = 5ms,
       .duration_max = 85ms},
      {0, 1, 2},
      {{.kind = sim::FaultKind::kCrash, .plan = crash},
       {.kind = sim::FaultKind::kPartition, .weight = 2, .plan = partition_replica},
       {.kind = sim::FaultKind::kPartition, .plan = isolate_client},
       {.kind = sim::FaultKind::kSlowLink, .plan = slow_client},
       {.kind = sim::FaultKind::kClog, .plan = clog}});
}

// The extra faults (disk_faults, signals): 4 rounds of their own on the replicas, from a
// stream of their own (the base plan above is the same with or without them), each a wait of
// 0-40 ms and a window of 1-10 ms in which one class of disk operation (or all) fails with EIO
// on the target, or a SIGHUP or SIGTERM to it.
sim::FaultPlan draw_extra_faults(std::uint64_t seed, const ExtraFaults& extra) {
  std::vector<PlannedNemesisFault> menu;
  if (extra.disk_faults) menu.push_back(planned_disk_errors());
  if (extra.signals) menu.push_back(planned_hup_or_term());
  if (menu.empty()) return {};
  constexpr std::uint64_t kExtraStream = 0x6b762d6578747261ULL;  // "kv-extra"
  return draw_fault_plan(
      seed ^ kExtraStream,
      {.rounds = 4, .wait_min = 0ms, .wait_max = 40ms, .duration_min = 1ms, .duration_max = 10ms},
      {0, 1, 2}, menu);
}

// The seed's whole plan: the nemesis's, then the extra faults the options ask for.
sim::FaultPlan draw_kv_plan(std::uint64_t seed, const ExtraFaults& extra) {
  sim::FaultPlan plan = draw_kv_faults(seed);
  const sim::FaultPlan more = draw_extra_faults(seed, extra);
  plan.faults.insert(plan.faults.end(), more.faults.begin(), more.faults.end());
  return plan;
}

void simulate(sim::World& world, const Options& options) {
  const bool planted_bug = option_on(options, "planted_bug");
  const ExtraFaults extra = extra_faults(options);
  Recorder recorder;
  std::vector<std::string> replica_addresses;
  for (int r = 1; r <= kReplicas; ++r) {
    sim::Host& host = world.add_host("replica" + std::to_string(r), "10.0.0." + std::to_string(r));
    host.start([&extra] { replica_main(extra); });
    replica_addresses.push_back(host.address());
  }
  for (int c = 1; c <= kClients; ++c) {
    sim::Host& host = world.add_host("client" + std::to_string(c), "10.0.1." + std::to_string(c));
    const auto id = static_cast<std::uint32_t>(c);
    host.start([&, id] { client_main(recorder, world, id, planted_bug, replica_addresses); });
  }
  TRELLIS_ASSERT(world.host_names().size() == kHosts);
  // The faults are the world's plan (drawn in configure, or a replay file's): the fault
  // phase lasts as long as the seed's own plan, or the given plan if that runs longer, so
  // that dropping faults while shrinking leaves the rest of the run's timeline alone.
  const Duration faults_end =
      std::max(draw_kv_plan(world.config().seed, extra).end(), world.config().fault_plan.end());
  world.run([&] {
    sleep(faults_end);
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
  s.option_help = {
      {"planted_bug", "off: on = reads skip the quorum write-back"},
      {"disk_faults", "off: on = planned windows of disk EIO on a replica (it is opened again)"},
      {"signals",
       "off: on = planned SIGHUP (a replica is opened again) and SIGTERM (stopped, "
       "restarted 5 ms later)"}};
  s.configure = [](sim::Config& config, const Options& options) {
    config.disk.torn_write_ppm = 1'000'000;
    config.fault_plan = draw_kv_plan(config.seed, extra_faults(options));
  };
  s.simulate = simulate;
  s.serve = kv::serve_replica;
  s.serve_option_help = kv::serve_replica_option_help();
  return s;
}

}  // namespace trellis::scenarios
