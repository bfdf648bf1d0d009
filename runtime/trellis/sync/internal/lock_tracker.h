// trellis/sync/internal/lock_tracker.h — LockTracker: one run's lock-order graph, held locks
// and lock waits (RunOptions::check_lock_order; the contract is in sync/lock_order.h).
//
// Internal. LockCore (Lock, StrictFIFOLock) and Condition tell it what each task takes,
// releases and waits for; it throws LockOrderError at an inversion and explains lock waits in
// deadlock reports. Everything is keyed by task id and per-run lock id and iterated in that
// order, never by address, so its errors and reports are the same in every replay.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>
#include "trellis/base/source_location.h"

#include "trellis/core/lowlevel.h"
#include "trellis/core/task.h"

namespace trellis::internal {

class LockCore;

class LockTracker final : public lowlevel::LockTracking {
 public:
  LockTracker();

  // The current run's tracker (created on first use), or nullptr when the run does not check
  // lock order or outside a run. Off, this is one thread-local load and one branch.
  static LockTracker* current() {
    std::unique_ptr<lowlevel::LockTracking>* slot = lowlevel::lock_tracking_slot();
    if (slot == nullptr) [[likely]]
      return nullptr;
    return from_slot(*slot);
  }

  // `task` is about to wait for `lock` (acquire(), or Condition::wait() taking it back):
  // records an edge from every lock the task holds to `lock`, and throws LockOrderError,
  // recording nothing, if one of them would close a cycle of the order graph.
  void check_order(LockCore& lock, const lowlevel::Task& task, const SourceLocation& site);
  // `task` now holds `lock` (taken at `site`).
  void acquired(LockCore& lock, const lowlevel::Task& task, const SourceLocation& site);
  void released(LockCore& lock, const lowlevel::Task& task);
  // `task` is parked in lock's queue between these two calls.
  void wait_begins(LockCore& lock, const lowlevel::Task& task);
  void wait_ends(const lowlevel::Task& task) noexcept { waits_.erase(task.id()); }

  std::string describe_wait(const lowlevel::Task& task) const override;
  // lowlevel::lock_deadlock_report() for this run.
  std::string deadlock_report() const;

  void set_errors(bool on) noexcept { errors_ = on; }

  // "Lock 'name'" or "Lock#N".
  std::string lock_label(std::uint32_t id) const { return locks_[id - 1]; }

 private:
  struct Held {
    std::uint32_t lock = 0;
    SourceLocation site;
  };
  struct Edge {
    SourceLocation from_site;  // where the earlier lock was taken
    SourceLocation to_site;    // where the later one was asked for
    std::string task;          // who did it ("task 'x' (#3)")
  };
  struct Wait {
    const lowlevel::Task* task = nullptr;
    const LockCore* lock = nullptr;  // outlives the wait (a lock must outlive its waiters)
    std::uint32_t id = 0;
  };

  static LockTracker* from_slot(std::unique_ptr<lowlevel::LockTracking>& slot);
  // The lock's id in this run, assigned (with its label) the first time the run sees it.
  std::uint32_t id_of(LockCore& lock);
  // Lock ids from `from` to `to` along order edges, both ends included; empty if none.
  std::vector<std::uint32_t> find_path(std::uint32_t from, std::uint32_t to) const;
  std::string describe_edge(std::uint32_t from, std::uint32_t to, const Edge& edge,
                            const char* to_verb) const;
  // The wait `task` is in, if it is parked in a lock's queue.
  const Wait* wait_of(const lowlevel::Task& task) const;

  // Which run this tracker belongs to (locks remember it beside their id): ids from another
  // run are stale. Compared for equality only.
  const std::uint64_t generation_;
  bool errors_ = true;  // set_lock_order_errors()
  // locks_[id - 1] is the label of lock id. Invariant: ids are 1..locks_.size(), assigned in
  // the order the run first saw each lock.
  std::vector<std::string> locks_;
  // The order graph: after_[a][b] is the first time b was asked for while a was held.
  // Invariant: acyclic (check_order throws instead of closing a cycle).
  std::map<std::uint32_t, std::map<std::uint32_t, Edge>> after_;
  // Locks each task holds, in the order it took them, by task id. Invariant: no empty vector.
  std::map<std::uint64_t, std::vector<Held>> held_;
  // Tasks parked in a lock's queue, by task id.
  std::map<std::uint64_t, Wait> waits_;
};

}  // namespace trellis::internal
