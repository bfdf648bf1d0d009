#include "trellis/sim/harness.h"

#include <algorithm>
#include <exception>
#include <stdexcept>
#include <utility>

#include "trellis/base/assert.h"
#include "trellis/core/errors.h"
#include "trellis/core/exception_group.h"
#include "trellis/core/run.h"
#include "trellis/fakes/mock_clock.h"
#include "trellis/sim/random_policy.h"
#include "trellis/sim/step_policy.h"

namespace trellis::sim {
namespace {

// The failure as a reader wants it: nested exception groups flattened to their leaves.
std::string describe_failure(const std::exception_ptr& error, int depth = 0) {
  try {
    std::rethrow_exception(error);
  } catch (const ExceptionGroup& group) {
    if (depth > 8) return group.what();
    std::string out;
    for (const std::exception_ptr& inner : group.exceptions()) {
      out += (out.empty() ? "" : "; ") + describe_failure(inner, depth + 1);
    }
    return out.empty() ? group.what() : out;
  } catch (const std::exception& e) {
    return e.what();
  } catch (const Cancelled&) {
    return "Cancelled escaped the run";
  } catch (...) {
    return "an exception of unknown type";
  }
}

}  // namespace

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
    result.failure = describe_failure(std::current_exception());
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

ShrinkResult shrink(const SimBody& body, const RunResult& failing, const FailureProbe& probe,
                    ShrinkOptions options) {
  TRELLIS_ASSERT(failing.failed);
  ShrinkResult out;
  out.decisions_before = failing.decisions.size();
  Config config = failing.config;
  config.policy = PolicyKind::kDecisions;
  // Runs the current best's config with other decisions (and, if given, another plan).
  std::optional<RunResult> best;
  auto attempt = [&](const std::vector<std::uint32_t>& decisions,
                     const FaultPlan* plan = nullptr) -> std::optional<RunResult> {
    if (out.runs >= options.runs_max) return std::nullopt;
    ++out.runs;
    Config c = best.has_value() ? best->config : config;
    c.decisions = decisions;
    if (plan != nullptr) c.fault_plan = *plan;
    RunResult r = run_simulation(body, c, probe);
    if (!r.failed) return std::nullopt;
    return r;
  };
  // The original schedule as a decision stream must fail too (it replays the run).
  best = attempt(failing.decisions);
  if (!best.has_value()) {
    // Not reproducible from its decisions (should not happen: report the run itself).
    out.run = failing;
    return out;
  }
  auto current = [&]() -> const std::vector<std::uint32_t>& { return best->config.decisions; };
  // 0. Fewer faults: drop planned faults one at a time, last first, while it still fails.
  for (std::size_t i = best->config.fault_plan.faults.size(); i-- > 0;) {
    if (out.runs >= options.runs_max) break;
    FaultPlan fewer = best->config.fault_plan;
    fewer.faults.erase(fewer.faults.begin() + static_cast<std::ptrdiff_t>(i));
    if (std::optional<RunResult> r = attempt(current(), &fewer)) best = std::move(r);
  }
  // 1. Shorter: the shortest prefix that still fails (FIFO after it), by bisection.
  {
    std::size_t low = 0;
    std::size_t high = current().size();
    while (low < high) {
      const std::size_t mid = low + (high - low) / 2;
      std::vector<std::uint32_t> prefix(current().begin(),
                                        current().begin() + static_cast<std::ptrdiff_t>(mid));
      if (std::optional<RunResult> r = attempt(prefix)) {
        best = std::move(r);
        high = mid;
      } else {
        low = mid + 1;
      }
      if (out.runs >= options.runs_max) break;
    }
  }
  // 2. Smaller: zero chunks (FIFO choices), halving the chunk size.
  for (std::size_t chunk = std::max<std::size_t>(current().size() / 2, 1);
       chunk >= 1 && out.runs < options.runs_max; chunk /= 2) {
    for (std::size_t start = 0; start < current().size() && out.runs < options.runs_max;
         start += chunk) {
      std::vector<std::uint32_t> candidate = current();
      bool changed = false;
      for (std::size_t i = start; i < std::min(start + chunk, candidate.size()); ++i) {
        changed |= candidate[i] != 0;
        candidate[i] = 0;
      }
      if (!changed) continue;
      if (std::optional<RunResult> r = attempt(candidate)) best = std::move(r);
    }
    if (chunk == 1) break;
  }
  // 3. Trailing zeros are what the FIFO fallback does anyway.
  std::vector<std::uint32_t> trimmed = current();
  while (!trimmed.empty() && trimmed.back() == 0) trimmed.pop_back();
  if (trimmed.size() < current().size()) {
    if (std::optional<RunResult> r = attempt(trimmed)) best = std::move(r);
  }
  out.run = std::move(*best);
  // What replays it: the decisions given (not those recorded after the FIFO fallback).
  out.run.decisions = out.run.config.decisions;
  return out;
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
