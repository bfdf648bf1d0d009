// start_guest_run(): the host side of a guest run. The run's iterations (GuestLoop steps)
// execute as callbacks on the host's thread; when an iteration would block, a helper thread
// waits for I/O readiness (Backend::wait_for_readiness) and hands the wake-up back to the
// host with run_sync_soon_threadsafe. The run uses the real epoll backend.
#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

#include "trellis/core/errors.h"
#include "trellis/core/guest_loop.h"
#include "trellis/guest.h"
#include "trellis/posix/epoll_backend.h"
#include "trellis/posix/internal/fresh_seed.h"
#include "trellis/posix/system_clock.h"

namespace trellis {
namespace {

// True while a guest run lives on this thread (its host's).
thread_local bool guest_on_this_thread = false;

class GuestRun : public std::enable_shared_from_this<GuestRun> {
 public:
  GuestRun(std::function<void()> main, GuestRunOptions options);
  ~GuestRun();

  void begin();
  // One host callback: one step of the run, then the next callback or the wait is arranged.
  void step(bool waited);
  // A callback of the run was destroyed without being called.
  void abandoned(bool waited) noexcept;

 private:
  struct Call;
  std::function<void()> make_call(bool waited);
  void post_next_step();
  void await_io(Duration wait);
  void io_thread_main();
  void end(std::exception_ptr error);
  void stop_io_thread() noexcept;

  std::function<void()> main_;
  GuestRunOptions options_;
  const std::thread::id host_thread_ = std::this_thread::get_id();
  std::unique_ptr<posix::SystemClock> own_clock_;
  std::unique_ptr<TrioPolicy> own_policy_;
  posix::EpollBackend backend_;
  std::unique_ptr<internal::GuestLoop> loop_;
  bool done_ = false;  // end() ran (or began)

  // The helper thread's mailbox. Invariant: at most one wait is requested at a time; while
  // it is, the request holds the run alive (no callback of the host does meanwhile).
  std::mutex mutex_;
  std::condition_variable wake_;
  std::optional<Duration> wait_request_;
  std::shared_ptr<GuestRun> waiting_self_;
  bool stopping_ = false;
  std::thread io_thread_;
};

// A callback handed to the host. Shared by the host's copies of the std::function: the last
// copy to go away without any having been called has abandoned the run.
struct GuestRun::Call {
  std::shared_ptr<GuestRun> run;
  bool waited = false;
  bool called = false;
  ~Call() {
    if (!called && run != nullptr) run->abandoned(waited);
  }
};

GuestRun::GuestRun(std::function<void()> main, GuestRunOptions options)
    : main_(std::move(main)), options_(std::move(options)) {
  Clock* clock = options_.clock;
  if (clock == nullptr) clock = (own_clock_ = std::make_unique<posix::SystemClock>()).get();
  SchedulePolicy* policy = options_.policy;
  if (policy == nullptr) {
    policy = (own_policy_ = std::make_unique<TrioPolicy>(internal::fresh_schedule_seed())).get();
  }
  RunOptions run_options{.clock = clock,
                         .backend = &backend_,
                         .policy = policy,
                         .instruments = options_.instruments,
                         .keyboard_interrupt = false};
  loop_ = std::make_unique<internal::GuestLoop>(run_options, *clock, backend_, *policy);
}

GuestRun::~GuestRun() {
  // Abandoned off the host's thread: its tasks' fibers cannot be unwound from here, so the
  // run is left as it is (reported on stderr by abandoned()).
  if (!done_) (void)loop_.release();
  stop_io_thread();
  // The helper thread itself let go of the run last: it cannot join itself.
  if (io_thread_.joinable()) io_thread_.detach();
}

void GuestRun::begin() {
  // (The run refers to main_, which lives as long as the run.)
  loop_->start(main_, typeid(main_));
  io_thread_ = std::thread([this] { io_thread_main(); });
  guest_on_this_thread = true;
  post_next_step();
}

std::function<void()> GuestRun::make_call(bool waited) {
  auto call = std::make_shared<Call>();
  call->run = shared_from_this();
  call->waited = waited;
  return [call] {
    call->called = true;
    call->run->step(call->waited);
  };
}

void GuestRun::post_next_step() {
  if (options_.run_sync_soon_not_threadsafe) {
    options_.run_sync_soon_not_threadsafe(make_call(false));
  } else {
    options_.run_sync_soon_threadsafe(make_call(false));
  }
}

void GuestRun::step(bool waited) {
  if (done_) return;
  if (std::this_thread::get_id() != host_thread_) {
    throw UsageError("a guest run's callback ran on a thread other than its host's");
  }
  const internal::GuestLoop::Step step = loop_->step(waited);
  if (step.done) {
    std::exception_ptr error;
    try {
      loop_->finish();
    } catch (...) {
      error = std::current_exception();
    }
    end(std::move(error));
  } else if (step.wait > Duration::zero()) {
    await_io(step.wait);
  } else {
    post_next_step();
  }
}

void GuestRun::await_io(Duration wait) {
  {
    std::lock_guard lock(mutex_);
    wait_request_ = wait;
    waiting_self_ = shared_from_this();
  }
  wake_.notify_one();
}

void GuestRun::io_thread_main() {
  for (;;) {
    Duration wait{};
    std::shared_ptr<GuestRun> self;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || wait_request_.has_value(); });
      if (stopping_) return;
      wait = *std::exchange(wait_request_, std::nullopt);
      self = std::move(waiting_self_);
    }
    try {
      backend_.wait_for_readiness(wait);
    } catch (const std::exception& e) {
      // The step that follows polls the backend itself, and fails the run if it is broken.
      std::fprintf(stderr, "trellis: guest run: waiting for I/O failed: %s\n", e.what());
    }
    try {
      options_.run_sync_soon_threadsafe(make_call(true));
    } catch (const std::exception& e) {
      std::fprintf(stderr, "trellis: guest run: run_sync_soon_threadsafe threw: %s\n", e.what());
    }
    // Let go of the run last. If that was its last reference (the host dropped the call),
    // ~GuestRun ran right here, on this thread, and detached it: leave without touching it.
    const std::weak_ptr<GuestRun> alive = self;
    self.reset();
    if (alive.expired()) return;
  }
}

