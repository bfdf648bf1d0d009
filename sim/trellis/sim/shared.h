// trellis/sim/shared.h — state shared between tasks, declared so that exhaustive exploration
// with partial-order reduction (explore.h, Reduction::kDpor) sees who touches it.
//
// The reduction skips schedules that differ only in the order of independent steps, and it
// knows what a step touched only through what reports it: the sync primitives, memory
// channels and nurseries do (core/access_recorder.h), plain memory cannot. Under reduction,
// every variable two tasks share outside those must be declared here, or the explorer may
// treat a racing step as independent and skip the schedule that exposes the race.
//
//   trellis::sim::Shared<int> counter{0};
//   n.start_soon([&] {
//     const int seen = counter.load();   // a read of `counter`
//     trellis::checkpoint();
//     counter.store(seen + 1);           // a write
//   });
//
//   struct Table { trellis::sim::SharedObject shared; std::map<int, int> rows; } table;
//   table.shared.write();   // before mutating table.rows in this step
//
// Outside an exploration these cost one thread-local load and a branch per call; they never
// block and are not checkpoints. Not thread-safe (one run, one thread), like the runtime.
#pragma once

#include <utility>

#include "trellis/core/access_recorder.h"

namespace trellis::sim {

// An identity for state the explorer cannot see: call read() or write() in each step that
// reads or changes it (once per step is enough; more is harmless).
class SharedObject {
 public:
  SharedObject() noexcept = default;
  // A copy is another object.
  SharedObject(const SharedObject&) noexcept : SharedObject() {}
  SharedObject& operator=(const SharedObject&) noexcept { return *this; }

  void read() const noexcept { lowlevel::record_access(id_, lowlevel::Access::kRead); }
  void write() const noexcept { lowlevel::record_access(id_, lowlevel::Access::kWrite); }

 private:
  mutable lowlevel::ObjectId id_ = lowlevel::new_object_id();
};

// A value whose every access is declared: load() reads, store() and update() write.
template <class T>
class Shared {
 public:
  Shared() = default;
  explicit Shared(T value) : value_(std::move(value)) {}

  const T& load() const noexcept {
    object_.read();
    return value_;
  }
  void store(T value) {
    object_.write();
    value_ = std::move(value);
  }
  // fn(T&) changes the value in place, in this step (a write); returns what fn returns.
  template <class F>
  decltype(auto) update(F&& fn) {
    object_.write();
    return std::forward<F>(fn)(value_);
  }

 private:
  SharedObject object_;
  T value_{};
};

}  // namespace trellis::sim
