#include "trellis/sim/harness.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <exception>
#include <stdexcept>
#include <tuple>
#include <utility>

#include "trellis/base/assert.h"
#include "trellis/core/errors.h"
#include "trellis/core/run.h"
#include "trellis/fakes/mock_clock.h"
#include "trellis/sim/internal/describe_failure.h"
#include "trellis/sim/random_policy.h"
#include "trellis/sim/step_policy.h"

namespace trellis::sim {

ReplayFile RunResult::replay(const std::string& scenario,
                             std::map<std::string, std::string> options) const {
  ReplayFile file;
  file.scenario = scenario;
  file.seed = config.seed;
  file.policy = PolicyKind::kDecisions;
  file.pct_depth = config.pct_depth;
  file.options = std::move(options);
  file.decisions = decisions;
  file.fault_plan = config.fault_plan;
  return file;
}

RunResult run_simulation(const SimBody& body, const Config& config, const FailureProbe& probe,
                         Trace* keep_trace) {
  RunResult result;
  result.config = config;
  World world(config);
  try {
    body(world);
  } catch (...) {
    result.failed = true;
    result.failure = internal::describe_failure(std::current_exception());
  }
  if (probe) {
    if (std::optional<std::string> failure = probe()) {
      if (!result.failed) result.failure = *failure;
      result.failed = true;
    }
  }
  result.trace_hash = world.trace().hash();
  result.trace_events = world.trace().event_count();
  result.virtual_time = world.now().time_since_epoch();
  result.host_names = world.host_names();
  if (auto* step = dynamic_cast<StepPolicy*>(&world.policy())) result.decisions = step->recorded();
  if (keep_trace != nullptr) *keep_trace = world.trace();
  return result;
}

Config replay_config(const ReplayFile& replay, Config base) {
  base.seed = replay.seed;
  base.policy = replay.policy;
  base.pct_depth = replay.pct_depth;
  base.decisions = replay.decisions;
  base.fault_plan = replay.fault_plan;
  return base;
}

std::size_t non_default_decisions(const std::vector<std::uint32_t>& decisions) {
  return static_cast<std::size_t>(
      std::count_if(decisions.begin(), decisions.end(), [](std::uint32_t d) { return d != 0; }));
}

namespace {

// Shortest fault kept when halving durations, and the grains a start is rounded down to.
constexpr Duration kFaultDurationMin = std::chrono::milliseconds(1);
constexpr std::array<Duration, 3> kFaultStartGrains = {
    std::chrono::milliseconds(100), std::chrono::milliseconds(10), std::chrono::milliseconds(1)};
// Halvings tried per fault's duration.
constexpr int kFaultHalvingsMax = 4;
// Rounds of all the passes (each round that changes nothing ends shrinking).
constexpr int kShrinkRoundsMax = 4;

// The shrinking passes over one failing run. Invariant: best_ is a failing run whose config
// (decisions and fault plan) replays it; every accepted candidate is no bigger in the measure
// (faults, non-default decisions, length) than the one it replaced.
class Shrinker {
 public:
  Shrinker(const SimBody& body, const FailureProbe& probe, ShrinkOptions options)
      : body_(body), probe_(probe), options_(options) {}

  // The failing run's own decisions and plan must fail again (they replay it).
  bool reproduce(const RunResult& failing) {
    Config config = failing.config;
    config.policy = PolicyKind::kDecisions;
    config.decisions = failing.decisions;
    return attempt(std::move(config));
  }

  void drop_faults() {
    for (std::size_t chunk = std::max<std::size_t>(plan().faults.size() / 2, 1);
         chunk >= 1 && !exhausted(); chunk /= 2) {
      // Last chunk first: later faults matter less to the failure more often.
      for (std::size_t end = plan().faults.size(); end > 0 && !exhausted();) {
        const std::size_t start = end > chunk ? end - chunk : 0;
        Config candidate = best_->config;
        auto& faults = candidate.fault_plan.faults;
        faults.erase(faults.begin() + static_cast<std::ptrdiff_t>(start),
                     faults.begin() + static_cast<std::ptrdiff_t>(end));
        attempt(std::move(candidate));
        end = std::min(start, plan().faults.size());
      }
      if (chunk == 1) break;
    }
  }

