#include "trellis/scenarios/pipeline/pipeline_scenario.h"

#include <chrono>
#include <optional>
#include <set>
#include <string>

#include "trellis/core/cancel_scope.h"
#include "trellis/core/nursery.h"
#include "trellis/core/run.h"
#include "trellis/scenarios/pipeline/pipeline.h"
#include "trellis/sim/liveness.h"

namespace trellis::scenarios {
namespace {

using namespace std::chrono_literals;

constexpr Duration kGenerousDeadline = 10s;
constexpr Duration kDoneWithin = 30s;

std::uint64_t work_value(std::uint64_t item) {
  return item * 3 + 1;
}

struct Oracle {
  std::optional<std::string> violation;
  bool done = false;
};

std::string describe_channel(const char* name, const MemoryChannelStatistics& s) {
  return std::string(name) + " channel: " + std::to_string(s.open_send_channels) + " send and " +
         std::to_string(s.open_receive_channels) + " receive handles open, " +
         std::to_string(s.tasks_waiting_send + s.tasks_waiting_receive) + " tasks waiting";
}

std::optional<std::string> check_report(const PipelineReport& report, std::uint64_t count) {
  std::set<std::uint64_t> seen;
  for (const PipelineResult& result : report.collected) {
    if (result.item >= count) return "item " + std::to_string(result.item) + " was never produced";
    if (result.value != work_value(result.item)) {
      return "item " + std::to_string(result.item) + " has a wrong value";
    }
    if (!seen.insert(result.item).second) {
      return "item " + std::to_string(result.item) + " was collected twice";
    }
  }
  if (report.completed && seen.size() != count) {
    for (std::uint64_t item = 0; item < count; ++item) {
      if (!seen.contains(item)) {
        return "the pipeline completed but item " + std::to_string(item) + " of " +
               std::to_string(count) + " was never collected (lost)";
      }
    }
  }
  for (const auto& [name, s] :
       {std::pair{"items", report.items_at_end}, std::pair{"results", report.results_at_end}}) {
    if (s.open_send_channels + s.open_receive_channels + s.tasks_waiting_send +
            s.tasks_waiting_receive !=
        0) {
      return "unclean shutdown: " + describe_channel(name, s);
    }
  }
  return std::nullopt;
}

void pipeline_main(Oracle& oracle, bool planted_bug, sim::World& world) {
  Prng& prng = world.prng();
  const std::uint64_t count = 30 + prng.below(51);
  const Duration work_time_max = std::chrono::microseconds(50 + prng.below(1000));
  Pipeline pipeline(
      {.workers = 2 + prng.below(3),
       .buffer_size = prng.below(4),
       .drop_item_on_stop = planted_bug},
      [&](std::uint64_t item) {
        const auto max_us =
            std::chrono::duration_cast<std::chrono::microseconds>(work_time_max).count();
        sleep(std::chrono::microseconds(prng.below(static_cast<std::uint64_t>(max_us) + 1)));
        return work_value(item);
      });
  const Duration budget =
      prng.chance(1, 4) ? std::chrono::microseconds(prng.below(20'000)) : kGenerousDeadline;
  const Time deadline = current_time() + budget;
  PipelineReport report;
  open_nursery([&](Nursery& nursery) {
    nursery.start_soon([&] {  // scales the pipeline down while it runs
      const std::uint64_t stops = 1 + prng.below(pipeline.workers() - 1);
      for (std::uint64_t s = 0; s < stops; ++s) {
        sleep(std::chrono::microseconds(prng.below(10'000)));
        pipeline.stop_worker(prng.below(pipeline.workers()));
      }
    });
    report = pipeline.run(count, deadline);
    nursery.cancel_scope().cancel();
  });
  oracle.violation = check_report(report, count);
  if (!oracle.violation && !report.completed && budget == kGenerousDeadline &&
      current_time() >= deadline) {
    oracle.violation = "the pipeline did not finish " + std::to_string(count) +
                       " items within its " + std::to_string(budget.count()) + " ns deadline";
  }
  oracle.done = true;
}

void simulate(sim::World& world, const Options& options) {
  const bool planted_bug = option_on(options, "planted_bug");
  Oracle oracle;
  sim::Host& host = world.add_host("pipeline", "10.0.0.1");
  host.start([&] { pipeline_main(oracle, planted_bug, world); });
  world.run([&] {
    sim::require_progress(kDoneWithin, "the pipeline finishing or shutting down cleanly",
                          [&] { return oracle.done; });
  });
  if (oracle.violation) throw InvariantViolation(*oracle.violation);
}

}  // namespace

Scenario pipeline_scenario() {
  Scenario s;
  s.name = "pipeline";
  s.description =
      "producer -> 2-4 workers on cloned channels -> collector, workers stopped mid-run, a "
      "deadline on the whole; every item collected exactly once, clean shutdown on cancel";
  s.option_help = {
      {"planted_bug", "off: on = a stopped worker drops the item it received but not forwarded"}};
  s.configure = [](sim::Config& config, const Options&) {
    config.cancel_faults.enable_ppm = 500'000;  // half the seeds cut the deadline short
    config.cancel_faults.faults_max = 5;
    config.cancel_faults.step_window = 1'000;
  };
  s.simulate = simulate;
  return s;
}

}  // namespace trellis::scenarios
