#include "trellis/posix/epoll_backend.h"

#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <system_error>
#include <utility>

#include "trellis/base/assert.h"
#include "trellis/base/closure_queue.h"
#include "trellis/posix/internal/epoll_io.h"
#include "trellis/posix/internal/posix_file_system.h"
#include "trellis/posix/internal/posix_network.h"
#include "trellis/posix/internal/posix_processes.h"
#include "trellis/posix/internal/posix_threads.h"

namespace trellis::posix {
namespace {

// Trio caps a single wait at 24 hours; the cap also keeps the arithmetic below far from
// overflow.
constexpr Duration kWaitMax = std::chrono::hours(24);

// A wait's timeout for the kernel (bounded: the clock may convert "far away" to years).
timespec wait_timespec(Duration timeout) {
  const Duration bounded = timeout < kWaitMax ? timeout : kWaitMax;
  timespec ts{};
  ts.tv_sec =
      static_cast<time_t>(std::chrono::duration_cast<std::chrono::seconds>(bounded).count());
  ts.tv_nsec = static_cast<long>((bounded - std::chrono::seconds(ts.tv_sec)).count());
  return ts;
}

}  // namespace

EpollBackend::EpollBackend() {
  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) throw std::system_error(errno, std::generic_category(), "epoll_create1");
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) {
    const int error = errno;
    ::close(epoll_fd_);
    throw std::system_error(error, std::generic_category(), "eventfd");
  }
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.u64 = 0;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &event) != 0) {
    const int error = errno;
    ::close(wake_fd_);
    ::close(epoll_fd_);
    throw std::system_error(error, std::generic_category(), "epoll_ctl(eventfd)");
  }
  completions_ = std::make_shared<ClosureQueue>([this] { wake_from_any_thread(); });
  io_ = std::make_unique<internal::EpollIo>(epoll_fd_);
  network_ = std::make_unique<internal::PosixNetwork>(*io_, completions_);
  threads_ = std::make_unique<internal::PosixThreads>(completions_);
  file_system_ = std::make_unique<internal::PosixFileSystem>();
  processes_ = std::make_unique<internal::PosixProcesses>(*io_, *threads_);
}

EpollBackend::~EpollBackend() {
  // First: no worker thread may wake (write the eventfd) or reach network_ from now on.
  completions_->close();
  processes_.reset();  // kills and reaps children still held; needs io_
  file_system_.reset();
  threads_.reset();
  network_.reset();
  io_.reset();
  ::close(wake_fd_);
  ::close(epoll_fd_);
}

bool EpollBackend::skip_zero_wait() noexcept {
  if (wake_pending_.load(std::memory_order_acquire)) return false;
  if (readiness_seen_.load(std::memory_order_relaxed)) return false;
  if (io_->waiters() == 0) return true;
  // The loop's first poll after a wait that brought events: that wait emptied the ready list
  // one batch ago (say, the batch of the task that read a message and woke the task it was
  // for). Once: the next zero-timeout poll is made, so events that arrived meanwhile are
  // taken one batch later at most.
  return std::exchange(fresh_wait_, false);
}

