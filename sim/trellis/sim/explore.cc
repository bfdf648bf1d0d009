#include "trellis/sim/explore.h"

#include <algorithm>
#include <exception>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>

#include "trellis/base/assert.h"
#include "trellis/core/errors.h"
#include "trellis/core/run.h"
#include "trellis/fakes/mock_clock.h"
#include "trellis/sim/internal/describe_failure.h"
#include "trellis/sim/internal/dpor_policy.h"
#include "trellis/sim/internal/trace_key.h"

namespace trellis::sim {
namespace {

// One run: replays `prefix`, then defaults; fills `log` with every choice point and, when
// `steps` is not null (bounded reduction), logs the run's steps there too.
using RunOnce = std::function<RunResult(const std::vector<std::uint32_t>& prefix,
                                        std::vector<ChoicePoint>* log, internal::DporLog* steps)>;

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
//
// Bounded reduction (Reduction::kBoundedDpor): the same enumeration, minus the subtrees
// below a node whose prefix is the same Mazurkiewicz trace as that of a node visited before
// with the same task run last (trace_key.h), no fewer preemptions spent, and a run of that
// task no longer than the earlier one's. Why this is sound under the bound, where DPOR's
// backtracking is not: under the contract, the same trace leaves the same state (objects,
// runnable tasks), so every continuation S of the new prefix P2 (a sequence of tasks) is
// also one of the earlier P1, through the same choices; each of its switches is a
// preemption after P1 only if it is one after P2 (the same last task; fairness frees a
// choice after P1 no later than after P2, as P1's run is no shorter). So P1·S is equivalent
// to P2·S (same final state, same values seen by every step, so the same failures) and has
// no more preemptions: within the bound whenever P2·S is. P1's subtree is explored in full
// within the bound (its non-preemptive alternatives at this level, the others at later
// levels), except for subtrees pruned in turn against nodes visited before them: by
// induction on the visiting order, every schedule within the bound has an equivalent one
// that runs. Only subtrees are skipped and each run is still a distinct schedule within the
// bound: never more runs than without reduction. (Coons, Musuvathi & McKinley, OOPSLA 2013,
// show why plain DPOR loses schedules under a bound; this is caching states by their trace
// instead, exact for the bound.)
class Explorer {
 public:
  Explorer(RunOnce run, ExhaustiveOptions options)
      : run_(std::move(run)),
        options_(options),
        reduce_(options.reduction == Reduction::kBoundedDpor) {
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
      internal::DporLog steps;
      RunResult run = run_(path, &log_, reduce_ ? &steps : nullptr);
      ++result_.schedules;
      ++result_.schedules_by_preemptions[level];
      check_replayed(prefix.size(), path);
      if (run.failed) {
        result_.failure = std::move(run);
        result_.failure_preemptions = static_cast<int>(level);
        return false;
      }
      const std::size_t first_new = prefix.size() + frames_.size();
      for (std::size_t i = first_new; i < log_.size(); ++i) {
        frames_.push_back(Frame{.point = log_[i]});
        path.push_back(log_[i].chosen);
      }
      if (reduce_) prune(steps, prefix.size(), first_new, path);
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

  // Bounded reduction (above): the new frames from first_new on, in order, either record
  // their visit or, when a visit before covers them, lose their alternatives, and so do
  // all the frames below them.
  void prune(const internal::DporLog& steps, std::size_t floor, std::size_t first_new,
             const std::vector<std::uint32_t>& path) {
    TRELLIS_ASSERT(steps.nodes.size() == log_.size());
    const std::vector<std::string> keys = internal::prefix_trace_keys(steps, first_new);
    int used = 0;
    for (std::size_t i = 0; i < first_new; ++i) used += log_[i].is_preemption(path[i]) ? 1 : 0;
    for (std::size_t i = first_new; i < log_.size(); ++i) {
      const std::string& key = keys[i - first_new];
      if (!key.empty()) {
        // Fairness frees every choice once the last task's run reaches fair_steps_max: a
        // longer run there costs no more preemptions in any continuation.
        const std::uint64_t run = std::min(steps.nodes[i].run_length, options_.fair_steps_max);
        // (Levels run in order and a level's new nodes all have `level` preemptions before
        // them, so an earlier visit never has more: the check states what the argument needs.)
        std::vector<Visit>& visits = visited_[key];
        const bool covered = std::any_of(visits.begin(), visits.end(), [&](const Visit& v) {
          return v.used <= used && v.run >= run;
        });
        if (covered) {
          ++result_.pruned_subtrees;
          for (std::size_t k = i - floor; k < frames_.size(); ++k) {
            frames_[k].next = frames_[k].point.n;
          }
          return;
        }
        visits.push_back(Visit{.used = used, .run = run});
      }
      used += log_[i].is_preemption(path[i]) ? 1 : 0;
    }
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
  bool reduce_ = false;
  // Bounded reduction: per trace key, each visit's preemptions spent before the node and
  // the last task's run of steps there.
  struct Visit {
    int used = 0;
    std::uint64_t run = 0;
  };
  std::map<std::string, std::vector<Visit>> visited_;
};

// ---- partial-order reduction (explore.h, Reduction::kDpor) ---------------------------------

using internal::DporLog;
using internal::DporNode;
using internal::DporPolicy;
using internal::SleepEntry;
using internal::StepRecord;

// One run under DporPolicy: replays `prefix` with `frontier_sleep` in force at its last
// decision; fills `log`.
using DporRunOnce = std::function<RunResult(const std::vector<std::uint32_t>& prefix,
                                            std::vector<SleepEntry> frontier_sleep, DporLog* log)>;

// Stateless DPOR with sleep sets, depth first (explore.h). Invariant: stack_ is the current
// run's path of decisions (up to where it became redundant), each node with the choices
// still to explore (backtrack \ done, minus tasks asleep on arrival).
class DporExplorer {
 public:
  DporExplorer(DporRunOnce run, ExhaustiveOptions options)
      : run_(std::move(run)), options_(options) {
    if (options_.schedules_max < 1) {
      throw std::invalid_argument("exhaustive: the budget (schedules_max) must be >= 1");
    }
    if (options_.fair_steps_max < 1) {
      throw std::invalid_argument("exhaustive: fair_steps_max must be >= 1");
    }
  }

  ExhaustiveResult explore() {
    std::vector<std::uint32_t> prefix;
    std::vector<SleepEntry> frontier_sleep;
    for (;;) {
      if (result_.schedules >= options_.schedules_max) return std::move(result_);
      TRELLIS_ASSERT(stack_.size() == prefix.size());
      TRELLIS_ASSERT(prefix.empty() || stack_.back().info.point.chosen == prefix.back());
      DporLog log;
      RunResult run = run_(prefix, std::move(frontier_sleep), &log);
      ++result_.schedules;
      if (log.blocked_step != SIZE_MAX) ++result_.sleep_blocked;
      check_replayed(prefix, log);
      const int preemptions = count_preemptions(log);
      if (result_.schedules_by_preemptions.size() <= static_cast<std::size_t>(preemptions)) {
        result_.schedules_by_preemptions.resize(static_cast<std::size_t>(preemptions) + 1, 0);
      }
      ++result_.schedules_by_preemptions[static_cast<std::size_t>(preemptions)];
      if (run.failed) {
        result_.failure = std::move(run);
        result_.failure_preemptions = preemptions;
        return std::move(result_);
      }
      // Races whose later step is in the replayed prefix were reversed after an earlier run:
      // the same steps, the same races. The step in progress at the frontier may differ.
      const std::size_t first_new = prefix.empty() ? 0 : stack_[prefix.size() - 1].info.step;
      extend_stack(prefix.size(), log);
      add_backtracking(log, first_new == 0 ? 0 : first_new - 1);
      if (!next(&prefix, &frontier_sleep)) {
        result_.complete = true;
        return std::move(result_);
      }
    }
  }

 private:
  struct Node {
    DporNode info;                         // as logged when the node was first reached
    std::vector<std::uint32_t> backtrack;  // choices to explore here (indices)
    std::vector<std::uint32_t> done;       // choices explored (or being explored) here
    std::vector<SleepEntry> done_steps;    // task choices: the step each done task ran here
  };

  static bool contains(const std::vector<std::uint32_t>& v, std::uint32_t x) {
    return std::find(v.begin(), v.end(), x) != v.end();
  }

  static int count_preemptions(const DporLog& log) {
    int count = 0;
    for (const DporNode& node : log.nodes) {
      if (node.point.is_preemption(node.point.chosen)) ++count;
    }
    return count;
  }

  void check_replayed(const std::vector<std::uint32_t>& prefix, const DporLog& log) const {
    bool same = log.nodes.size() >= prefix.size();
    for (std::size_t i = 0; same && i < prefix.size(); ++i) {
      same =
          log.nodes[i].point.chosen == prefix[i] && log.nodes[i].point.n == stack_[i].info.point.n;
    }
    if (!same) {
      throw std::logic_error(
          "exhaustive exploration: the body made different choices when given the same "
          "decisions (it is not deterministic: does it read a real clock, an address, or "
          "state left by an earlier run?)");
    }
  }

  // The frontier node learns the step its new choice ran; nodes past it are new.
  void extend_stack(std::size_t prefix_size, const DporLog& log) {
    TRELLIS_ASSERT(stack_.size() == prefix_size);
    if (prefix_size > 0) {
      Node& frontier = stack_.back();
      if (frontier.info.task_choice) {
        TRELLIS_ASSERT(frontier.info.step < log.steps.size());
        frontier.done_steps.push_back(
            SleepEntry{.task = frontier.info.runnable[log.nodes[prefix_size - 1].point.chosen],
                       .step = log.steps[frontier.info.step]});
      }
    }
    const std::size_t end = std::min(log.nodes.size(), log.blocked_node);
    for (std::size_t i = prefix_size; i < end; ++i) {
      Node node{.info = log.nodes[i], .backtrack = {}, .done = {}, .done_steps = {}};
      const std::uint32_t chosen = node.info.point.chosen;
      node.done.push_back(chosen);
      if (node.info.task_choice) {
        node.backtrack.push_back(chosen);
        if (node.info.step < log.steps.size() && node.info.step < log.blocked_step) {
          node.done_steps.push_back(
              SleepEntry{.task = node.info.runnable[chosen], .step = log.steps[node.info.step]});
        }
      } else {
        // Not a next-task choice: every alternative, as without reduction.
        for (std::uint32_t k = 0; k < node.info.point.n; ++k) node.backtrack.push_back(k);
      }
      stack_.push_back(std::move(node));
    }
    TRELLIS_ASSERT(stack_.size() == std::max(prefix_size, end));
  }

  // Source-DPOR (Abdulla, Aronis, Jonsson & Sagonas, POPL 2014) over the run's steps, up to
  // where it became redundant, with vector clocks: clock[j][t] is the last step of task t
  // that happens before step j (or is it). For each race i ⋖ j (dependent steps of
  // different tasks, i before j with nothing between them in happens-before), the steps
  // after i that do not happen after it, then j, are v: a schedule reversing the race starts
  // at i's choice with a task that is an initial of v (its first step in v has no
  // predecessor in v). If no initial is in that choice's backtrack set, one is added.
  // (Flanagan & Godefroid's rule adds j's task itself: with sleep sets that is incomplete,
  // when j's task sleeps at i but needs another task to run first. The property test's random
  // programs lost final states with it.)
  void add_backtracking(const DporLog& log, std::size_t first_new) {
    const std::size_t count = std::min(log.steps.size(), log.blocked_step);
    std::uint64_t tasks = 0;
    for (std::size_t j = 0; j < count; ++j) tasks = std::max(tasks, log.steps[j].task + 1);
    // The task choice that started each step, if any.
    std::vector<std::size_t> node_of_step(count, SIZE_MAX);
    for (std::size_t k = 0; k < stack_.size(); ++k) {
      const DporNode& info = stack_[k].info;
      if (info.task_choice && info.step < count) node_of_step[info.step] = k;
    }
    using Clock = std::vector<std::int64_t>;
    std::vector<Clock> clocks(count);
    std::vector<Clock> bases(count);  // program order and wake-ups only
    std::vector<std::int64_t> last(tasks, -1);
    for (std::size_t j = 0; j < count; ++j) {
      const StepRecord& step = log.steps[j];
      Clock clock(tasks, -1);
      auto join = [&](const Clock& other) {
        for (std::size_t t = 0; t < tasks; ++t) clock[t] = std::max(clock[t], other[t]);
      };
      if (last[step.task] >= 0) join(clocks[static_cast<std::size_t>(last[step.task])]);
      for (std::size_t w : step.woken_by) {
        TRELLIS_ASSERT(w < j);
        join(clocks[w]);
      }
      bases[j] = clock;
      for (std::size_t i = 0; i < j; ++i) {
        if (log.steps[i].task != step.task && internal::dependent(log.steps[i], step)) {
          join(clocks[i]);
        }
      }
      clock[step.task] = static_cast<std::int64_t>(j);
      clocks[j] = std::move(clock);
      last[step.task] = static_cast<std::int64_t>(j);
    }
    auto happens_before = [&](std::size_t a, std::size_t b) {
      return clocks[b][log.steps[a].task] >= static_cast<std::int64_t>(a);
    };
    for (std::size_t j = first_new; j < count; ++j) {
      const StepRecord& step = log.steps[j];
      std::vector<std::size_t> candidates;
      for (std::size_t i = 0; i < j; ++i) {
        const StepRecord& earlier = log.steps[i];
        if (earlier.task == step.task) continue;
        if (bases[j][earlier.task] >= static_cast<std::int64_t>(i)) continue;
        if (internal::dependent(earlier, step)) candidates.push_back(i);
      }
      for (std::size_t i : candidates) {
        const bool immediate =
            std::none_of(candidates.begin(), candidates.end(),
                         [&](std::size_t k) { return k != i && happens_before(i, k); });
        if (immediate) reverse_race(log, i, j, happens_before, node_of_step[i]);
      }
    }
  }

  template <class HappensBefore>
  void reverse_race(const DporLog& log, std::size_t i, std::size_t j,
                    const HappensBefore& happens_before, std::size_t k) {
    if (k == SIZE_MAX) return;  // one runnable task there: nothing else could run
    TRELLIS_ASSERT(k < stack_.size());
    TRELLIS_ASSERT(i < j && log.steps[i].task != log.steps[j].task);
    Node& node = stack_[k];
    TRELLIS_ASSERT(node.info.task_choice && node.info.step == i);
    std::vector<std::size_t> v;
    for (std::size_t m = i + 1; m < j; ++m) {
      if (!happens_before(i, m)) v.push_back(m);
    }
    v.push_back(j);
    std::vector<std::uint64_t> initials;
    std::vector<std::uint64_t> seen;
    for (std::size_t a = 0; a < v.size(); ++a) {
      const std::uint64_t task = log.steps[v[a]].task;
      if (std::find(seen.begin(), seen.end(), task) != seen.end()) continue;
      seen.push_back(task);
      bool first = true;
      for (std::size_t b = 0; b < a && first; ++b) first = !happens_before(v[b], v[a]);
      if (first) initials.push_back(task);
    }
    const std::vector<std::uint64_t>& runnable = node.info.runnable;
    auto index_of = [&](std::uint64_t task) {
      return static_cast<std::uint32_t>(std::find(runnable.begin(), runnable.end(), task) -
                                        runnable.begin());
    };
    TRELLIS_ASSERT(!initials.empty());  // v's first step has no predecessor in v
    for (std::uint64_t task : initials) {
      const std::uint32_t index = index_of(task);
      if (index < runnable.size() && contains(node.backtrack, index)) return;
    }
    // Add one: j's task if it is an initial, else the first; preferably one awake there.
    std::uint32_t pick = static_cast<std::uint32_t>(runnable.size());
    for (int pass = 0; pass < 2 && pick == runnable.size(); ++pass) {
      for (std::uint64_t task : initials) {
        const std::uint32_t index = index_of(task);
        if (index >= runnable.size()) continue;
        if (pass == 0 && asleep(node.info.sleep, task)) continue;
        if (pick == runnable.size() || task == log.steps[j].task) pick = index;
      }
    }
    if (pick < runnable.size()) {
      node.backtrack.push_back(pick);
      return;
    }
    // No initial was runnable there (not expected): every runnable task, conservatively.
    for (std::uint32_t index = 0; index < runnable.size(); ++index) {
      if (!contains(node.backtrack, index)) node.backtrack.push_back(index);
    }
  }

  // The deepest node with a choice left: the next prefix and the sleep set at its end.
  bool next(std::vector<std::uint32_t>* prefix, std::vector<SleepEntry>* frontier_sleep) {
    while (!stack_.empty()) {
      Node& node = stack_.back();
      std::uint32_t choice = node.info.point.n;
      for (std::uint32_t candidate : node.backtrack) {
        if (contains(node.done, candidate)) continue;
        if (node.info.task_choice && asleep(node.info.sleep, node.info.runnable[candidate])) {
          continue;  // explored from an ancestor, in an equivalent order
        }
        choice = std::min(choice, candidate);
      }
      if (choice < node.info.point.n) {
        node.done.push_back(choice);
        prefix->clear();
        for (std::size_t k = 0; k + 1 < stack_.size(); ++k) {
          prefix->push_back(stack_[k].info.point.chosen);
        }
        prefix->push_back(choice);
        *frontier_sleep = node.info.sleep;
        if (node.info.task_choice) {
          for (const SleepEntry& entry : node.done_steps) frontier_sleep->push_back(entry);
        }
        // The replayed prefix logs the chosen choice at this node afresh.
        node.info.point.chosen = choice;
        return true;
      }
      stack_.pop_back();
    }
    return false;
  }

  static bool asleep(const std::vector<SleepEntry>& sleep, std::uint64_t task) {
    return std::any_of(sleep.begin(), sleep.end(),
                       [&](const SleepEntry& entry) { return entry.task == task; });
  }

  DporRunOnce run_;
  ExhaustiveOptions options_;
  ExhaustiveResult result_;
  std::vector<Node> stack_;
};

// The choice points of a DporPolicy run, as ExhaustivePolicy would have logged them.
void copy_points(const DporLog& steps, std::vector<ChoicePoint>* log) {
  log->clear();
  for (const DporNode& node : steps.nodes) log->push_back(node.point);
}

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
  auto finish = [&](RunResult result, const StepPolicy& policy) {
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
  // One run of the body under `policy`: a throw is the run's failure.
  auto run_under = [&](StepPolicy& policy) {
    RunResult result;
    try {
      run_unit_with(body, policy);
    } catch (...) {
      result.failed = true;
      result.failure = internal::describe_failure(std::current_exception());
    }
    return finish(std::move(result), policy);
  };
  if (options.reduction == Reduction::kDpor) {
    auto run_reduced = [&](const std::vector<std::uint32_t>& prefix,
                           std::vector<SleepEntry> frontier_sleep, DporLog* log) {
      DporPolicy policy(prefix, std::move(frontier_sleep), log, fair_steps_max);
      return run_under(policy);
    };
    return DporExplorer(run_reduced, options).explore();
  }
  auto run_once = [&](const std::vector<std::uint32_t>& prefix, std::vector<ChoicePoint>* log,
                      DporLog* steps) {
    if (steps != nullptr) {  // bounded reduction: DporPolicy with nothing asleep logs the steps
      DporPolicy policy(prefix, {}, steps, fair_steps_max);
      RunResult result = run_under(policy);
      copy_points(*steps, log);
      return result;
    }
    ExhaustivePolicy policy(prefix, log, fair_steps_max);
    return run_under(policy);
  };
  return Explorer(run_once, options).explore();
}

ExhaustiveResult explore_simulation(const SimBody& body, const Config& config,
                                    ExhaustiveOptions options, const FailureProbe& probe) {
  const std::uint64_t fair_steps_max = options.fair_steps_max;
  // One run of the world with the policy `make_policy` builds.
  auto run_under = [&](std::function<std::unique_ptr<SchedulePolicy>(std::uint64_t)> make_policy) {
    Config each = config;
    each.policy_factory = std::move(make_policy);
    RunResult result = run_simulation(body, each, probe);
    // What replays it: the same seed with the decisions made, no factory.
    result.config.policy_factory = nullptr;
    result.config.policy = PolicyKind::kDecisions;
    result.config.decisions = result.decisions;
    return result;
  };
  if (options.reduction == Reduction::kDpor) {
    auto run_reduced = [&](const std::vector<std::uint32_t>& prefix,
                           std::vector<SleepEntry> frontier_sleep, DporLog* log) {
      return run_under([&](std::uint64_t) -> std::unique_ptr<SchedulePolicy> {
        return std::make_unique<DporPolicy>(prefix, frontier_sleep, log, fair_steps_max);
      });
    };
    return DporExplorer(run_reduced, options).explore();
  }
  auto run_once = [&](const std::vector<std::uint32_t>& prefix, std::vector<ChoicePoint>* log,
                      DporLog* steps) {
    if (steps != nullptr) {  // bounded reduction: DporPolicy with nothing asleep logs the steps
      RunResult result = run_under([&](std::uint64_t) -> std::unique_ptr<SchedulePolicy> {
        return std::make_unique<DporPolicy>(prefix, std::vector<SleepEntry>{}, steps,
                                            fair_steps_max);
      });
      copy_points(*steps, log);
      return result;
    }
    return run_under([&](std::uint64_t) -> std::unique_ptr<SchedulePolicy> {
      return std::make_unique<ExhaustivePolicy>(prefix, log, fair_steps_max);
    });
  };
  return Explorer(run_once, options).explore();
}

std::string describe(const ExhaustiveResult& result, const ExhaustiveOptions& options) {
  if (options.reduction == Reduction::kDpor) {
    std::string out = "explored " + std::to_string(result.schedules) + " schedules with DPOR (" +
                      std::to_string(result.sleep_blocked) + " redundant): ";
    if (result.failure.has_value()) {
      return out + "failed at a schedule with " + std::to_string(result.failure_preemptions) +
             " preemption(s) (" + std::to_string(result.failure->decisions.size()) + " decisions)";
    }
    if (result.complete) return out + "complete, every Mazurkiewicz trace (no preemption bound)";
    return out + "cut by the budget of " + std::to_string(options.schedules_max) + " schedules";
  }
  std::string out = "explored " + std::to_string(result.schedules) + " schedules: ";
  if (options.reduction == Reduction::kBoundedDpor) {
    out = "explored " + std::to_string(result.schedules) + " schedules with bounded reduction (" +
          std::to_string(result.pruned_subtrees) + " subtrees skipped): ";
  }
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
