#include "trellis/posix/internal/epoll_io.h"

#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <exception>
#include <string>
#include <utility>

#include "trellis/base/assert.h"
#include "trellis/core/errors.h"
#include "trellis/core/lowlevel.h"
#include "trellis/core/os_error.h"
#include "trellis/core/run.h"

namespace trellis::posix::internal {
namespace {

constexpr std::uint32_t kRegisteredEvents = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
constexpr std::uint32_t kReadEvents = EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR;
constexpr std::uint32_t kWriteEvents = EPOLLOUT | EPOLLHUP | EPOLLERR;

// epoll data of a descriptor: fd + 1, so 0 stays the backend's wake-up eventfd.
std::uint64_t tag(int fd) {
  return static_cast<std::uint64_t>(fd) + 1;
}

// write(2) on something that is not a socket (a pipe) with SIGPIPE blocked for the call, and a
// SIGPIPE it raised consumed, so the caller sees EPIPE and the process no signal.
IoResult<std::size_t> write_without_sigpipe(int fd, const void* data, std::size_t size) {
  sigset_t pipe_only;
  sigemptyset(&pipe_only);
  sigaddset(&pipe_only, SIGPIPE);
  sigset_t pending;
  sigpending(&pending);
  const bool was_pending = sigismember(&pending, SIGPIPE) == 1;
  sigset_t old;
  pthread_sigmask(SIG_BLOCK, &pipe_only, &old);
  const ssize_t n = ::write(fd, data, size);
  const int error = n < 0 ? errno : 0;
  if (error == EPIPE && !was_pending) {
    const timespec zero{};
    while (::sigtimedwait(&pipe_only, nullptr, &zero) < 0 && errno == EINTR) {
    }
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (n < 0) return {0, error};
  return {static_cast<std::size_t>(n), 0};
}

}  // namespace

int EpollIo::checked_fd(IoHandle handle) {
  if (handle.value < 0 || handle.value > INT_MAX) {
    throw OSError(EBADF, "wait on handle " + std::to_string(handle.value));
  }
  return static_cast<int>(handle.value);
}

EpollIo::FdState& EpollIo::state(int fd) {
  TRELLIS_ASSERT(fd >= 0);
  const auto index = static_cast<std::size_t>(fd);
  if (index >= fds_.size()) fds_.resize(std::max(index + 1, fds_.size() * 2));
  return fds_[index];
}

void EpollIo::wait(IoHandle handle, bool for_write) {
  const int fd = checked_fd(handle);
  const auto index = static_cast<std::size_t>(fd);
  if (index >= fds_.size() || !fds_[index].registered) {
    // Register before growing fds_, so a bogus number (EBADF) costs no memory.
    epoll_event event{};
    event.events = kRegisteredEvents;
    event.data.u64 = tag(fd);
    // EEXIST: the number is still in the set from a descriptor closed behind our back
    // (without notify_closing) and reused; take the registration over.
    if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &event) != 0 &&
        (errno != EEXIST || ::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &event) != 0)) {
      throw OSError(errno, "epoll_ctl(ADD) of fd " + std::to_string(fd));
    }
    FdState& fresh = state(fd);
    fresh.registered = true;
    fresh.read = {nullptr, false, true};
    fresh.write = {nullptr, false, true};
  }
  FdState& fd_state = fds_[index];
  Direction& direction = for_write ? fd_state.write : fd_state.read;
  if (direction.waiter != nullptr) {
    throw BusyResourceError(std::string("another task is already waiting for this handle to be ") +
                            (for_write ? "writable" : "readable"));
  }
  if (direction.ready) {
    // An edge came while nobody waited: return now (the caller retries its call).
    checkpoint_if_cancelled();
    direction.ready = false;
    return;
  } else if (!direction.armed) {
    epoll_event event{};
    event.events = kRegisteredEvents;
    event.data.u64 = tag(fd);
    if (::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &event) != 0) {
      throw OSError(errno, "epoll_ctl(MOD) of fd " + std::to_string(fd));
    }
    fd_state.read.armed = true;
    fd_state.write.armed = true;
  }
  TRELLIS_ASSERT(fd_state.registered);
  direction.waiter = &lowlevel::current_task();
  ++waiters_;
  // fds_ may grow while parked: look the state up again by number, never through a reference.
  lowlevel::wait_task_rescheduled(
      [this, fd, for_write](std::exception_ptr) {
        FdState& s = fds_[static_cast<std::size_t>(fd)];
        Direction& d = for_write ? s.write : s.read;
        TRELLIS_ASSERT(d.waiter != nullptr);
        d.waiter = nullptr;
        --waiters_;
        return lowlevel::Abort::kSucceeded;
      },
      for_write ? "wait_writable" : "wait_readable");
}

