// trellis/to_process/pool.cc — the parent's side: WorkerContext's pool of worker processes
// and run_sync's exchange with one worker (see worker_context.h, run_sync.h).

#include "trellis/to_process/internal/pool.h"

#include <unistd.h>

#include <span>
#include <thread>

#include "trellis/base/assert.h"
#include "trellis/core/errors.h"
#include "trellis/core/lowlevel.h"
#include "trellis/core/run.h"
#include "trellis/core/signal_facet.h"
#include "trellis/to_process/errors.h"
#include "trellis/to_process/registry.h"
#include "trellis/to_process/run_sync.h"
#include "trellis/to_process/worker.h"

namespace trellis::to_process {
namespace internal {
namespace {

// Inside a run: the machine's CPUs, except in a simulated run, where what the OS decides must
// not change the run (DESIGN.md, determinism rules) and a fixed count stands in.
constexpr std::size_t kSimulatedCpus = 4;
std::size_t cpu_count() {
  if (lowlevel::current_backend().name() == "sim") return kSimulatedCpus;
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : n;
}

std::string describe_exit(int returncode) {
  if (returncode < 0) return std::string("died with ") + signal_name(-returncode);
  return "exited with status " + std::to_string(returncode);
}

std::string worker_name(const WorkerProcess& worker) {
  return "worker process " + std::to_string(worker.pid);
}

}  // namespace

Pool::Pool(const WorkerContextOptions& options)
    : options_(options), slots_(options.max_workers == 0 ? 1 : options.max_workers) {
  TRELLIS_ASSERT(slots_.total_tokens() > 0);
}

Pool::~Pool() {
  close();
}

std::optional<Frame> Pool::read_frame(WorkerProcess& worker) {
  std::span<std::byte> buffer(worker.read_buffer);
  PipeReceiveStream* out = worker.process.stdout_stream();
  TRELLIS_ASSERT(out != nullptr);
  for (;;) {
    if (std::optional<Frame> frame = worker.reader.next()) return frame;
    const std::size_t got = out->receive_some(buffer);
    if (got == 0) {
      if (worker.reader.buffered() != 0) throw FrameError("the worker's pipe ended inside a frame");
      return std::nullopt;
    }
    worker.reader.feed(std::span<const char>(reinterpret_cast<const char*>(buffer.data()), got));
  }
}

void Pool::forget_other_runs() {
  const RunToken current = lowlevel::current_run_token();
  if (run_ == current) return;
  // max_workers 0 is the CPU count of the run's machine (real or simulated).
  if (slots_.borrowed_tokens() != 0) {
    throw UsageError("WorkerContext: used by two runs at once (a context belongs to one run)");
  }
  slots_.set_total_tokens(options_.max_workers == 0 ? cpu_count() : options_.max_workers);
  // Workers of an ended run were killed and reaped with it; their objects only go away.
  stopped_ += idle_.size();
  idle_.clear();
  busy_ = 0;
  run_ = current;
}

std::unique_ptr<WorkerProcess> Pool::take() {
  forget_other_runs();
  std::unique_ptr<WorkerProcess> worker;
  if (!idle_.empty()) {
    worker = std::move(idle_.back());
    idle_.pop_back();
  } else {
    worker = start_worker();
  }
  worker->busy = true;
  ++busy_;
  TRELLIS_ASSERT(busy_ <= started_);
  return worker;
}

std::unique_ptr<WorkerProcess> Pool::start_worker() {
  std::vector<std::string> argv{options_.executable.empty() ? std::string(kSelfExecutable)
                                                            : options_.executable};
  for (std::string& argument : worker_arguments({options_.init, options_.retire, {}})) {
    argv.push_back(std::move(argument));
  }
  ProcessOptions spawn_options;
  spawn_options.stdin_mode = Stdio::kPipe;
  spawn_options.stdout_mode = Stdio::kPipe;
  auto worker = std::make_unique<WorkerProcess>(open_process(std::move(argv), spawn_options));
  ++started_;
  std::optional<Frame> ready;
  try {
    ready = read_frame(*worker);
  } catch (const FrameError& e) {
    const std::string name = worker_name(*worker);
    discard(std::move(worker), true);
    throw BrokenWorkerError(name + " sent a malformed first frame (" + e.what() + "); killed");
  } catch (...) {
    discard(std::move(worker), true);
    throw;
  }
  if (ready.has_value() && ready->kind == FrameKind::kReady) return worker;
  const std::string name = worker_name(*worker);
  const bool init_failed = ready.has_value() && ready->kind == FrameKind::kError;
  const int code = discard(std::move(worker), !init_failed && ready.has_value());
  if (init_failed) {
    ErrorPayload error;
    try {
      error = parse_error_payload(ready->payload);
    } catch (const FrameError& e) {
      throw BrokenWorkerError(name + " sent a malformed error frame at start (" + e.what() + ")");
    }
    throw WorkerError(error.type_name,
                      "init function '" + options_.init + "' failed: " + error.message);
  }
  throw BrokenWorkerError(name + (ready.has_value() ? " did not start with a ready frame"
                                                    : " " + describe_exit(code) +
                                                          " before it was ready (does main() "
                                                          "call to_process::maybe_run_worker "
                                                          "first?)"));
}

void Pool::give_back(std::unique_ptr<WorkerProcess> worker) {
  TRELLIS_ASSERT(worker != nullptr && worker->busy);
  TRELLIS_ASSERT(busy_ > 0);
  worker->busy = false;
  --busy_;
  worker->idle_since = current_time();
  idle_.push_back(std::move(worker));
  ensure_reaper();
}

int Pool::discard(std::unique_ptr<WorkerProcess> worker, bool kill) {
  TRELLIS_ASSERT(worker != nullptr);
  if (worker->busy) {
    TRELLIS_ASSERT(busy_ > 0);
    --busy_;
  }
  std::optional<int> code = worker->process.returncode();
  CancelScope shield(kNoDeadline, true);
  shield.run([&] {
    if (!code.has_value() && kill) worker->process.kill();
    if (!code.has_value()) {
      move_on_after(options_.stop_grace, [&] { code = worker->process.wait(); });
    }
    if (!code.has_value()) {  // it would not exit by itself
      worker->process.kill();
      code = worker->process.wait();
    }
  });
  ++stopped_;
  TRELLIS_ASSERT(code.has_value());
  return *code;
}

void Pool::stop_idle() {
  forget_other_runs();
  std::deque<std::unique_ptr<WorkerProcess>> stopping;
  stopping.swap(idle_);
  // Shielded: cache_scope stops its workers also while it unwinds a cancellation. Every pipe
  // is closed first, so that the workers exit side by side.
  CancelScope shield(kNoDeadline, true);
  shield.run([&] {
    for (auto& worker : stopping) worker->process.stdin_stream()->close();
    for (auto& worker : stopping) discard(std::move(worker), false);
  });
  TRELLIS_ASSERT(idle_.empty() || !closed_);
}

void Pool::close() noexcept {
  closed_ = true;
  if (reaper_sleep_ != nullptr) reaper_sleep_->cancel();
  stopped_ += idle_.size();
  idle_.clear();  // Process's destructor kills and reaps a child still running
}

void Pool::ensure_reaper() {
  if (reaper_running_ || closed_ || idle_.empty()) return;
  reaper_running_ = true;
  try {
    lowlevel::spawn_system_task([self = shared_from_this()] { self->reap_idle(); },
                                "to_process idle reaper");
  } catch (const RunFinishedError&) {
    reaper_running_ = false;  // the run is ending: it kills the workers anyway
  }
}

// The idle reaper: a system task that stops each worker idle for idle_timeout, oldest first,
// and ends when no worker is idle (give_back starts it again). When the run ends it is
// cancelled while the run is still alive: it then kills and reaps the idle workers, so that
// their pipes are closed by the run that opened them (a Process outliving its run cannot).
void Pool::reap_idle() {
  struct Done {
    Pool& pool;
    ~Done() {
      pool.reaper_running_ = false;
      pool.reaper_sleep_ = nullptr;
    }
  } done{*this};
  try {
    reap_idle_until_none();
  } catch (...) {  // Cancelled: the run is ending
    stopped_ += idle_.size();
    idle_.clear();
    throw;
  }
}

void Pool::reap_idle_until_none() {
  while (!closed_ && !idle_.empty()) {
    const Time deadline = saturating_add(idle_.front()->idle_since, options_.idle_timeout);
    if (current_time() >= deadline) {
      std::unique_ptr<WorkerProcess> worker = std::move(idle_.front());
      idle_.pop_front();
      worker->process.stdin_stream()->close();
      discard(std::move(worker), false);
      continue;
    }
    CancelScope sleeping(deadline);
    reaper_sleep_ = &sleeping;
    sleeping.run([] { sleep_until(kNoDeadline); });
    reaper_sleep_ = nullptr;
  }
}

WorkerContextStatistics Pool::statistics() const {
  WorkerContextStatistics s;
  s.workers_idle = idle_.size();
  s.workers_busy = busy_;
  s.workers_started = started_;
  s.workers_stopped = stopped_;
  return s;
}

}  // namespace internal

// ---- WorkerContext -------------------------------------------------------------------------

namespace {

void check_hook(const std::string& name, const char* which) {
  if (!name.empty() && internal::find_worker_function(name) == nullptr) {
    throw std::invalid_argument(std::string("WorkerContext: the ") + which + " function '" + name +
                                "' is not registered (TRELLIS_WORKER_FUNCTION)");
  }
}

WorkerContextOptions checked(WorkerContextOptions o) {
  if (o.idle_timeout < Duration::zero()) {
    throw std::invalid_argument("WorkerContext: idle_timeout must be >= 0");
  }
  if (o.stop_grace < Duration::zero()) {
    throw std::invalid_argument("WorkerContext: stop_grace must be >= 0");
  }
  check_hook(o.init, "init");
  check_hook(o.retire, "retire");
  return o;
}

}  // namespace

WorkerContext::WorkerContext(WorkerContextOptions o)
    : options_(checked(std::move(o))), pool_(std::make_shared<internal::Pool>(options_)) {}

WorkerContext::~WorkerContext() {
  pool_->close();
}

void WorkerContext::stop() {
  pool_->stop_idle();
}

WorkerContextStatistics WorkerContext::statistics() const {
  return pool_->statistics();
}

namespace internal {

TaskLocal<WorkerContext*>& current_context_local() {
  static TaskLocal<WorkerContext*> current{nullptr};
  return current;
}

WorkerContext& current_context() {
  if (WorkerContext* context = current_context_local().get()) return *context;
  static const char key = 0;
  std::shared_ptr<void>& slot = lowlevel::run_local(&key);
  if (slot == nullptr) slot = std::make_shared<WorkerContext>();
  return *static_cast<WorkerContext*>(slot.get());
}

}  // namespace internal

CapacityLimiter& current_default_worker_limiter() {
  static const char key = 0;
  std::shared_ptr<void>& slot = lowlevel::run_local(&key);
  if (slot == nullptr) slot = std::make_shared<CapacityLimiter>(internal::cpu_count());
  return *static_cast<CapacityLimiter*>(slot.get());
}

// ---- run_sync's exchange with one worker ---------------------------------------------------

namespace internal {
namespace {

struct TokenGuard {
  CapacityLimiter& limiter;
  ~TokenGuard() { limiter.release(); }
};

[[noreturn]] void throw_malformed(Pool& pool, std::unique_ptr<WorkerProcess> worker,
                                  std::string_view function, const std::string& detail) {
  const std::string name = worker_name(*worker);
  pool.discard(std::move(worker), true);
  throw BrokenWorkerError(name + " sent a malformed frame while running '" + std::string(function) +
                          "' (" + detail + "); it was killed");
}

// The worker answered: hand it back (or let it retire) and return or throw its answer.
msgpack::object_handle finish_call(Pool& pool, std::unique_ptr<WorkerProcess> worker,
                                   const Frame& reply, std::string_view function) {
  std::optional<ErrorPayload> error;
  msgpack::object_handle result;
  try {
    if (reply.kind == FrameKind::kResult) {
      result = unpack_payload(reply.payload);
    } else if (reply.kind == FrameKind::kError) {
      error = parse_error_payload(reply.payload);
    } else {
      throw FrameError("a reply of kind " + std::to_string(static_cast<int>(reply.kind)));
    }
  } catch (const FrameError& e) {
    throw_malformed(pool, std::move(worker), function, e.what());
  }
  if ((reply.flags & kFlagRetiring) != 0) {
    pool.discard(std::move(worker), false);  // it exits by itself
  } else {
    pool.give_back(std::move(worker));
  }
  if (error.has_value()) throw WorkerError(std::move(error->type_name), std::move(error->message));
  return result;
}

// Sends the call. nullopt once sent; else the worker was gone before the whole call reached
// it (its pipe broke, so it never started the call): discarded, its return code is returned.
// Anything else (Cancelled when cancellable) kills and discards the worker and propagates.
std::optional<int> send_call(Pool& pool, std::unique_ptr<WorkerProcess>& worker,
                             const std::vector<char>& frame) {
  try {
    worker->process.stdin_stream()->send_all(std::as_bytes(std::span(frame)));
    return std::nullopt;
  } catch (const BrokenResourceError&) {
    return pool.discard(std::move(worker), false);
  } catch (...) {
    pool.discard(std::move(worker), true);
    throw;
  }
}

[[noreturn]] void throw_died(int pid, int code, std::string_view function) {
  throw BrokenWorkerError("worker process " + std::to_string(pid) + " " + describe_exit(code) +
                          " while running '" + std::string(function) + "'");
}

msgpack::object_handle run_call(Pool& pool, const std::vector<char>& frame,
                                std::string_view function) {
  std::unique_ptr<WorkerProcess> worker = pool.take();
  // A reused worker that died while idle (killed from outside) breaks its pipe here: the call
  // never reached it, so another worker takes it, as trio-parallel prunes dead cached workers.
  // Bounded: each retry uses up one idle worker, and a fresh worker is never retried.
  for (;;) {
    const bool reused = worker->calls_answered != 0;
    const int pid = worker->pid;
    const std::optional<int> gone = send_call(pool, worker, frame);
    if (!gone.has_value()) break;
    if (!reused) throw_died(pid, *gone, function);
    worker = pool.take();
  }
  TRELLIS_ASSERT(worker != nullptr && worker->busy);
  std::optional<Frame> reply;
  try {
    reply = Pool::read_frame(*worker);
  } catch (const BrokenResourceError&) {
    reply.reset();  // as an end of file: it died
  } catch (const FrameError& e) {
    throw_malformed(pool, std::move(worker), function, e.what());
  } catch (...) {
    pool.discard(std::move(worker), true);  // cancelled (cancellable), or worse
    throw;
  }
  if (!reply.has_value()) {  // its pipe ended before a reply: it died
    const int pid = worker->pid;
    throw_died(pid, pool.discard(std::move(worker), false), function);
  }
  ++worker->calls_answered;
  return finish_call(pool, std::move(worker), *reply, function);
}

}  // namespace

msgpack::object_handle call_worker(const Options& options, std::string_view function,
                                   std::vector<char> arguments) {
  if (arguments.size() + function.size() + 16 > kPayloadSizeMax) {
    throw std::invalid_argument("to_process::run_sync: the arguments of '" + std::string(function) +
                                "' exceed kPayloadSizeMax");
  }
  const std::vector<char> frame =
      encode_frame(FrameKind::kCall, 0, encode_call_payload(function, arguments));
  checkpoint_if_cancelled();
  CapacityLimiter& limiter =
      options.limiter != nullptr ? *options.limiter : current_default_worker_limiter();
  WorkerContext& context = options.context != nullptr ? *options.context : current_context();
  limiter.acquire();
  TokenGuard limiter_token{limiter};
  Pool& pool = context.pool();
  pool.forget_other_runs();
  pool.slots().acquire();
  TokenGuard worker_slot{pool.slots()};
  if (options.cancellable) return run_call(pool, frame, function);
  CancelScope shield(kNoDeadline, true);
  std::optional<msgpack::object_handle> result =
      shield.run([&] { return run_call(pool, frame, function); });
  TRELLIS_ASSERT(result.has_value());
  return std::move(*result);
}

void throw_result_mismatch(std::string_view function, const char* type_name) {
  throw UsageError("to_process::run_sync: the result of '" + std::string(function) +
                   "' does not convert to the requested type " + type_name);
}

}  // namespace internal
}  // namespace trellis::to_process
