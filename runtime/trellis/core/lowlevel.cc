// The run's low-level interface (core/lowlevel.h) and the public free functions of the
// running task (core/run.h: current_time, checkpoint, sleep...): each finds the thread's
// Runner (or throws UsageError outside a run) and forwards to it.
#include <memory>
#include <stdexcept>
#include <string>

#include "trellis/core/errors.h"
#include "trellis/core/file_system_facet.h"
#include "trellis/core/internal/runner.h"
#include "trellis/core/internal/runner_inline.h"
#include "trellis/core/io_facet.h"
#include "trellis/core/lowlevel.h"
#include "trellis/core/network_facet.h"
#include "trellis/core/run.h"
#include "trellis/core/signal_facet.h"
#include "trellis/core/thread_facet.h"

namespace trellis::lowlevel {
namespace {

[[noreturn]] void missing_facet(const Backend& backend, const char* facet) {
  throw UsageError("the run's backend (" + std::string(backend.name()) + ") offers no " + facet);
}

}  // namespace

Task* current_task_if_any() noexcept {
  internal::Runner* runner = internal::Runner::current();
  return runner == nullptr ? nullptr : runner->current_task();
}

Backend& current_backend() {
  return internal::Runner::require("current_backend()").backend();
}

IoFacet& current_io() {
  Backend& backend = internal::Runner::require("current_io()").backend();
  IoFacet* io = backend.io();
  if (io == nullptr) missing_facet(backend, "I/O handles");
  return *io;
}

NetworkFacet& current_network() {
  Backend& backend = internal::Runner::require("current_network()").backend();
  NetworkFacet* network = backend.network();
  if (network == nullptr) missing_facet(backend, "network");
  return *network;
}

FileSystemFacet& current_file_system() {
  Backend& backend = internal::Runner::require("current_file_system()").backend();
  FileSystemFacet* file_system = backend.file_system();
  if (file_system == nullptr) missing_facet(backend, "file system");
  return *file_system;
}

ThreadFacet& current_threads() {
  Backend& backend = internal::Runner::require("current_threads()").backend();
  ThreadFacet* threads = backend.threads();
  if (threads == nullptr) missing_facet(backend, "thread");
  return *threads;
}

RunToken current_run_token() {
  return RunToken(internal::Runner::require("current_run_token()").token_state());
}

void spawn_system_task(std::function<void()> fn, std::string_view name) {
  internal::Runner::require("spawn_system_task()").spawn_system_task(std::move(fn), name);
}

}  // namespace trellis::lowlevel

namespace trellis {

Time current_time() {
  // Exploration: in a World a step's CPU time moves the clock while other tasks are runnable,
  // so the value read may depend on the order of steps.
  lowlevel::record_opaque();
  return internal::Runner::require("current_time()").now();
}

void checkpoint() {
  internal::Runner::require("checkpoint()").checkpoint();
}

void checkpoint_if_cancelled() {
  internal::Runner::require("checkpoint_if_cancelled()").checkpoint_if_cancelled();
}

[[noreturn]] void sleep_forever() {
  internal::Runner& runner = internal::Runner::require("sleep_forever()");
  runner.park([](std::exception_ptr) { return lowlevel::Abort::kSucceeded; }, "sleep");
  throw UsageError(
      "sleep_forever(): the task was rescheduled without being cancelled (only "
      "a cancellation may end sleep_forever)");
}

void sleep_until(Time deadline) {
  internal::Runner::require("sleep_until()").sleep_until(deadline);
}

void sleep(Duration d) {
  if (d < Duration::zero()) throw std::invalid_argument("sleep: duration must be non-negative");
  if (d == Duration::zero()) {
    checkpoint();
    return;
  }
  sleep_until(saturating_add(current_time(), d));
}

Time current_effective_deadline() {
  return internal::Runner::require("current_effective_deadline()").current_effective_deadline();
}

namespace lowlevel {

void wait_task_rescheduled(AbortFn abort, std::string_view what) {
  internal::Runner::require("wait_task_rescheduled()").park(abort, what);
}

void reschedule(Task& task) {
  internal::Runner::require("reschedule()").reschedule(task);
}

void reschedule(Task& task, std::exception_ptr error) {
  internal::Runner::require("reschedule()").reschedule(task, std::move(error));
}

void add_task_exit_listener(Task& task, TaskExitListener& listener) {
  internal::Runner::require("add_task_exit_listener()").add_exit_listener(task, listener);
}

void remove_task_exit_listener(Task& task, TaskExitListener& listener) {
  internal::Runner::require("remove_task_exit_listener()").remove_exit_listener(task, listener);
}

void forget_task_exit_listener(TaskExitListener& listener) noexcept {
  if (internal::Runner* runner = internal::Runner::current()) {
    runner->forget_exit_listener(listener);
  }
}

void cancel_shielded_checkpoint() {
  internal::Runner::require("cancel_shielded_checkpoint()").yield();
}

Task& current_task() {
  return internal::Runner::require("current_task()").require_task("current_task()");
}

Task& current_root_task() {
  return internal::Runner::require("current_root_task()").root_task();
}

bool in_run() noexcept {
  return internal::Runner::current() != nullptr;
}

Clock& current_clock() {
  return internal::Runner::require("current_clock()").clock();
}

SchedulePolicy& current_policy() {
  return internal::Runner::require("current_policy()").policy();
}

RunStatistics current_statistics() {
  return internal::Runner::require("current_statistics()").statistics();
}

void add_instrument(Instrument& instrument) {
  internal::Runner::require("add_instrument()").add_instrument(instrument);
}

void remove_instrument(Instrument& instrument) {
  internal::Runner::require("remove_instrument()").remove_instrument(instrument);
}

std::string dump_task_tree() {
  return internal::Runner::require("dump_task_tree()").dump_task_tree();
}

void wait_all_tasks_blocked(Duration cushion) {
  internal::Runner::require("wait_all_tasks_blocked()").wait_all_tasks_blocked(cushion);
}

std::shared_ptr<void>& run_local(const void* key) {
  if (key == nullptr) throw std::invalid_argument("run_local: null key");
  return internal::Runner::require("run_local()").run_local(key);
}

std::unique_ptr<LockTracking>* lock_tracking_slot() noexcept {
  internal::Runner* runner = internal::Runner::current();
  return runner != nullptr ? runner->lock_tracking_slot() : nullptr;
}

SignalFacet& current_signals() {
  internal::Runner& runner = internal::Runner::require("current_signals()");
  // The backend's signals (the simulator's), else the real process's through the run's hub.
  SignalFacet* facet = runner.backend().signals();
  return facet != nullptr ? *facet : runner.signal_hub();
}

}  // namespace lowlevel
}  // namespace trellis
