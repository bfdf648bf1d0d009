#include "trellis/sync/parking_lot.h"

#include <algorithm>

#include "trellis/base/assert.h"
#include "trellis/core/errors.h"
#include "trellis/core/lowlevel.h"
#include "trellis/core/lowlevel_inline.h"

namespace trellis::lowlevel {

ParkingLot::~ParkingLot() {
  if (registered_ != 0) forget_task_exit_listener(*this);
  // Detach rather than leave dangling back-pointers: a detached waiter's abort finds lot ==
  // nullptr and just lets the Cancelled through.
  for (Waiter& waiter : parked_) waiter.lot = nullptr;
  parked_.abandon();
}

void ParkingLot::park(std::string_view what, const void* tag) {
  touch(Access::kWrite);
  if (broken()) {
    throw BrokenResourceError("attempted to park in a parking lot broken by " + broken_by_);
  }
  Waiter waiter;
  waiter.task = &fast::current_task();
  waiter.lot = this;
  waiter.tag = tag;
  parked_.push_back(waiter);
  try {
    fast::wait_task_rescheduled(
        [&waiter](std::exception_ptr) {
          // The waiter may have been reparked since: leave whichever lot holds it now.
          if (waiter.lot != nullptr) {
            waiter.lot->parked_.remove(waiter);
            waiter.lot = nullptr;
          }
          return Abort::kSucceeded;
        },
        what);
  } catch (...) {
    // Cancelled (the abort unlinked us), an error passed to reschedule() (unpark never passes
    // one), or a refusal to park at all (still linked: unlink before the frame goes).
    if (waiter.lot != nullptr) {
      waiter.lot->parked_.remove(waiter);
      waiter.lot = nullptr;
    }
    throw;
  }
  TRELLIS_ASSERT(waiter.lot == nullptr);
  TRELLIS_ASSERT(!waiter.hook.linked());
}

ParkingLot::Waiter& ParkingLot::pop_front() noexcept {
  Waiter& waiter = parked_.pop_front();
  TRELLIS_ASSERT(waiter.lot == this);
  TRELLIS_ASSERT(waiter.task->parked());
  waiter.lot = nullptr;
  return waiter;
}

Task* ParkingLot::unpark_one() {
  touch(Access::kWrite);
  if (parked_.empty()) return nullptr;
  Task* task = pop_front().task;
  fast::reschedule(*task);
  return task;
}

std::vector<Task*> ParkingLot::unpark(std::size_t n) {
  std::vector<Task*> woken;
  woken.reserve(std::min(n, size()));
  unpark_each(n, [&](Task& task, const void*) { woken.push_back(&task); });
  return woken;
}

std::vector<Task*> ParkingLot::unpark_all() {
  return unpark(size());
}

std::size_t ParkingLot::unpark_each(std::size_t n,
                                    FunctionRef<void(Task& task, const void* tag)> on_woken) {
  touch(Access::kWrite);
  const std::size_t count = std::min(n, size());
  for (std::size_t i = 0; i < count; ++i) {
    // Copy out before rescheduling: the waiter's frame belongs to the woken task.
    Waiter& waiter = pop_front();
    Task& task = *waiter.task;
    on_woken(task, waiter.tag);
    reschedule(task);
  }
  return count;
}

void ParkingLot::repark(ParkingLot& new_lot, std::size_t n) {
  touch(Access::kWrite);
  new_lot.touch(Access::kWrite);
  const std::size_t count = std::min(n, size());
  for (std::size_t i = 0; i < count; ++i) {
    Waiter& waiter = parked_.pop_front();
    TRELLIS_ASSERT(waiter.lot == this);
    waiter.lot = &new_lot;
    new_lot.parked_.push_back(waiter);
  }
}

void ParkingLot::repark_all(ParkingLot& new_lot) {
  repark(new_lot, size());
}

void ParkingLot::break_lot(const Task* breaker) {
  touch(Access::kWrite);
  if (breaker == nullptr) breaker = &current_task();
  const bool was_broken = broken();
  broken_by_ += (was_broken ? ", " : "") + breaker->name();
  if (was_broken) return;
  while (!parked_.empty()) {
    Task& task = *pop_front().task;
    reschedule(task, std::make_exception_ptr(
                         BrokenResourceError("parking lot broken by " + breaker->name())));
  }
}

void ParkingLot::task_exited(const Task& task) noexcept {
  TRELLIS_ASSERT(registered_ > 0);
  --registered_;
  try {
    break_lot(&task);
  } catch (...) {
    // Only a failed allocation of the error message can get here: the waiters stay parked
    // (a deadlock report names them) rather than the run loop failing.
  }
}

void add_parking_lot_breaker(Task& task, ParkingLot& lot) {
  add_task_exit_listener(task, lot);
  ++lot.registered_;
}

void remove_parking_lot_breaker(Task& task, ParkingLot& lot) {
  remove_task_exit_listener(task, lot);
  TRELLIS_ASSERT(lot.registered_ > 0);
  --lot.registered_;
}

}  // namespace trellis::lowlevel
