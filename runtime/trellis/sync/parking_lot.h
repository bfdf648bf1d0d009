// trellis/sync/parking_lot.h — ParkingLot: the fair wait queue under every sync primitive
// (Trio's trio.lowlevel.ParkingLot).
//
// Event, Lock, StrictFIFOLock, Semaphore, Condition and CapacityLimiter all wait here and
// nowhere else. A lot is a FIFO queue of parked tasks: park() blocks the calling task at the
// back; unpark(n) wakes the n that have waited longest; repark() moves waiters to another lot
// without waking them (Condition::notify moves its waiters onto its Lock's queue that way).
// A parked task whose cancel scope is cancelled leaves the queue cleanly and gets Cancelled.
//
//   trellis::lowlevel::ParkingLot lot;
//   trellis::open_nursery([&](trellis::Nursery& n) {
//     n.start_soon([&] { lot.park(); /* runs after unpark() */ });
//     trellis::fakes::wait_all_tasks_blocked();
//     lot.unpark();  // wakes the task above; it runs at its next turn
//   });
//
// A lot can be broken (Trio's break_lot): its waiters and every later park() get
// BrokenResourceError. A task registered as a lot's breaker (add_parking_lot_breaker) breaks
// it when it exits — Lock registers its owner, so a task that dies holding a Lock breaks the
// lock instead of leaving its waiters blocked forever.
//
// Parking does not allocate: each waiter's queue node lives on the parked task's own stack.
// Not thread-safe: call it from tasks of one run (every member but park() is synchronous and
// never a checkpoint).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "trellis/base/function_ref.h"
#include "trellis/base/intrusive_list.h"
#include "trellis/core/lowlevel.h"
#include "trellis/core/task.h"

namespace trellis::lowlevel {

struct ParkingLotStatistics {
  std::size_t tasks_waiting = 0;  // tasks parked in this lot
};

class ParkingLot : private TaskExitListener {
 public:
  ParkingLot() = default;
  ParkingLot(const ParkingLot&) = delete;
  ParkingLot& operator=(const ParkingLot&) = delete;
  // A lot should outlive its waiters. If tasks are still parked (a run abandoned after a
  // deadlock, or a misuse), they are detached: they stay parked until cancelled.
  ~ParkingLot();

  // Blocks the calling task at the back of the queue until unpark()/unpark_all() wakes it,
  // or until its cancel scope is cancelled: then it leaves the queue and throws Cancelled.
  // In a broken lot (or one that breaks while waiting) it throws BrokenResourceError.
  // A schedule point; a cancel point only while parked (an already-cancelled task throws
  // Cancelled at once, without staying parked). Trio's park() is exactly this: callers that
  // want a full checkpoint add checkpoint_if_cancelled() first, as the primitives do.
  // `what` names the wait in deadlock reports (a string literal: it must outlive the wait).
  // `tag` is handed back with the task by unpark_each() (CapacityLimiter parks its borrower
  // there). Throws UsageError outside a task.
  void park(std::string_view what = "ParkingLot::park", const void* tag = nullptr);

  // Wakes the min(n, size()) longest-waiting tasks, oldest first, and returns them. Each
  // resumes (returns from park()) at its next turn, even if cancelled before then. Not a
  // checkpoint; never blocks.
  std::vector<Task*> unpark(std::size_t n = 1);
  std::vector<Task*> unpark_all();
  // Wakes the longest-waiting task and returns it; nullptr if none is parked. Allocation-free.
  Task* unpark_one();
  // Wakes up to n tasks, oldest first, calling on_woken(task, tag) for each just before it is
  // rescheduled (on_woken must not throw or park). Returns how many were woken.
  // Allocation-free.
  std::size_t unpark_each(std::size_t n, FunctionRef<void(Task& task, const void* tag)> on_woken);

  // Moves the min(n, size()) longest-waiting tasks to the back of `new_lot`, keeping their
  // order, without waking them; they are then woken (or cancelled) as waiters of `new_lot`.
  // Not a checkpoint.
  void repark(ParkingLot& new_lot, std::size_t n = 1);
  void repark_all(ParkingLot& new_lot);
  // Breaks the lot, naming `breaker` (nullptr: the calling task) as the cause: every parked
  // task is woken with BrokenResourceError, and so is every later park(); unpark and repark
  // find nobody. Breaking a broken lot only adds the breaker's name. Not a checkpoint.
  void break_lot(const Task* breaker = nullptr);
  bool broken() const noexcept { return !broken_by_.empty(); }
  // Names of the tasks that broke the lot ("" if it is not broken).
  const std::string& broken_by() const noexcept { return broken_by_; }

  // Exploration (core/access_recorder.h): the primitive built on this lot did `access` to
  // itself (a primitive's identity is its lot's). park, unpark, repark and break_lot record
  // a write themselves.
  void touch(Access access) const noexcept { record_access(access_id_, access); }

  std::size_t size() const noexcept { return parked_.size(); }
  bool empty() const noexcept { return parked_.empty(); }
  ParkingLotStatistics statistics() const noexcept { return {.tasks_waiting = size()}; }

 private:
  // One parked task; lives in park()'s frame on the parked task's stack.
  struct Waiter {
    internal::IntrusiveListHook hook;
    Task* task = nullptr;
    // Invariant: lot != nullptr iff this waiter is linked on lot->parked_ (a repark changes
    // it; unpark, abort and a dying lot clear it).
    ParkingLot* lot = nullptr;
    const void* tag = nullptr;
  };

  Waiter& pop_front() noexcept;
  void task_exited(const Task& task) noexcept override;
  void run_ended() noexcept override { registered_ = 0; }
  friend void add_parking_lot_breaker(Task& task, ParkingLot& lot);
  friend void remove_parking_lot_breaker(Task& task, ParkingLot& lot);

  // Invariant: FIFO by park() time (a repark appends in the order it takes); every waiter's
  // task is parked in park() and will be rescheduled exactly once, by unpark or by its abort.
  internal::IntrusiveList<Waiter, &Waiter::hook> parked_;
  std::string broken_by_;
  mutable ObjectId access_id_ = new_object_id();
  // Breaker registrations with the current run (the run keeps the list; this count only
  // tells the destructor whether to withdraw them).
  std::size_t registered_ = 0;
};

// Registers `task` to break `lot` when it exits (Trio's add_parking_lot_breaker). Throws
// BrokenResourceError if the task has already exited, UsageError outside a run.
void add_parking_lot_breaker(Task& task, ParkingLot& lot);
// Undoes one registration; UsageError if there is none.
void remove_parking_lot_breaker(Task& task, ParkingLot& lot);

}  // namespace trellis::lowlevel
