// The pipeline scenario: Pipeline's own behaviour (exactly once with workers stopped, clean
// shutdown at a deadline), the planted bug (a stopped worker drops its item) found within
// 1,000 seeds and replayed, 10,000 clean seeds with the bug off, and the same production
// code on the real epoll backend.
#include "trellis/scenarios/pipeline/pipeline_scenario.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

#include "scenario_sweep.h"
#include "trellis/scenarios/pipeline/pipeline.h"
#include "trellis/sim.h"

namespace trellis::scenarios {
namespace {

using namespace std::chrono_literals;

void expect_closed(const MemoryChannelStatistics& s) {
  EXPECT_EQ(s.open_send_channels, 0u);
  EXPECT_EQ(s.open_receive_channels, 0u);
  EXPECT_EQ(s.tasks_waiting_send + s.tasks_waiting_receive, 0u);
}

// Every item 0..count-1 exactly once, with its value.
void expect_exactly_once(const PipelineReport& report, std::uint64_t count) {
  EXPECT_TRUE(report.completed);
  EXPECT_EQ(report.produced, count);
  std::set<std::uint64_t> seen;
  for (const PipelineResult& r : report.collected) {
    EXPECT_TRUE(seen.insert(r.item).second) << "item " << r.item << " twice";
    EXPECT_EQ(r.value, r.item + 1000);
  }
  EXPECT_EQ(seen.size(), count);
  expect_closed(report.items_at_end);
  expect_closed(report.results_at_end);
}

TEST(Pipeline, StoppedWorkersLoseNoItem) {
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    sim::run_unit(
        [] {
          Pipeline pipeline({.workers = 3, .buffer_size = 1}, [](std::uint64_t item) {
            sleep(100us);
            return item + 1000;
          });
          PipelineReport report;
          open_nursery([&](Nursery& nursery) {
            nursery.start_soon([&] {
              sleep(250us);  // both mid-item
              pipeline.stop_worker(0);
              pipeline.stop_worker(2);
            });
            report = pipeline.run(40, current_time() + 1s);
          });
          expect_exactly_once(report, 40);
          std::set<std::size_t> late_workers;
          for (std::size_t i = 20; i < report.collected.size(); ++i) {
            late_workers.insert(report.collected[i].worker);
          }
          EXPECT_EQ(late_workers, std::set<std::size_t>{1});  // only the one left running
        },
        seed);
  }
}

TEST(Pipeline, ADeadlineShutsEveryStageDownCleanly) {
  sim::run_unit(
      [] {
        Pipeline pipeline({.workers = 2, .buffer_size = 2}, [](std::uint64_t item) {
          sleep(1ms);
          return item + 1000;
        });
        const PipelineReport report = pipeline.run(100, current_time() + 10ms + 500us);
        EXPECT_FALSE(report.completed);
        // Items in hand at the deadline were still finished and collected.
        EXPECT_GE(report.collected.size(), 20u);
        EXPECT_LT(report.collected.size(), 100u);
        expect_closed(report.items_at_end);
        expect_closed(report.results_at_end);
        EXPECT_THROW(pipeline.run(1, current_time() + 1s), std::logic_error);
      },
      1);
  EXPECT_THROW(Pipeline({.workers = 0}, [](std::uint64_t i) { return i; }), std::invalid_argument);
  EXPECT_THROW(Pipeline({}, nullptr), std::invalid_argument);
}

TEST(PipelineScenario, IsRegisteredWithItsOption) {
  const Scenario& pipeline = find_scenario("pipeline");
  EXPECT_NO_THROW(check_options(pipeline, {{"planted_bug", "on"}}));
  EXPECT_THROW(check_options(pipeline, {{"planted", "on"}}), std::invalid_argument);
}

TEST(PipelineScenario, PlantedBugIsFoundWithin1000SeedsAndReplays) {
  const Scenario& pipeline = find_scenario("pipeline");
  const Options bug = {{"planted_bug", "on"}};
  const std::optional<sim::RunResult> failing = first_failing_seed(pipeline, bug);
  ASSERT_TRUE(failing) << "no failing seed in 1..1000";
  EXPECT_NE(failing->failure.find("was never collected (lost)"), std::string::npos)
      << failing->failure;
  expect_failure_reproduces(pipeline, bug, *failing);
}

// 10,000 seeds in four shards (ctest runs them in parallel); sanitizer builds run 250 each.
#if defined(__SANITIZE_ADDRESS__)
constexpr std::uint64_t kSeedsPerShard = 250;
#else
constexpr std::uint64_t kSeedsPerShard = 2500;
#endif

class PipelineScenarioClean : public ::testing::TestWithParam<std::uint64_t> {};

TEST_P(PipelineScenarioClean, NoFailureWithoutTheBug) {
  expect_seeds_pass(find_scenario("pipeline"), {}, 1 + GetParam() * kSeedsPerShard, kSeedsPerShard);
}

INSTANTIATE_TEST_SUITE_P(Shards, PipelineScenarioClean, ::testing::Values(0, 1, 2, 3));

// Real mode: the same Pipeline on the epoll backend and the real clock, a worker stopped
// mid-run.
TEST(PipelineReal, RunsOnTheEpollBackendWithAWorkerStopped) {
  const PipelineReport report = trellis::run([] {
    Pipeline pipeline({.workers = 3, .buffer_size = 2}, [](std::uint64_t item) {
      sleep(50us);
      return item + 1000;
    });
    PipelineReport result;
    open_nursery([&](Nursery& nursery) {
      nursery.start_soon([&] {
        sleep(1ms);
        pipeline.stop_worker(1);
      });
      result = pipeline.run(200, current_time() + 10s);
    });
    return result;
  });
  expect_exactly_once(report, 200);
}

TEST(PipelineReal, ADeadlineOnTheEpollBackendShutsDownCleanly) {
  const PipelineReport report = trellis::run([] {
    Pipeline pipeline({.workers = 2, .buffer_size = 1}, [](std::uint64_t item) {
      sleep(1ms);
      return item + 1000;
    });
    return pipeline.run(10'000, current_time() + 20ms);
  });
  EXPECT_FALSE(report.completed);
  EXPECT_LT(report.collected.size(), 10'000u);
  expect_closed(report.items_at_end);
  expect_closed(report.results_at_end);
}

}  // namespace
}  // namespace trellis::scenarios