void EpollIo::wait_readable(IoHandle handle) {
  wait(handle, false);
}

void EpollIo::wait_writable(IoHandle handle) {
  wait(handle, true);
}

bool EpollIo::dispatch(int fd, std::uint32_t events) {
  const auto index = static_cast<std::size_t>(fd);
  if (index >= fds_.size() || !fds_[index].registered) return false;
  FdState& fd_state = fds_[index];
  bool woke = false;
  auto fire = [&](Direction& direction) {
    direction.armed = false;
    if (direction.waiter != nullptr) {
      TRELLIS_ASSERT(waiters_ > 0);
      lowlevel::Task* task = std::exchange(direction.waiter, nullptr);
      --waiters_;
      lowlevel::reschedule(*task);
      woke = true;
    } else {
      direction.ready = true;
    }
  };
  if ((events & kReadEvents) != 0) fire(fd_state.read);
  if ((events & kWriteEvents) != 0) fire(fd_state.write);
  return woke;
}

void EpollIo::note_would_block(int fd, bool for_write) noexcept {
  const auto index = static_cast<std::size_t>(fd);
  if (fd < 0 || index >= fds_.size() || !fds_[index].registered) return;
  Direction& direction = for_write ? fds_[index].write : fds_[index].read;
  direction.armed = true;
  direction.ready = false;
}

void EpollIo::notify_closing(IoHandle handle) {
  if (handle.value < 0 || handle.value > INT_MAX) return;
  const int fd = static_cast<int>(handle.value);
  const auto index = static_cast<std::size_t>(fd);
  if (index >= fds_.size()) return;
  FdState& fd_state = fds_[index];
  if (fd_state.registered) {
    // ENOENT/EBADF: already gone from the set; nothing to undo.
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
  }
  lowlevel::Task* reader = std::exchange(fd_state.read.waiter, nullptr);
  lowlevel::Task* writer = std::exchange(fd_state.write.waiter, nullptr);
  fd_state = FdState{};
  for (lowlevel::Task* task : {reader, writer}) {
    if (task == nullptr) continue;
    TRELLIS_ASSERT(waiters_ > 0);
    --waiters_;
    lowlevel::reschedule(*task, std::make_exception_ptr(ClosedResourceError(
                                    "another task closed this handle while it was waited on")));
  }
}

int EpollIo::close(IoHandle handle) {
  if (handle.value < 0 || handle.value > INT_MAX) return EBADF;
  notify_closing(handle);
  // Linux releases the descriptor even when close() fails (EINTR included): never retry.
  if (::close(static_cast<int>(handle.value)) != 0 && errno != EINTR) return errno;
  return 0;
}

IoResult<std::size_t> EpollIo::read(IoHandle handle, void* buffer, std::size_t size) {
  if (handle.value < 0 || handle.value > INT_MAX) return {0, EBADF};
  const int fd = static_cast<int>(handle.value);
  const ssize_t n = ::read(fd, buffer, size);
  if (n >= 0) return {static_cast<std::size_t>(n), 0};
  const int error = errno;
  if (error == EAGAIN) note_would_block(fd, false);
  return {0, error};
}

IoResult<std::size_t> EpollIo::write(IoHandle handle, const void* data, std::size_t size) {
  if (handle.value < 0 || handle.value > INT_MAX) return {0, EBADF};
  const int fd = static_cast<int>(handle.value);
  IoResult<std::size_t> result;
  const ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL);
  if (n >= 0) {
    result = {static_cast<std::size_t>(n), 0};
  } else if (errno == ENOTSOCK) {
    result = write_without_sigpipe(fd, data, size);
  } else {
    result = {0, errno};
  }
  if (result.error == EAGAIN) note_would_block(fd, true);
  return result;
}

}  // namespace trellis::posix::internal