int EpollBackend::wait_for_events(epoll_event* events, int size, Duration timeout) {
  const timespec ts = wait_timespec(timeout);
  // At millisecond resolution, rounded up so that deadlines are never early: libtsan does not
  // intercept epoll_pwait2, so a signal arriving while the loop waits in it is never
  // delivered (the thread-facing tests hang), and kernels before 5.11 (and valgrind) do not
  // have it.
  const int ms = timeout == Duration::max()
                     ? -1
                     : static_cast<int>(ts.tv_sec * 1000 + (ts.tv_nsec + 999'999) / 1'000'000);
#if defined(__SANITIZE_THREAD__)
  have_epoll_pwait2_ = false;
#endif
  int count = -1;
  do {
    if (have_epoll_pwait2_) {
      count = ::epoll_pwait2(epoll_fd_, events, size, timeout == Duration::max() ? nullptr : &ts,
                             nullptr);
      if (count < 0 && errno == ENOSYS) {
        have_epoll_pwait2_ = false;
        errno = EINTR;  // (again, with epoll_wait)
      }
    } else {
      count = ::epoll_wait(epoll_fd_, events, size, ms);
    }
  } while (count < 0 && errno == EINTR);
  return count;
}

bool EpollBackend::wait_and_dispatch(Duration timeout) {
  TRELLIS_ASSERT(timeout >= Duration::zero());
  // The loop's poll between batches when nothing can be ready: no system call (and, apart,
  // none of the wait's large frame either: it runs at the end of every batch).
  if (timeout == Duration::zero() && skip_zero_wait()) return false;
  return wait_and_dispatch_events(timeout);
}

bool EpollBackend::wait_and_dispatch_events(Duration timeout) {
  fresh_wait_ = false;
  // (Events seen by a guest run's wait_for_readiness are taken now, or the epoll instance
  // would stay readable with edge-triggered events nobody waits for.)
  readiness_seen_.store(false, std::memory_order_relaxed);
  constexpr int kEventsPerWaitMax = 64;
  epoll_event events[kEventsPerWaitMax];
  const int count = wait_for_events(events, kEventsPerWaitMax, timeout);
  if (count < 0) throw std::system_error(errno, std::generic_category(), "epoll wait");
  fresh_wait_ = timeout != Duration::zero() && count > 0 && count < kEventsPerWaitMax;
  bool delivered = false;
  for (int i = 0; i < count; ++i) {
    if (events[i].data.u64 == 0) {
      std::uint64_t value = 0;
      while (::read(wake_fd_, &value, sizeof value) > 0) {
      }
      wake_pending_.store(false, std::memory_order_release);
      completions_->drain();
      delivered = true;
    } else if (io_->dispatch(static_cast<int>(events[i].data.u64 - 1), events[i].events)) {
      delivered = true;
    }
  }
  return delivered;
}

bool EpollBackend::wait_for_readiness(Duration timeout) {
  TRELLIS_ASSERT(timeout >= Duration::zero());
  if (wake_pending_.load(std::memory_order_acquire)) return true;
  // An epoll instance is itself readable while any of its events is ready (the wake-up
  // eventfd included), so a ppoll on it waits without taking the events: the loop's thread
  // takes them afterwards with wait_and_dispatch(0).
  const timespec ts = wait_timespec(timeout);
  pollfd fd{.fd = epoll_fd_, .events = POLLIN, .revents = 0};
  int count = -1;
  do {
    count = ::ppoll(&fd, 1, timeout == Duration::max() ? nullptr : &ts, nullptr);
  } while (count < 0 && errno == EINTR);
  if (count < 0) throw std::system_error(errno, std::generic_category(), "ppoll");
  if (count > 0) readiness_seen_.store(true, std::memory_order_relaxed);
  return true;
}

void EpollBackend::wake_from_any_thread() noexcept {
  wake_pending_.store(true, std::memory_order_release);
  const std::uint64_t one = 1;
  // Async-signal-safe; EAGAIN (counter saturated) still leaves the eventfd readable.
  [[maybe_unused]] const ssize_t written = ::write(wake_fd_, &one, sizeof one);
}

bool EpollBackend::has_pending_sources() const {
  return external_sources_.load() > 0 || io_->waiters() > 0 || network_->lookups_waited() > 0 ||
         threads_->jobs_waited() > 0;
}

BackendStatistics EpollBackend::statistics() const {
  BackendStatistics stats;
  stats.tasks_waiting_io = io_->waiters() + network_->lookups_waited() + threads_->jobs_waited();
  stats.pending_sources = external_sources_.load() + stats.tasks_waiting_io;
  return stats;
}

IoFacet* EpollBackend::io() noexcept {
  return io_.get();
}

NetworkFacet* EpollBackend::network() noexcept {
  return network_.get();
}

FileSystemFacet* EpollBackend::file_system() noexcept {
  return file_system_.get();
}

ThreadFacet* EpollBackend::threads() noexcept {
  return threads_.get();
}

ProcessFacet* EpollBackend::processes() noexcept {
  return processes_.get();
}

}  // namespace trellis::posix
