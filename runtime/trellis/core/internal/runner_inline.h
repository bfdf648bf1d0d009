// trellis/core/internal/runner_inline.h — the Runner's hot path: parking, yielding and the
// switch to the next task, forced inline into every caller (the run loop, the lowlevel entry
// points and their inline forms in core/lowlevel_inline.h, nurseries).
//
// Internal. Forced inline for the reason switch_context() is (fiber.h): a checkpoint is a
// handful of stores around one context switch, and a call frame or two more is a measurable
// share of it (bench: BM_Trellis_Checkpoint, BM_Trellis_CheckpointPingPong).
#pragma once

#include <absl/container/inlined_vector.h>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <string_view>
#include <utility>

#include "trellis/base/assert.h"
#include "trellis/base/force_inline.h"
#include "trellis/core/errors.h"
#include "trellis/core/exception_group.h"
#include "trellis/core/internal/runner.h"

namespace trellis::internal {

template <class Hook>
void Runner::call_instruments(Hook hook) {
  // Copy: a hook may add or remove instruments. (Inline storage: hooks run several times
  // per task step in a simulation, and a heap copy each time was a tenth of its cost.)
  const absl::InlinedVector<Instrument*, 8> instruments(instruments_.begin(), instruments_.end());
  in_instrument_ = true;
  struct Leave {
    bool& flag;
    ~Leave() { flag = false; }
  } leave{in_instrument_};
  for (Instrument* instrument : instruments) {
    try {
      hook(*instrument);
    } catch (...) {
      std::fprintf(stderr, "trellis: instrument raised (%s); removing it from the run\n",
                   describe_exception(std::current_exception()).c_str());
      instruments_.erase(std::remove(instruments_.begin(), instruments_.end(), instrument),
                         instruments_.end());
    }
  }
}

TRELLIS_FORCE_INLINE inline lowlevel::Task* Runner::next_for_direct_switch(lowlevel::Task& self) {
  // The fast path: instead of switching to the loop and from there to the next task, the
  // stopping task switches straight to the next task of the batch. When the batch is done
  // and the run queue is not empty, the loop's next iteration cannot block, idle or find a
  // deadlock (its timeout is zero), so the stopping task runs that iteration's poll step
  // itself: the same poll() the loop runs, outside every task (no current task while it
  // fires deadlines and signals). The loop still starts new tasks (stack allocation can
  // fail) and finishes exited ones.
  if (batch_position_ == batch_stop_ && !poll_on_task_stack(self)) return nullptr;
  lowlevel::Task* next = batch_[batch_position_];
  TRELLIS_ASSERT(next->state_ == lowlevel::Task::State::kRunnable);
  if (next->run_ == nullptr) return nullptr;
  ++batch_position_;
  return next;
}

TRELLIS_FORCE_INLINE inline void Runner::suspend(lowlevel::Task& self) {
  TRELLIS_ASSERT(current_ == &self);
  TRELLIS_ASSERT(self.state_ != lowlevel::Task::State::kRunning);
  lowlevel::Task* next =
      instruments_.empty() ? next_for_direct_switch(self) : next_for_instrumented_switch(self);
  if (next == &self) {
    // Our own turn again (a lone task checkpointing): no switch at all.
    self.state_ = lowlevel::Task::State::kRunning;
    return;
  }
  if (next != nullptr) {
    next->state_ = lowlevel::Task::State::kRunning;
    current_ = next;
    switch_context(self.run_->context, next->run_->context);
  } else {
    switch_context(self.run_->context, loop_context_);
  }
  TRELLIS_ASSERT(current_ == &self);
  TRELLIS_ASSERT(self.state_ == lowlevel::Task::State::kRunning);
}

TRELLIS_FORCE_INLINE inline void Runner::yield() {
  lowlevel::Task& task = require_task("cancel_shielded_checkpoint()");
  if (in_instrument_) [[unlikely]] {
    throw UsageError("an instrument hook must not checkpoint or block");
  }
  if (policy_holds_steps_) [[unlikely]] {
    if (hold_step(task)) return;
  }
  TRELLIS_ASSERT(task.state_ == lowlevel::Task::State::kRunning);
  ++task.run_->schedule_points;
  task.state_ = lowlevel::Task::State::kRunnable;
  runq_.push_back(&task);
  if (!instruments_.empty()) call_instruments([&](Instrument& i) { i.task_scheduled(task); });
  suspend(task);
}

TRELLIS_FORCE_INLINE inline void Runner::park(lowlevel::AbortFn abort, std::string_view what) {
  lowlevel::Task& task = require_task("wait_task_rescheduled()");
  if (in_instrument_) throw UsageError("an instrument hook must not checkpoint or block");
  TRELLIS_ASSERT(task.state_ == lowlevel::Task::State::kRunning);
  TaskRun& run = *task.run_;
  TRELLIS_ASSERT(run.abort_fn == nullptr);
  ++run.schedule_points;
  run.abort_fn = &abort;
  run.waiting_on = what;
  task.state_ = lowlevel::Task::State::kParked;
  // Blocking inside an already-cancelled scope aborts at once (Trio does this right after
  // the task yields; doing it before the switch is equivalent and saves a pass).
  if (effectively_cancelled(task)) [[unlikely]] {
    deliver_pending_cancel(task);
  }
  suspend(task);
  TRELLIS_ASSERT(run.abort_fn == nullptr);
  run.waiting_on = {};
  if (run.resume_error != nullptr) [[unlikely]] {
    std::exception_ptr error = std::move(run.resume_error);
    run.resume_error = nullptr;
    std::rethrow_exception(error);
  }
}

TRELLIS_FORCE_INLINE inline void Runner::checkpoint_if_cancelled() {
  lowlevel::Task& task = require_task("checkpoint_if_cancelled()");
  if (effectively_cancelled(task)) [[unlikely]]
    deliver_cancel_at_checkpoint();
  ++task.run_->cancel_points;
}

TRELLIS_FORCE_INLINE inline void Runner::reschedule(lowlevel::Task& task) {
  TRELLIS_ASSERT(this_thread_ == this);
  TRELLIS_ASSERT(task.state_ == lowlevel::Task::State::kParked);
  TaskRun& run = *task.run_;  // a parked task has run
  run.abort_fn = nullptr;
  task.state_ = lowlevel::Task::State::kRunnable;
  runq_.push_back(&task);
  // Its saved registers, read when it is switched to: start loading them now (a parked
  // task's stack is usually cold).
  if (run.context.fctx != nullptr) __builtin_prefetch(run.context.fctx);
  if (!instruments_.empty()) call_instruments([&](Instrument& i) { i.task_scheduled(task); });
}

TRELLIS_FORCE_INLINE inline void Runner::checkpoint() {
  lowlevel::Task& task = require_task("checkpoint()");
  yield();
  ++task.run_->cancel_points;
  if (effectively_cancelled(task)) {
    throw_cancelled(task);
  }
}

}  // namespace trellis::internal
