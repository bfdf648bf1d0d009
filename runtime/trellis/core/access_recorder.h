// trellis/core/access_recorder.h — what each task step touched, for partial-order reduction
// (the simulator's exhaustive explorer, sim/trellis/sim/explore.h).
//
// A step (one task running from one schedule point to the next) is independent of another
// task's step if running them in either order gives the same state. The explorer can only
// prove that from what the steps touched, so the objects tasks share report each operation
// here: the sync primitives (through their ParkingLot), memory channels, nurseries, and the
// state a user declares (sim::Shared<T>, sim::SharedObject). Anything the runtime cannot
// describe as an access to one object (cancelling a scope, setting a deadline, reading the
// clock, a simulated facet call) is recorded as opaque: dependent on every other step.
//
//   class Gauge {
//     lowlevel::ObjectId id_ = lowlevel::new_object_id();   // identity, taken at creation
//     int value_ = 0;
//    public:
//     void add(int n) { lowlevel::record_access(id_, lowlevel::Access::kWrite); value_ += n; }
//   };
//
// Cost: outside an exploration no recorder is installed and every call below is one load
// of a constant-initialized thread-local and a predictable branch. Run-loop thread only.
#pragma once

#include <cstdint>

namespace trellis::lowlevel {

class Task;

// An object's identity across the runs of one exploration: the explorer numbers objects by
// the task that created them and how many that task had created before (stable as long as
// the runs agree up to the creation). 0: not numbered yet (created outside every explored
// run); the recorder numbers it on first use, once, in the object.
using ObjectId = std::uint64_t;

// A pseudo-object every spawn writes: the run numbers tasks in spawn order.
inline constexpr ObjectId kTaskNumberingObject = 1;

enum class Access : std::uint8_t {
  kRead,     // commutes with other reads
  kWrite,    // commutes with nothing on the same object
  kCommute,  // an update that commutes with the same kind of update (a nursery child's clean
             // exit: a counter decrement), not with reads or writes
};

class AccessRecorder {
 public:
  // The identity of an object being created now.
  virtual ObjectId new_object() noexcept = 0;
  // The running step (or the loop, between steps) did `access` to `object`; numbers an
  // object whose id is still 0. Must not throw, park or checkpoint.
  virtual void record(ObjectId& object, Access access) noexcept = 0;
  // The running step did something no single object describes: it is dependent on every
  // other step.
  virtual void record_opaque() noexcept = 0;
  // The running step happens before `task`'s next step, though it does not wake it (a
  // nursery child's exit and the parent waiting for all of them: only the last one wakes).
  virtual void record_happens_before(const Task& task) noexcept = 0;

 protected:
  ~AccessRecorder() = default;
};

namespace internal_access {
// The recorder of the run on this thread, or nullptr (no exploration: nothing recorded).
inline constinit thread_local AccessRecorder* recorder = nullptr;
}  // namespace internal_access

// Installs `recorder` on this thread (nullptr: none); returns the one it replaces. The
// explorer's policy does this for the length of one run.
inline AccessRecorder* set_access_recorder(AccessRecorder* recorder) noexcept {
  AccessRecorder* previous = internal_access::recorder;
  internal_access::recorder = recorder;
  return previous;
}

inline bool recording_accesses() noexcept {
  return internal_access::recorder != nullptr;
}

inline ObjectId new_object_id() noexcept {
  AccessRecorder* recorder = internal_access::recorder;
  if (recorder == nullptr) [[likely]]
    return 0;
  return recorder->new_object();
}

inline void record_access(ObjectId& object, Access access) noexcept {
  AccessRecorder* recorder = internal_access::recorder;
  if (recorder != nullptr) [[unlikely]]
    recorder->record(object, access);
}

inline void record_opaque() noexcept {
  AccessRecorder* recorder = internal_access::recorder;
  if (recorder != nullptr) [[unlikely]]
    recorder->record_opaque();
}

inline void record_happens_before(const Task& task) noexcept {
  AccessRecorder* recorder = internal_access::recorder;
  if (recorder != nullptr) [[unlikely]]
    recorder->record_happens_before(task);
}

}  // namespace trellis::lowlevel