  // Two faults of the same kind on the same hosts made one that spans both (one fault
  // fewer, if the run still fails with the link also down in between).
  void merge_faults() {
    for (std::size_t i = 0; i < plan().faults.size() && !exhausted(); ++i) {
      for (std::size_t j = i + 1; j < plan().faults.size() && !exhausted(); ++j) {
        const PlannedFault& x = plan().faults[i];
        const PlannedFault& y = plan().faults[j];
        if (x.kind != y.kind || x.a != y.a || x.b != y.b || x.latency != y.latency) continue;
        Config candidate = best_->config;
        PlannedFault& merged = candidate.fault_plan.faults[i];
        const Duration end = std::max(x.at + x.duration, y.at + y.duration);
        merged.at = std::min(x.at, y.at);
        merged.duration = end - merged.at;
        candidate.fault_plan.faults.erase(candidate.fault_plan.faults.begin() +
                                          static_cast<std::ptrdiff_t>(j));
        if (attempt(std::move(candidate))) --j;  // the next fault is at j now
      }
    }
  }

  // The shortest failing prefix (FIFO after it), by bisection.
  void cut_tail() {
    std::size_t low = 0;
    std::size_t high = decisions().size();
    while (low < high && !exhausted()) {
      const std::size_t mid = low + (high - low) / 2;
      Config candidate = best_->config;
      candidate.decisions.resize(mid);
      if (attempt(std::move(candidate))) {
        high = mid;
      } else {
        low = mid + 1;
      }
    }
  }

  // Chunks of the non-zero decisions set to 0, halving the chunk size (ddmin over the
  // positions that are not the default, wherever they are in the stream); all of them
  // first (the faults alone may fail the run).
  void zero_decisions() {
    for (std::size_t chunk = non_default_decisions(decisions()); chunk >= 1 && !exhausted();
         chunk /= 2) {
      std::size_t skip = 0;  // non-zero decisions left alone in this round, from the front
      while (skip < non_default_decisions(decisions()) && !exhausted()) {
        Config candidate = best_->config;
        std::size_t seen = 0;
        std::size_t zeroed = 0;
        for (std::uint32_t& d : candidate.decisions) {
          if (d == 0) continue;
          if (seen++ < skip) continue;
          d = 0;
          if (++zeroed == chunk) break;
        }
        if (!attempt(std::move(candidate))) skip += chunk;
      }
      if (chunk == 1) break;
    }
    trim_trailing_zeros();
  }

  // Each fault shorter (durations halved) and its start rounded down, while it still fails.
  void shorten_faults() {
    for (std::size_t i = 0; i < plan().faults.size() && !exhausted(); ++i) {
      for (int halving = 0; halving < kFaultHalvingsMax && !exhausted(); ++halving) {
        Config candidate = best_->config;
        PlannedFault& f = candidate.fault_plan.faults[i];
        // Whole microseconds: what a replay file holds.
        const Duration half = std::chrono::floor<std::chrono::microseconds>(f.duration / 2);
        if (half < kFaultDurationMin) break;
        f.duration = half;
        if (!attempt(std::move(candidate))) break;
      }
      for (Duration grain : kFaultStartGrains) {
        if (exhausted()) break;
        Config candidate = best_->config;
        PlannedFault& f = candidate.fault_plan.faults[i];
        const Duration rounded = f.at - f.at % grain;
        if (rounded == f.at) break;
        f.at = rounded;
        if (attempt(std::move(candidate))) break;
      }
    }
  }

  ShrinkResult finish(const RunResult& failing) {
    ShrinkResult out;
    out.runs = runs_;
    out.decisions_before = failing.decisions.size();
    out.non_default_before = non_default_decisions(failing.decisions);
    out.faults_before = failing.config.fault_plan.faults.size();
    out.run = best_.has_value() ? std::move(*best_) : failing;
    // What replays it: the decisions given (not those recorded after the FIFO fallback).
    if (best_.has_value()) out.run.decisions = out.run.config.decisions;
    return out;
  }

