#include "trellis/scenarios/lease/lease_scenario.h"

#include <chrono>
#include <string>
#include <vector>

#include "trellis/scenarios/lease/lease_checker.h"
#include "trellis/scenarios/lease/lease_node.h"
#include "trellis/scenarios/lease/lease_serve.h"
#include "trellis/scenarios/lease/lease_server.h"
#include "trellis/scenarios/nemesis.h"
#include "trellis/sim/liveness.h"

namespace trellis::scenarios {
namespace {

using namespace std::chrono_literals;
using lease::LeaseChecker;
using lease::LeaseNode;
using lease::LeaseServer;

constexpr int kNodes = 3;
constexpr int kFaultRounds = 6;
constexpr std::uint16_t kPort = 7200;
constexpr Duration kLease = 150ms;
constexpr std::uint32_t kClockDriftPpmMax = 50'000;  // 5%
constexpr Duration kLeaderAfterFaultsWithin = 2s;
constexpr std::int64_t kMillion = 1'000'000;

// A host's clock: runs at (1 + ppm / 1e6) times true time, from true time 0.
struct DriftClock {
  std::int64_t ppm = 0;
  Time local(Time t) const {
    return Time(Duration(t.time_since_epoch().count() * (kMillion + ppm) / kMillion));
  }
  // The first true time at which the clock reads `local` or more.
  Time true_time(Time local) const {
    const std::int64_t l = local.time_since_epoch().count();
    return Time(Duration((l * kMillion + kMillion + ppm - 1) / (kMillion + ppm)));
  }
};

DriftClock random_clock(Prng& prng) {
  return {static_cast<std::int64_t>(prng.below(2 * kClockDriftPpmMax + 1)) - kClockDriftPpmMax};
}

// Crashes, partitions, slow links and clogs between the lease server and one node at a time;
// only the kinds this seed's swarm allows. A crashed node stops being leader (the checker
// is told).
void nemesis(sim::World& world, sim::Host& server, const std::vector<sim::Host*>& nodes,
             LeaseChecker& checker) {
  run_nemesis(world,
              {.rounds = kFaultRounds,
               .wait_min = 0ms,
               .wait_max = 101ms,
               .duration_min = 20ms,
               .duration_max = 300ms},
              nodes,
              hub_and_spoke_faults(world, server,
                                   {.partition_weight = 3,
                                    .partition_spoke_side_on_heads = true,
                                    .slow_latency_min = 5ms,
                                    .slow_latency_max = 45ms,
                                    .slow_duration_factor = 1,
                                    .spoke_crashed = [&](sim::Host& node) {
                                      checker.stopped(node.name(), current_time());
                                    }}));
}

void simulate(sim::World& world, const Options& options) {
  const bool planted_bug = option_on(options, "planted_bug");
  LeaseChecker checker;
  const DriftClock server_clock = random_clock(world.prng());
  sim::Host& server = world.add_host("lease", "10.0.0.1");
  server.start([&] {
    LeaseServer({.lease = kLease, .clock = [&] { return server_clock.local(current_time()); }})
        .serve(kPort);
  });
  std::vector<sim::Host*> nodes;
  std::vector<DriftClock> clocks;
  for (int n = 1; n <= kNodes; ++n) clocks.push_back(random_clock(world.prng()));
  for (int n = 1; n <= kNodes; ++n) {
    const std::string name = "node" + std::to_string(n);
    sim::Host& host = world.add_host(name, "10.0.1." + std::to_string(n));
    const DriftClock& clock = clocks[n - 1];
    host.start([&, name] {
      LeaseNode node({.server = server.address(),
                      .port = kPort,
                      .name = name,
                      .lease = kLease,
                      .clock_drift_ppm_max = kClockDriftPpmMax,
                      .clock = [&] { return clock.local(current_time()); },
                      .trust_local_clock = planted_bug});
      node.run(
          [&](Time expiry) { checker.granted(name, current_time(), clock.true_time(expiry)); });
    });
    nodes.push_back(&host);
  }
  world.run([&] {
    nemesis(world, server, nodes, checker);
    world.heal_all();
    const Time faults_over = current_time();
    sim::require_progress(kLeaderAfterFaultsWithin, "some node getting the lease after the faults",
                          [&] { return checker.last_grant() > faults_over; });
  });
  if (std::optional<std::string> overlap = checker.overlap()) {
    throw InvariantViolation("two leaders: " + *overlap);
  }
}

}  // namespace

Scenario lease_scenario() {
  Scenario s;
  s.name = "lease";
  s.description =
      "lease-based leader election (a lease server, 3 nodes, every host's clock up to 5% off) "
      "under crashes, partitions, slow links and clogs; never two leaders at the same time";
  s.option_help = {
      {"planted_bug", "off: on = a node trusts its clock for the full lease from the grant"}};
  s.simulate = simulate;
  s.serve = lease::serve_lease;
  s.serve_option_help = lease::serve_lease_option_help();
  return s;
}

}  // namespace trellis::scenarios
