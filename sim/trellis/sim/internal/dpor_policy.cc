#include "trellis/sim/internal/dpor_policy.h"

#include <algorithm>
#include <utility>

#include "trellis/base/assert.h"
#include "trellis/core/task.h"

namespace trellis::sim::internal {
namespace {

using lowlevel::Access;
using lowlevel::ObjectId;

bool conflicts(Access a, Access b) noexcept {
  if (a == Access::kRead && b == Access::kRead) return false;
  if (a == Access::kCommute && b == Access::kCommute) return false;
  return true;
}

// Two accesses of one step to one object: the one that commutes with less.
Access strongest(Access a, Access b) noexcept {
  return a == b ? a : Access::kWrite;
}

// Identities: objects created in a run are numbered (task id + 2, k-th creation by that
// task), or (1, k-th) when the loop creates them; 1 is kTaskNumberingObject. An object created
// outside the run (before a World's run starts, or before the exploration, then kept across runs)
// is numbered on first use with the top bit set, counting per run: the same in two runs that agree
// up to that use. Where runs diverge, the first new number is the same in both, and the step that
// numbers an object records a write to it: so a sleeping step that numbered an object conflicts
// with the first step after the divergence that numbers one (a false dependency, conservative),
// and an object never goes unseen under two numbers.
constexpr ObjectId kOutsideRun = ObjectId{1} << 63;
constexpr int kCreatorShift = 32;

}  // namespace

bool dependent(const StepRecord& a, const StepRecord& b) noexcept {
  if (a.opaque || b.opaque) return true;
  auto i = a.accesses.begin();
  auto j = b.accesses.begin();
  while (i != a.accesses.end() && j != b.accesses.end()) {
    if (i->object < j->object) {
      ++i;
    } else if (j->object < i->object) {
      ++j;
    } else {
      if (conflicts(i->access, j->access)) return true;
      ++i;
      ++j;
    }
  }
  return false;
}

DporPolicy::DporPolicy(std::vector<std::uint32_t> prefix, std::vector<SleepEntry> frontier_sleep,
                       DporLog* log, std::uint64_t fair_steps_max)
    : prefix_(std::move(prefix)),
      frontier_sleep_(std::move(frontier_sleep)),
      log_(log),
      fair_steps_max_(fair_steps_max) {
  TRELLIS_ASSERT(log_ != nullptr);
  TRELLIS_ASSERT(fair_steps_max_ >= 1);
  TRELLIS_ASSERT(!prefix_.empty() || frontier_sleep_.empty());
  *log_ = DporLog{};
  tracking_ = prefix_.empty();  // the first run: from the root, nothing asleep
}

DporPolicy::~DporPolicy() {
  if (installed_) lowlevel::set_access_recorder(previous_recorder_);
}

void DporPolicy::before_run() {
  TRELLIS_ASSERT(!installed_);
  previous_recorder_ = lowlevel::set_access_recorder(this);
  installed_ = true;
}

void DporPolicy::after_run() {
  end_step();
  if (installed_) {
    TRELLIS_ASSERT(lowlevel::set_access_recorder(previous_recorder_) == this);
    installed_ = false;
  }
}

std::size_t DporPolicy::next_decision() {
  const std::size_t at = log_->nodes.size();
  if (!prefix_.empty() && at == prefix_.size() - 1) {
    // The frontier: from this decision on, the sleep set is in force.
    sleep_ = std::move(frontier_sleep_);
    frontier_sleep_.clear();
    tracking_ = true;
  }
  return at;
}

bool DporPolicy::asleep(std::uint64_t task) const noexcept {
  return std::any_of(sleep_.begin(), sleep_.end(),
                     [&](const SleepEntry& entry) { return entry.task == task; });
}

void DporPolicy::block() {
  TRELLIS_ASSERT(tracking_);
  tracking_ = false;
  sleep_.clear();
  log_->blocked_step = log_->steps.size();
  log_->blocked_node = log_->nodes.size();
}

std::size_t DporPolicy::decide(std::size_t n, ChoiceKind kind) {
  (void)kind;
  const std::size_t at = next_decision();
  const auto count = static_cast<std::uint32_t>(n);
  DporNode node;
  node.point = ChoicePoint{.n = count, .chosen = 0, .continuing = count, .preferred = 0};
  if (at < prefix_.size()) node.point.chosen = prefix_[at] % count;
  if (tracking_) node.sleep = sleep_;
  node.step = log_->steps.size();
  log_->nodes.push_back(std::move(node));
  return log_->nodes.back().point.chosen;
}

std::size_t DporPolicy::decide_next_task(std::span<lowlevel::Task* const> runnable) {
  TRELLIS_ASSERT(runnable.size() >= 2);
  end_step();  // (the loop's I/O wait normally ended it already)
  const std::size_t at = next_decision();
  const auto count = static_cast<std::uint32_t>(runnable.size());
  DporNode node;
  node.task_choice = true;
  node.point = ChoicePoint{.n = count, .chosen = 0, .continuing = count, .preferred = 0};
  // The non-preemptive default, as ExhaustivePolicy's (fairness included).
  if (last_task_id().has_value()) {
    for (std::uint32_t i = 0; i < count; ++i) {
      if (runnable[i]->id() != *last_task_id()) continue;
      if (last_task_run_length() < fair_steps_max_) {
        node.point.continuing = i;
        node.point.preferred = i;
      } else if (i == 0) {
        node.point.preferred = 1;
      }
    }
  }
  for (lowlevel::Task* task : runnable) node.runnable.push_back(task->id());
  node.last_task = last_task_id();
  node.run_length = last_task_run_length();
  if (at < prefix_.size()) {
    node.point.chosen = prefix_[at] % count;
    TRELLIS_ASSERT(!tracking_ || !asleep(node.runnable[node.point.chosen]));
  } else {
    node.point.chosen = node.point.preferred;
    if (tracking_ && asleep(node.runnable[node.point.chosen])) {
      // The default sleeps: the earliest woken task awake instead, if any.
      std::uint32_t awake = count;
      for (std::uint32_t i = 0; i < count && awake == count; ++i) {
        if (!asleep(node.runnable[i])) awake = i;
      }
      if (awake == count) {
        block();
      } else {
        node.point.chosen = awake;
      }
    }
  }
  if (tracking_) node.sleep = sleep_;
  node.step = log_->steps.size();
  log_->nodes.push_back(std::move(node));
  return log_->nodes.back().point.chosen;
}

void DporPolicy::before_task_step(lowlevel::Task& task) {
  // Every step starts here, chosen among several (decide_next_task ran just before) or alone.
  end_step();
  const std::uint64_t id = task.id();
  // A lone runnable task that sleeps: this run repeats an explored one from here.
  if (tracking_ && asleep(id)) block();
  StepRecord step;
  step.task = id;
  if (auto it = woken_by_.find(id); it != woken_by_.end()) {
    step.woken_by = std::move(it->second);
    woken_by_.erase(it);
  }
  if (auto it = woken_by_loop_.find(id); it != woken_by_loop_.end()) {
    step.opaque = true;
    woken_by_loop_.erase(it);
  }
  if (loop_touched_) {
    step.opaque = true;
    loop_touched_ = false;
  }
  current_ = log_->steps.size();
  log_->steps.push_back(std::move(step));
}

void DporPolicy::end_step() {
  if (current_ == SIZE_MAX) return;
  StepRecord& step = log_->steps[current_];
  std::vector<StepAccess>& accesses = step.accesses;
  std::stable_sort(accesses.begin(), accesses.end(),
                   [](const StepAccess& a, const StepAccess& b) { return a.object < b.object; });
  std::size_t out = 0;
  for (std::size_t i = 0; i < accesses.size(); ++i) {
    if (out > 0 && accesses[out - 1].object == accesses[i].object) {
      accesses[out - 1].access = strongest(accesses[out - 1].access, accesses[i].access);
    } else {
      accesses[out++] = accesses[i];
    }
  }
  accesses.resize(out);
  if (tracking_) {
    // Sleep sets (Godefroid): a sleeping task wakes when a step dependent on its own runs.
    std::erase_if(sleep_, [&](const SleepEntry& entry) { return dependent(entry.step, step); });
  }
  TRELLIS_ASSERT(!tracking_ || !asleep(step.task));
  current_ = SIZE_MAX;
}

void DporPolicy::task_scheduled(lowlevel::Task& task) {
  record_happens_before(task);
}

void DporPolicy::record_happens_before(const lowlevel::Task& task) noexcept {
  if (current_ != SIZE_MAX) {
    if (log_->steps[current_].task == task.id()) return;  // a yield: program order
    woken_by_[task.id()].push_back(current_);
  } else {
    woken_by_loop_[task.id()] = true;
  }
}

void DporPolicy::before_io_wait(Duration timeout) {
  (void)timeout;
  end_step();
}

ObjectId DporPolicy::new_object() noexcept {
  std::uint32_t index = 0;
  ObjectId creator = 1;  // the loop
  if (current_ != SIZE_MAX) {
    const std::uint64_t task = log_->steps[current_].task;
    TRELLIS_ASSERT(task + 2 < (ObjectId{1} << (63 - kCreatorShift)));
    creator = task + 2;
    index = ++created_[task];
  } else {
    index = ++created_by_loop_;
  }
  const ObjectId id = (creator << kCreatorShift) | index;
  TRELLIS_ASSERT(id > lowlevel::kTaskNumberingObject && (id & kOutsideRun) == 0);
  return id;
}

void DporPolicy::record(ObjectId& object, Access access) noexcept {
  if (object == 0) {
    object = kOutsideRun | ++numbered_outside_run_;
    access = Access::kWrite;  // numbering it is a write (see kOutsideRun)
  }
  if (current_ == SIZE_MAX) {
    loop_touched_ = true;
    return;
  }
  log_->steps[current_].accesses.push_back(StepAccess{.object = object, .access = access});
}

void DporPolicy::record_opaque() noexcept {
  if (current_ == SIZE_MAX) {
    loop_touched_ = true;
    return;
  }
  log_->steps[current_].opaque = true;
}

}  // namespace trellis::sim::internal