  bool exhausted() const { return runs_ >= options_.runs_max; }

  // What shrinking minimizes, most important first: faults, non-default decisions, length,
  // and the faults' total duration.
  std::tuple<std::size_t, std::size_t, std::size_t, Duration> measure() const {
    Duration total{};
    for (const PlannedFault& f : plan().faults) total += f.duration;
    return {plan().faults.size(), non_default_decisions(decisions()), decisions().size(), total};
  }

 private:
  const std::vector<std::uint32_t>& decisions() const { return best_->config.decisions; }
  const FaultPlan& plan() const { return best_->config.fault_plan; }

  void trim_trailing_zeros() {
    std::vector<std::uint32_t> trimmed = decisions();
    while (!trimmed.empty() && trimmed.back() == 0) trimmed.pop_back();
    if (trimmed.size() == decisions().size() || exhausted()) return;
    Config candidate = best_->config;
    candidate.decisions = std::move(trimmed);
    attempt(std::move(candidate));
  }

  // Runs config; keeps it as the best if it fails. True if it failed.
  bool attempt(Config config) {
    TRELLIS_ASSERT(!exhausted());
    TRELLIS_ASSERT(config.policy == PolicyKind::kDecisions);
    ++runs_;
    RunResult r = run_simulation(body_, config, probe_);
    if (!r.failed) return false;
    best_ = std::move(r);
    return true;
  }

  const SimBody& body_;
  const FailureProbe& probe_;
  ShrinkOptions options_;
  std::size_t runs_ = 0;
  std::optional<RunResult> best_;
};

}  // namespace

ShrinkResult shrink(const SimBody& body, const RunResult& failing, const FailureProbe& probe,
                    ShrinkOptions options) {
  TRELLIS_ASSERT(failing.failed);
  TRELLIS_ASSERT(options.runs_max >= 1);
  Shrinker shrinker(body, probe, options);
  // Not reproducible from its decisions (should not happen): report the run itself.
  if (!shrinker.reproduce(failing)) return shrinker.finish(failing);
  // Each pass can open a way for the others (a shorter fault lets another go; a zeroed
  // decision makes a fault unnecessary): rounds until one changes nothing.
  for (int round = 0; round < kShrinkRoundsMax && !shrinker.exhausted(); ++round) {
    const auto before = shrinker.measure();
    shrinker.drop_faults();
    shrinker.merge_faults();
    shrinker.cut_tail();
    shrinker.zero_decisions();
    shrinker.shorten_faults();
    if (shrinker.measure() == before) break;
  }
  return shrinker.finish(failing);
}

void run_unit(const std::function<void()>& body, std::uint64_t seed) {
  fakes::MockClock clock;
  clock.set_autojump_threshold(Duration::zero());
  RandomPolicy policy(seed);
  RunOptions options;
  options.clock = &clock;
  options.policy = &policy;
  options.check_lock_order = true;  // lock-order inversions fail the test (sync/lock_order.h)
  trellis::run([&] { body(); }, std::move(options));
}

std::optional<std::string> check_determinism(const SimBody& body, const Config& config) {
  Trace first_trace;
  Trace second_trace;
  RunResult first = run_simulation(body, config, {}, &first_trace);
  RunResult second = run_simulation(body, config, {}, &second_trace);
  if (first.trace_hash == second.trace_hash && first.trace_events == second.trace_events) {
    return std::nullopt;
  }
  return "seed " + std::to_string(config.seed) + " is not deterministic (" +
         std::to_string(first.trace_events) + " vs " + std::to_string(second.trace_events) +
         " events); " + divergence_report(first_trace, second_trace);
}

std::vector<std::uint64_t> shard_seeds(std::uint64_t base, std::uint64_t count, std::uint64_t index,
                                       std::uint64_t total) {
  if (total == 0 || index >= total) {
    throw std::invalid_argument("shard index " + std::to_string(index) + " out of " +
                                std::to_string(total) + " shards");
  }
  std::vector<std::uint64_t> seeds;
  for (std::uint64_t i = index; i < count; i += total) seeds.push_back(base + i);
  return seeds;
}

}  // namespace trellis::sim
