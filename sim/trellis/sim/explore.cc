#include "trellis/sim/explore.h"

#include <exception>
#include <memory>
#include <stdexcept>
#include <utility>

#include "trellis/base/assert.h"
#include "trellis/core/errors.h"
#include "trellis/core/run.h"
#include "trellis/fakes/mock_clock.h"
#include "trellis/sim/internal/describe_failure.h"

namespace trellis::sim {
namespace {

// One run: replays `prefix`, then defaults; fills `log` with every choice point.
using RunOnce = std::function<RunResult(const std::vector<std::uint32_t>& prefix,
                                        std::vector<ChoicePoint>* log)>;

// The k-th alternative at a point: its default first (what the first run through it took),
// then every other index in order.
std::uint32_t alternative(const ChoicePoint& point, std::uint32_t k) {
  TRELLIS_ASSERT(k < point.n);
  if (k == 0) return point.preferred;
  return k - 1 < point.preferred ? k - 1 : k;
}

// Depth-first enumeration of decision sequences, level by level (iterative context
// bounding). Invariant: every sequence in pending_[p] has exactly p preemptions, and each
// prefix enters pending_ once, so each schedule runs exactly once.
class Explorer {
 public:
  Explorer(RunOnce run, ExhaustiveOptions options) : run_(std::move(run)), options_(options) {
    if (options_.preemption_bound < 0) {
      throw std::invalid_argument("exhaustive: preemption bound must be >= 0, got " +
                                  std::to_string(options_.preemption_bound));
    }
    if (options_.schedules_max < 1) {
      throw std::invalid_argument("exhaustive: the budget (schedules_max) must be >= 1");
    }
    if (options_.fair_steps_max < 1) {
      throw std::invalid_argument("exhaustive: fair_steps_max must be >= 1");
    }
  }

  ExhaustiveResult explore() {
    const auto levels = static_cast<std::size_t>(options_.preemption_bound) + 1;
    pending_.resize(levels);
    dropped_.assign(levels, false);
    result_.schedules_by_preemptions.assign(levels, 0);
    pending_[0].emplace_back();
    for (std::size_t level = 0; level < levels; ++level) {
      // explore_from() appends to pending_[level + 1] only: indexing stays valid.
      for (std::size_t i = 0; i < pending_[level].size(); ++i) {
        if (!explore_from(pending_[level][i], level)) return std::move(result_);
      }
      pending_[level] = {};
      if (dropped_[level]) cut_ = true;
      if (!cut_) result_.bound_covered = static_cast<int>(level);
    }
    result_.complete = !cut_;
    return std::move(result_);
  }

 private:
  struct Frame {
    ChoicePoint point;
    std::uint32_t next = 1;  // the next alternative to try (0, the default, ran first)
  };

  // Every schedule extending `prefix` with no further preemption; choices that would cost
  // one go to pending_[level + 1]. False when exploration must stop (failure, budget).
  bool explore_from(const std::vector<std::uint32_t>& prefix, std::size_t level) {
    std::vector<std::uint32_t> path = prefix;
    frames_.clear();
    for (;;) {
      if (result_.schedules >= options_.schedules_max) {
        cut_ = true;
        return false;
      }
      RunResult run = run_(path, &log_);
      ++result_.schedules;
      ++result_.schedules_by_preemptions[level];
      check_replayed(prefix.size(), path);
      if (run.failed) {
        result_.failure = std::move(run);
        result_.failure_preemptions = static_cast<int>(level);
        return false;
      }
      for (std::size_t i = prefix.size() + frames_.size(); i < log_.size(); ++i) {
        frames_.push_back(Frame{.point = log_[i]});
        path.push_back(log_[i].chosen);
      }
      if (!backtrack(prefix.size(), level, &path)) return true;
    }
  }

  // Moves `path` to the next sequence at this level; false when the subtree is done.
  bool backtrack(std::size_t floor, std::size_t level, std::vector<std::uint32_t>* path) {
    TRELLIS_ASSERT(path->size() == floor + frames_.size());
    while (!frames_.empty()) {
      Frame& frame = frames_.back();
      const std::size_t node = floor + frames_.size() - 1;
      while (frame.next < frame.point.n) {
        const std::uint32_t choice = alternative(frame.point, frame.next++);
        path->resize(node);
        path->push_back(choice);
        if (!frame.point.is_preemption(choice)) return true;
        defer(*path, level + 1);
      }
      frames_.pop_back();
      path->resize(node);
    }
    TRELLIS_ASSERT(path->size() == floor);
    return false;
  }