void GuestRun::stop_io_thread() noexcept {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  if (io_thread_.joinable() && io_thread_.get_id() != std::this_thread::get_id()) {
    io_thread_.join();
  }
}

void GuestRun::end(std::exception_ptr error) {
  done_ = true;
  stop_io_thread();
  loop_.reset();  // on the host's thread, which ran the tasks (its stack pool is theirs)
  guest_on_this_thread = false;
  if (options_.done_callback) {
    options_.done_callback(std::move(error));
  } else if (error != nullptr) {
    std::rethrow_exception(error);
  }
}

void GuestRun::abandoned(bool waited) noexcept {
  if (done_) return;
  if (std::this_thread::get_id() != host_thread_) {
    std::fprintf(stderr,
                 "trellis: a guest run was abandoned: its host dropped a callback without "
                 "running it (off the host's thread: the run cannot be finished)\n");
    return;
  }
  // On the host's thread: cancel everything and finish the run here and now, waiting for
  // I/O inline, so no task is left behind.
  try {
    loop_->cancel_everything();
    for (;;) {
      const internal::GuestLoop::Step step = loop_->step(waited);
      if (step.done) break;
      waited = step.wait > Duration::zero();
      if (waited) backend_.wait_for_readiness(step.wait);
    }
    try {
      loop_->finish();
    } catch (...) {
    }
    end(std::make_exception_ptr(GuestRunAbandoned(
        "the guest run was abandoned: its host dropped a callback without running it (the run "
        "was cancelled and finished on the host's thread)")));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "trellis: an abandoned guest run failed to finish: %s\n", e.what());
  }
}

}  // namespace

void start_guest_run(std::function<void()> main, GuestRunOptions options) {
  if (!options.run_sync_soon_threadsafe) {
    throw UsageError("start_guest_run: run_sync_soon_threadsafe is required");
  }
  if (!main) throw UsageError("start_guest_run: main is empty");
  if (guest_on_this_thread) {
    throw UsageError("start_guest_run: a guest run already lives on this thread");
  }
  auto run = std::make_shared<GuestRun>(std::move(main), std::move(options));
  run->begin();
}

}  // namespace trellis
