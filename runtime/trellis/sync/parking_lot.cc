#include "trellis/sync/parking_lot.h"

#include <algorithm>

#include "trellis/base/assert.h"
#include "trellis/core/lowlevel.h"

namespace trellis::lowlevel {

ParkingLot::~ParkingLot() {
  // Detach rather than leave dangling back-pointers: a detached waiter's abort finds lot ==
  // nullptr and just lets the Cancelled through.
  for (Waiter& waiter : parked_) waiter.lot = nullptr;
  parked_.abandon();
}

void ParkingLot::park(std::string_view what, const void* tag) {
  Waiter waiter;
  waiter.task = &current_task();
  waiter.lot = this;
  waiter.tag = tag;
  parked_.push_back(waiter);
  try {
    wait_task_rescheduled(
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
  if (parked_.empty()) return nullptr;
  Task* task = pop_front().task;
  reschedule(*task);
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

}  // namespace trellis::lowlevel