  void defer(const std::vector<std::uint32_t>& path, std::size_t level) {
    if (level >= pending_.size()) return;  // beyond the bound: not explored, by definition
    if (pending_[level].size() >= options_.schedules_max) {
      dropped_[level] = true;  // could never run them all within the budget anyway
      return;
    }
    pending_[level].push_back(path);
  }

  // The run took every choice of `path`, and those of the frames are at the same points.
  void check_replayed(std::size_t floor, const std::vector<std::uint32_t>& path) const {
    bool same = log_.size() >= path.size();
    for (std::size_t i = 0; same && i < path.size(); ++i) same = log_[i].chosen == path[i];
    for (std::size_t i = 0; same && i < frames_.size(); ++i) {
      same = log_[floor + i].n == frames_[i].point.n;
    }
    if (!same) {
      throw std::logic_error(
          "exhaustive exploration: the body made different choices when given the same "
          "decisions (it is not deterministic: does it read a real clock, an address, or "
          "state left by an earlier run?)");
    }
  }

  RunOnce run_;
  ExhaustiveOptions options_;
  ExhaustiveResult result_;
  std::vector<std::vector<std::vector<std::uint32_t>>> pending_;
  std::vector<Frame> frames_;     // the choice points past the current prefix, in order
  std::vector<ChoicePoint> log_;  // the last run's choice points
  // dropped_[p]: a prefix with p preemptions was not kept (budget): level p is incomplete.
  std::vector<bool> dropped_;
  bool cut_ = false;  // the budget stopped a level: it and all after it are incomplete
};

}  // namespace

void run_unit_with(const std::function<void()>& body, SchedulePolicy& policy) {
  fakes::MockClock clock;
  clock.set_autojump_threshold(Duration::zero());
  RunOptions options;
  options.clock = &clock;
  options.policy = &policy;
  trellis::run([&] { body(); }, std::move(options));
}

ExhaustiveResult explore_exhaustively(const std::function<void()>& body,
                                      ExhaustiveOptions options) {
  return explore_exhaustively(body, options, FailureProbe{});
}

ExhaustiveResult explore_exhaustively(const std::function<void()>& body, ExhaustiveOptions options,
                                      const FailureProbe& probe) {
  const std::uint64_t fair_steps_max = options.fair_steps_max;
  auto run_once = [&](const std::vector<std::uint32_t>& prefix, std::vector<ChoicePoint>* log) {
    ExhaustivePolicy policy(prefix, log, fair_steps_max);
    RunResult result;
    try {
      run_unit_with(body, policy);
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
    result.decisions = policy.recorded();
    result.config.policy = PolicyKind::kDecisions;
    result.config.decisions = result.decisions;
    return result;
  };
  return Explorer(run_once, options).explore();
}

ExhaustiveResult explore_simulation(const SimBody& body, const Config& config,
                                    ExhaustiveOptions options, const FailureProbe& probe) {
  const std::uint64_t fair_steps_max = options.fair_steps_max;
  auto run_once = [&](const std::vector<std::uint32_t>& prefix, std::vector<ChoicePoint>* log) {
    Config each = config;
    each.policy_factory = [&](std::uint64_t) -> std::unique_ptr<SchedulePolicy> {
      return std::make_unique<ExhaustivePolicy>(prefix, log, fair_steps_max);
    };
    RunResult result = run_simulation(body, each, probe);
    // What replays it: the same seed with the decisions made, no factory.
    result.config.policy_factory = nullptr;
    result.config.policy = PolicyKind::kDecisions;
    result.config.decisions = result.decisions;
    return result;
  };
  return Explorer(run_once, options).explore();
}

std::string describe(const ExhaustiveResult& result, const ExhaustiveOptions& options) {
  std::string out = "explored " + std::to_string(result.schedules) + " schedules: ";
  if (result.failure.has_value()) {
    return out + "failed at a schedule with " + std::to_string(result.failure_preemptions) +
           " preemption(s) (" + std::to_string(result.failure->decisions.size()) + " decisions)";
  }
  if (result.complete) {
    return out + "complete for preemption bound " + std::to_string(options.preemption_bound);
  }
  return out + "cut by the budget of " + std::to_string(options.schedules_max) + " schedules (" +
         (result.bound_covered < 0 ? std::string("not even bound 0 covered")
                                   : "bound " + std::to_string(result.bound_covered) + " covered") +
         ")";
}

}  // namespace trellis::sim
