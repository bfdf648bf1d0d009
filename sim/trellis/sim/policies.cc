// FifoPolicy, RandomPolicy, DecisionPolicy and PctPolicy (the StepPolicy subclasses).
#include <algorithm>
#include <stdexcept>
#include <string>

#include "trellis/base/assert.h"
#include "trellis/core/task.h"
#include "trellis/sim/decision_policy.h"
#include "trellis/sim/exhaustive_policy.h"
#include "trellis/sim/fifo_policy.h"
#include "trellis/sim/pct_policy.h"
#include "trellis/sim/random_policy.h"

namespace trellis::sim {

std::size_t FifoPolicy::decide(std::size_t n, ChoiceKind kind) {
  (void)n;
  (void)kind;
  return 0;
}

RandomPolicy::RandomPolicy(std::uint64_t seed) : prng_(seed) {}

std::size_t RandomPolicy::decide(std::size_t n, ChoiceKind kind) {
  (void)kind;
  return static_cast<std::size_t>(prng_.below(n));
}

DecisionPolicy::DecisionPolicy(std::vector<std::uint32_t> decisions)
    : decisions_(std::move(decisions)) {}

std::size_t DecisionPolicy::decide(std::size_t n, ChoiceKind kind) {
  (void)kind;
  TRELLIS_ASSERT(next_ <= decisions_.size());
  if (next_ == decisions_.size()) {
    exhausted_ = true;
    return 0;
  }
  return decisions_[next_++] % n;
}

PctPolicy::PctPolicy(std::uint64_t seed, int depth) : PctPolicy(seed, PctOptions{.depth = depth}) {}

PctPolicy::PctPolicy(std::uint64_t seed, PctOptions options) : options_(options), prng_(seed) {
  if (options_.depth < 1) {
    throw std::invalid_argument("PctPolicy: depth must be >= 1, got " +
                                std::to_string(options_.depth));
  }
  if (options_.steps_estimate < 1) {
    throw std::invalid_argument("PctPolicy: steps_estimate must be >= 1");
  }
  if (options_.starvation_steps_max < 1) {
    throw std::invalid_argument("PctPolicy: starvation_steps_max must be >= 1");
  }
  for (int i = 1; i < options_.depth; ++i) {
    change_points_.push_back(1 + prng_.below(options_.steps_estimate));
  }
  std::sort(change_points_.begin(), change_points_.end());
}

std::uint64_t PctPolicy::priority_of(const lowlevel::Task& task) {
  auto [it, inserted] = priorities_.try_emplace(task.id(), 0);
  if (inserted) it->second = (std::uint64_t{1} << 32) + (prng_.next() >> 32);
  return it->second;
}

std::size_t PctPolicy::decide(std::size_t n, ChoiceKind kind) {
  (void)kind;
  // Choices other than the next task (simultaneous events, user choices): uniform.
  return static_cast<std::size_t>(prng_.below(n));
}

std::size_t PctPolicy::decide_next_task(std::span<lowlevel::Task* const> runnable) {
  TRELLIS_ASSERT(runnable.size() >= 2);
  // Starvation guard first: the longest passed-over task beyond the bound runs.
  std::size_t chosen = runnable.size();
  std::uint64_t longest = 0;
  for (std::size_t i = 0; i < runnable.size(); ++i) {
    auto it = passed_over_.find(runnable[i]->id());
    if (it != passed_over_.end() && it->second >= options_.starvation_steps_max &&
        it->second > longest) {
      longest = it->second;
      chosen = i;
    }
  }
  if (chosen == runnable.size()) {
    // Highest priority; ties (possible only between demoted tasks) to the earliest woken.
    std::uint64_t best = 0;
    for (std::size_t i = 0; i < runnable.size(); ++i) {
      const std::uint64_t priority = priority_of(*runnable[i]);
      if (chosen == runnable.size() || priority > best) {
        best = priority;
        chosen = i;
      }
    }
  }
  TRELLIS_ASSERT(chosen < runnable.size());
  for (std::size_t i = 0; i < runnable.size(); ++i) {
    if (i == chosen) {
      passed_over_.erase(runnable[i]->id());
    } else {
      ++passed_over_[runnable[i]->id()];
    }
  }
  // A change point at this step demotes the task that runs now below every initial
  // priority (the i-th change point gives priority depth - i, so later ones rank lower).
  while (next_change_ < change_points_.size() && change_points_[next_change_] <= steps()) {
    ++next_change_;
    priorities_[runnable[chosen]->id()] =
        static_cast<std::uint64_t>(options_.depth) - static_cast<std::uint64_t>(next_change_);
  }
  return chosen;
}

}  // namespace trellis::sim

namespace trellis::sim {

ExhaustivePolicy::ExhaustivePolicy(std::vector<std::uint32_t> prefix, std::vector<ChoicePoint>* log,
                                   std::uint64_t fair_steps_max)
    : prefix_(std::move(prefix)), log_(log), fair_steps_max_(fair_steps_max) {
  TRELLIS_ASSERT(log_ != nullptr);
  TRELLIS_ASSERT(fair_steps_max_ >= 1);
  log_->clear();
}

std::size_t ExhaustivePolicy::take(ChoicePoint point) {
  TRELLIS_ASSERT(point.n >= 2);
  TRELLIS_ASSERT(point.continuing <= point.n);
  TRELLIS_ASSERT(point.preferred < point.n);
  TRELLIS_ASSERT(point.continuing == point.n || point.preferred == point.continuing);
  const std::size_t at = log_->size();
  // A prefix that does not fit the run (a body whose choices differ from one run to the
  // next) is taken modulo n, as DecisionPolicy does; the explorer detects the divergence.
  point.chosen = at < prefix_.size() ? prefix_[at] % point.n : point.preferred;
  log_->push_back(point);
  return point.chosen;
}

std::size_t ExhaustivePolicy::decide(std::size_t n, ChoiceKind kind) {
  (void)kind;
  const auto count = static_cast<std::uint32_t>(n);
  return take(ChoicePoint{.n = count, .chosen = 0, .continuing = count, .preferred = 0});
}

std::size_t ExhaustivePolicy::decide_next_task(std::span<lowlevel::Task* const> runnable) {
  TRELLIS_ASSERT(runnable.size() >= 2);
  const auto count = static_cast<std::uint32_t>(runnable.size());
  ChoicePoint point{.n = count, .chosen = 0, .continuing = count, .preferred = 0};
  if (!last_task_id().has_value()) return take(point);
  for (std::uint32_t i = 0; i < count; ++i) {
    if (runnable[i]->id() != *last_task_id()) continue;
    if (last_task_run_length() < fair_steps_max_) {
      point.continuing = i;
      point.preferred = i;
    } else if (i == 0) {
      point.preferred = 1;  // Fairness: every choice is free, the default moves on.
    }
  }
  return take(point);
}

}  // namespace trellis::sim
