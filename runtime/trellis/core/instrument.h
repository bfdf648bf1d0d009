// trellis/core/instrument.h — observe the run loop (Trio's trio.abc.Instrument).
//
// Hooks have Trio's names and order: before_run first, after_run last; at spawn
// task_spawned then task_scheduled; a step that checkpoints: before_task_step,
// task_scheduled, after_task_step; a task's last step: before_task_step, task_exited,
// after_task_step. Every hook runs on the run-loop thread, synchronously; a hook that throws
// is removed from the run (the error is printed to stderr) and the run goes on. Hooks must
// not block or checkpoint.
#pragma once

#include "trellis/core/time.h"

namespace trellis {

namespace lowlevel {
class Task;
}

class Instrument {
 public:
  virtual ~Instrument() = default;
  virtual void before_run() {}
  virtual void after_run() {}
  virtual void task_spawned(lowlevel::Task& task) { (void)task; }
  virtual void task_scheduled(lowlevel::Task& task) { (void)task; }
  virtual void before_task_step(lowlevel::Task& task) { (void)task; }
  virtual void after_task_step(lowlevel::Task& task) { (void)task; }
  virtual void task_exited(lowlevel::Task& task) { (void)task; }
  virtual void before_io_wait(Duration timeout) { (void)timeout; }
  virtual void after_io_wait(Duration timeout) { (void)timeout; }
};

}  // namespace trellis
