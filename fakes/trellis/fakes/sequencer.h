// trellis/fakes/sequencer.h — Sequencer: force blocks of code in different tasks to run in
// an explicit order (Trio's trio.testing.Sequencer).
//
// seq(n) blocks until the block holding seq(n - 1) has finished (its guard destroyed); step 0
// starts at once. Prints 0..5 in order, whatever the schedule:
//
//   trellis::fakes::Sequencer seq;
//   trellis::open_nursery([&](trellis::Nursery& n) {
//     n.start_soon([&] { { auto s = seq(0); print(0); } { auto s = seq(4); print(4); } });
//     n.start_soon([&] { { auto s = seq(2); print(2); } { auto s = seq(5); print(5); } });
//     n.start_soon([&] { { auto s = seq(1); print(1); } { auto s = seq(3); print(3); } });
//   });
//
// A step that never comes leaves its successors blocked: the run's deadlock detector reports
// them ("Sequencer step 3 ..."), the test does not hang. If a wait is cancelled the sequence
// is broken: that wait and every other one (now and later) throws UsageError.
#pragma once

#include <cstdint>
#include <map>
#include <set>

#include "trellis/core/task.h"

namespace trellis::fakes {

class Sequencer {
 public:
  // Marks its step finished when destroyed, which lets the next step start.
  class [[nodiscard]] Step {
   public:
    Step(const Step&) = delete;
    Step& operator=(const Step&) = delete;
    ~Step() { sequencer_.finish(position_); }

   private:
    friend class Sequencer;
    Step(Sequencer& sequencer, std::uint64_t position)
        : sequencer_(sequencer), position_(position) {}
    Sequencer& sequencer_;
    std::uint64_t position_;
  };

  Sequencer() = default;
  Sequencer(const Sequencer&) = delete;
  Sequencer& operator=(const Sequencer&) = delete;

  // Blocks until step position - 1 has finished (step 0: returns at once, not a checkpoint).
  // A checkpoint for every other step. Throws UsageError if position was used before or the
  // sequence is broken; UsageError (not Cancelled) if this wait is cancelled, which breaks
  // the sequence for everyone.
  Step operator()(std::uint64_t position);

 private:
  void finish(std::uint64_t position);
  void break_sequence();

  // Steps handed out so far; each position at most once.
  std::set<std::uint64_t> claimed_;
  // Positions whose predecessor has finished: they start without waiting.
  std::set<std::uint64_t> released_;
  // Invariant: a position is here iff a task is parked in operator() for it, and that task
  // is rescheduled exactly once: by finish(position - 1), by break_sequence(), or by its abort.
  std::map<std::uint64_t, lowlevel::Task*> waiting_;
  bool broken_ = false;
};

}  // namespace trellis::fakes
