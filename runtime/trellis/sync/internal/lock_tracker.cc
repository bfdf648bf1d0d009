#include "trellis/sync/internal/lock_tracker.h"

#include <algorithm>
#include <cstring>
#include <set>
#include <string>
#include <utility>

#include "trellis/base/assert.h"
#include "trellis/core/cancel_scope.h"
#include "trellis/core/errors.h"
#include "trellis/sync/internal/lock_core.h"
#include "trellis/sync/lock_order.h"

namespace trellis::internal {
namespace {

// Runs of this thread so far: a tracker's generation tells its own lock ids from a previous
// run's. Only ever compared for equality, so its value never reaches a report.
thread_local std::uint64_t generations = 0;

std::string task_label(const lowlevel::Task& task) {
  return "task '" + task.name() + "' (#" + std::to_string(task.id()) + ")";
}

std::string site_label(const SourceLocation& site) {
  std::string out = std::string(site.file_name()) + ":" + std::to_string(site.line());
  // Through a standard guard the line is the guard's: name the guard, so the reader knows to
  // look at the caller's std::lock_guard / unique_lock / scoped_lock.
  if (std::strstr(site.file_name(), "/c++/") != nullptr) {
    out += " (in " + std::string(site.function_name()) + ")";
  }
  return out;
}

// Whether a wait of `task` could still end without the lock being released: a cancellation
// already called, or a deadline, on any scope around it.
bool may_be_cancelled(const lowlevel::Task& task) {
  for (const CancelScope* scope : task.enclosing_cancel_scopes()) {
    if (scope->cancel_called() || scope->deadline() != kNoDeadline) return true;
  }
  return false;
}

}  // namespace

LockTracker::LockTracker() : generation_(++generations) {}

LockTracker* LockTracker::from_slot(std::unique_ptr<lowlevel::LockTracking>& slot) {
  if (slot == nullptr) slot = std::make_unique<LockTracker>();
  // Only this function fills the slot.
  return static_cast<LockTracker*>(slot.get());
}

std::uint32_t LockTracker::id_of(LockCore& lock) {
  if (lock.tracked_generation_ != generation_) {
    locks_.push_back(lock.user_name().empty()
                         ? std::string(lock.kind()) + "#" + std::to_string(locks_.size() + 1)
                         : std::string(lock.kind()) + " '" + lock.user_name() + "'");
    lock.tracked_generation_ = generation_;
    lock.tracked_id_ = static_cast<std::uint32_t>(locks_.size());
  }
  TRELLIS_ASSERT(lock.tracked_id_ >= 1 && lock.tracked_id_ <= locks_.size());
  return lock.tracked_id_;
}

std::vector<std::uint32_t> LockTracker::find_path(std::uint32_t from, std::uint32_t to) const {
  // Breadth first, successors in id order: the shortest path, the same one every run.
  std::map<std::uint32_t, std::uint32_t> parent{{from, 0}};
  std::vector<std::uint32_t> frontier{from};
  for (std::size_t next = 0; next < frontier.size(); ++next) {
    const std::uint32_t at = frontier[next];
    if (at == to) {
      std::vector<std::uint32_t> path;
      for (std::uint32_t id = to; id != 0; id = parent.at(id)) path.push_back(id);
      std::reverse(path.begin(), path.end());
      TRELLIS_ASSERT(path.front() == from && path.back() == to);
      return path;
    }
    auto edges = after_.find(at);
    if (edges == after_.end()) continue;
    for (const auto& [successor, edge] : edges->second) {
      if (parent.emplace(successor, at).second) frontier.push_back(successor);
    }
  }
  return {};
}

std::string LockTracker::describe_edge(std::uint32_t from, std::uint32_t to, const Edge& edge,
                                       const char* to_verb) const {
  return lock_label(from) + " then " + lock_label(to) + " (" + edge.task + ": " + lock_label(from) +
         " taken at " + site_label(edge.from_site) + ", " + lock_label(to) + " " + to_verb +
         " at " + site_label(edge.to_site) + ")";
}

void LockTracker::check_order(LockCore& lock, const lowlevel::Task& task,
                              const SourceLocation& site) {
  const std::uint32_t id = id_of(lock);
  auto held = held_.find(task.id());
  if (held == held_.end()) return;
  // Check every new edge first, then record them all: an error leaves the graph as it was.
  std::vector<const Held*> new_edges;
  for (const Held& h : held->second) {
    if (h.lock == id) continue;  // Condition::wait() retaking its lock
    auto edges = after_.find(h.lock);
    if (edges != after_.end() && edges->second.contains(id)) continue;
    const std::vector<std::uint32_t> path = find_path(id, h.lock);
    if (!path.empty() && !errors_) continue;  // left out: the graph stays acyclic
    if (!path.empty()) {
      std::string first;
      for (std::size_t i = 0; i + 1 < path.size(); ++i) {
        if (i > 0) first += "; ";
        first += describe_edge(path[i], path[i + 1], after_.at(path[i]).at(path[i + 1]), "taken");
      }
      std::string second =
          describe_edge(h.lock, id, Edge{h.site, site, task_label(task)}, "requested");
      std::string what = "lock order inversion: " + task_label(task) + " asks for " +
                         lock_label(id) + " while holding " + lock_label(h.lock) + ", but " +
                         lock_label(id) + " was taken before " + lock_label(h.lock) +
                         " earlier, so tasks doing both can deadlock.\n  seen first: " + first +
                         "\n  now: " + second;
      throw LockOrderError(what, std::move(first), std::move(second));
    }
    new_edges.push_back(&h);
  }
  for (const Held* h : new_edges) {
    after_[h->lock].emplace(id, Edge{h->site, site, task_label(task)});
  }
  TRELLIS_ASSERT_SLOW(find_path(id, id).size() == 1);
}

void LockTracker::acquired(LockCore& lock, const lowlevel::Task& task, const SourceLocation& site) {
  const std::uint32_t id = id_of(lock);
  std::vector<Held>& held = held_[task.id()];
  TRELLIS_ASSERT(
      std::none_of(held.begin(), held.end(), [&](const Held& h) { return h.lock == id; }));
  held.push_back(Held{id, site});
}

void LockTracker::released(LockCore& lock, const lowlevel::Task& task) {
  const std::uint32_t id = id_of(lock);
  auto held = held_.find(task.id());
  TRELLIS_ASSERT(held != held_.end());
  std::vector<Held>& locks = held->second;
  auto it = std::find_if(locks.rbegin(), locks.rend(), [&](const Held& h) { return h.lock == id; });
  TRELLIS_ASSERT(it != locks.rend());
  locks.erase(std::next(it).base());
  if (locks.empty()) held_.erase(held);
}

void LockTracker::wait_begins(LockCore& lock, const lowlevel::Task& task) {
  const bool inserted = waits_.emplace(task.id(), Wait{&task, &lock, id_of(lock)}).second;
  TRELLIS_ASSERT(inserted);
}

const LockTracker::Wait* LockTracker::wait_of(const lowlevel::Task& task) const {
  // A waiter the lock was handed to holds it and is runnable, though its wait_ends() has not
  // run yet: it no longer waits.
  auto it = waits_.find(task.id());
  if (it == waits_.end() || !task.parked() || it->second.lock->owner() == &task) return nullptr;
  return &it->second;
}

std::string LockTracker::describe_wait(const lowlevel::Task& task) const {
  std::string out;
  if (const Wait* wait = wait_of(task); wait != nullptr) {
    const lowlevel::Task* owner = wait->lock->owner();
    out += " for " + lock_label(wait->id) +
           (owner != nullptr ? ", held by " + task_label(*owner) : std::string(", broken"));
  }
  if (auto held = held_.find(task.id()); held != held_.end()) {
    out += "; holds";
    for (const Held& h : held->second) {
      out += " " + lock_label(h.lock) + " (taken at " + site_label(h.site) + ")";
    }
  }
  return out;
}

std::string LockTracker::deadlock_report() const {
  // Follow each waiter's chain (waiter -> lock -> holder -> the lock it waits for ...): a chain
  // that comes back to itself is a cycle; one that reaches a cycle is stuck behind it.
  const auto next = [this](const Wait* at) -> const Wait* {
    const lowlevel::Task* owner = at->lock->owner();
    return owner != nullptr ? wait_of(*owner) : nullptr;
  };
  std::set<std::uint64_t> in_cycle;  // task ids
  std::vector<std::vector<const Wait*>> cycles;
  for (const auto& [task_id, wait] : waits_) {
    std::vector<const Wait*> chain;
    for (const Wait* at = wait_of(*wait.task); at != nullptr; at = next(at)) {
      auto seen = std::find(chain.begin(), chain.end(), at);
      if (seen == chain.end()) {
        chain.push_back(at);
        continue;
      }
      std::vector<const Wait*> cycle(seen, chain.end());
      const bool wakeable = std::any_of(cycle.begin(), cycle.end(),
                                        [](const Wait* w) { return may_be_cancelled(*w->task); });
      if (!wakeable && !in_cycle.contains(cycle.front()->task->id())) {
        for (const Wait* w : cycle) in_cycle.insert(w->task->id());
        cycles.push_back(std::move(cycle));
      }
      break;
    }
  }
  // Waiters outside the cycles whose chain runs into one: stuck behind it (unless they can
  // be cancelled out of their own wait). A chain has at most waits_.size() links.
  std::vector<std::uint64_t> behind;
  for (const auto& [task_id, wait] : waits_) {
    if (in_cycle.contains(task_id) || wait_of(*wait.task) == nullptr) continue;
    if (may_be_cancelled(*wait.task)) continue;
    const Wait* at = wait_of(*wait.task);
    for (std::size_t links = 0; at != nullptr && links <= waits_.size(); ++links) {
      if (in_cycle.contains(at->task->id())) {
        behind.push_back(task_id);
        break;
      }
      at = next(at);
    }
  }
  if (cycles.empty()) return "";
  std::string report =
      "trellis: deadlock: tasks wait for locks in a cycle, and no deadline or cancellation "
      "can end their waits:";
  for (const std::vector<const Wait*>& cycle : cycles) {
    report += "\n  cycle:";
    for (const Wait* w : cycle) {
      report += "\n  - " + task_label(*w->task) + " waits" + describe_wait(*w->task);
    }
  }
  for (const std::uint64_t task_id : behind) {
    const Wait& w = waits_.at(task_id);
    report +=
        "\n  - " + task_label(*w.task) + " waits" + describe_wait(*w.task) + " (behind the cycle)";
  }
  return report;
}

}  // namespace trellis::internal

namespace trellis::lowlevel {

std::string lock_deadlock_report() {
  internal::LockTracker* tracker = internal::LockTracker::current();
  return tracker != nullptr ? tracker->deadlock_report() : std::string();
}

void set_lock_order_errors(bool on) {
  if (!in_run())
    throw UsageError("set_lock_order_errors() must be called from inside trellis::run()");
  if (internal::LockTracker* tracker = internal::LockTracker::current(); tracker != nullptr) {
    tracker->set_errors(on);
  }
}

}  // namespace trellis::lowlevel
