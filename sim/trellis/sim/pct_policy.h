// trellis/sim/pct_policy.h — PctPolicy: probabilistic concurrency testing (Burckhardt,
// Kothari, Musuvathi, Nagarakatte, ASPLOS 2010).
//
// Every task gets a random priority when first seen; each step runs the highest-priority
// runnable task; at depth - 1 random change points among the first `steps_estimate` steps,
// the task running at that point drops below every initial priority. A bug that needs
// `depth` ordering constraints among n tasks is found with probability at least
// 1 / (n * k^(depth-1)) per run, k the number of steps.
//
//   trellis::sim::PctPolicy pct(seed, /*depth=*/3);
//   trellis::run(main, {.clock = &mock, .policy = &pct});
//
// PCT as published assumes a task that waits is blocked; a task that polls (a loop of
// sleep(0)) would starve a lower-priority task it waits for. So a runnable task passed over
// for starvation_steps_max consecutive steps runs next, whatever its priority.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <vector>

#include "trellis/base/prng.h"
#include "trellis/sim/step_policy.h"

namespace trellis::sim {

// The one default for the steps estimate (Config::pct_steps_estimate = 0 means "not given":
// the harness learns it from a first run's length, see policy_spec.h; this when it cannot).
inline constexpr std::uint64_t kPctStepsEstimateDefault = 1000;

struct PctOptions {
  // Number of ordering constraints the bugs searched for need (d in the paper); >= 1.
  int depth = 3;
  // Expected number of steps of a run (k in the paper): change points fall in [1, k].
  std::uint64_t steps_estimate = kPctStepsEstimateDefault;
  // Bound on how long a runnable task can be passed over.
  std::uint64_t starvation_steps_max = 1000;
};

class PctPolicy final : public StepPolicy {
 public:
  // Throws std::invalid_argument if depth < 1 or steps_estimate < 1.
  PctPolicy(std::uint64_t seed, int depth);
  PctPolicy(std::uint64_t seed, PctOptions options);

  // The steps at which a priority change happens (sorted), for reports.
  const std::vector<std::uint64_t>& change_points() const noexcept { return change_points_; }

 protected:
  std::size_t decide(std::size_t n, ChoiceKind kind) override;
  std::size_t decide_next_task(std::span<lowlevel::Task* const> runnable) override;

 private:
  std::uint64_t priority_of(const lowlevel::Task& task);

  PctOptions options_;
  Prng prng_;
  // Sorted ascending; each consumed once when steps() reaches it.
  std::vector<std::uint64_t> change_points_;
  std::size_t next_change_ = 0;
  // Task id -> priority (higher runs first). Initial priorities are >= 2^32, those given at
  // change points are < depth, so a demoted task ranks below every other.
  std::map<std::uint64_t, std::uint64_t> priorities_;
  // Task id -> consecutive steps it was runnable but not chosen (absent: 0).
  std::map<std::uint64_t, std::uint64_t> passed_over_;
};

}  // namespace trellis::sim
