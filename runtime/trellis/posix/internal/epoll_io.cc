#include "trellis/posix/internal/epoll_io.h"

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
#include "trellis/core/lowlevel_inline.h"
#include "trellis/core/os_error.h"
#include "trellis/core/run.h"
#include "trellis/posix/internal/sigpipe_block.h"

namespace trellis::posix::internal {
namespace {

constexpr std::uint32_t kRegisteredEvents = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
constexpr std::uint32_t kReadEvents = EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR;
constexpr std::uint32_t kWriteEvents = EPOLLOUT | EPOLLHUP | EPOLLERR;

// epoll data of a descriptor: fd + 1, so 0 stays the backend's wake-up eventfd.
std::uint64_t tag(int fd) {
  return static_cast<std::uint64_t>(fd) + 1;
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
  direction.waiter = &lowlevel::fast::current_task();
  ++waiters_;
  // fds_ may grow while parked: look the state up again by number, never through a reference.
  lowlevel::fast::wait_task_rescheduled(
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
  if ((events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0) fd_state.read_end_seen = true;
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

void EpollIo::note_drained(IoHandle handle) noexcept {
  if (handle.value < 0 || handle.value > INT_MAX) return;
  const auto index = static_cast<std::size_t>(handle.value);
  if (index >= fds_.size() || fds_[index].read_end_seen) return;
  note_would_block(static_cast<int>(handle.value), false);
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

EpollIo::~EpollIo() {
  SigpipeBlock::release(this);
}

EpollIo::Kind EpollIo::kind(int fd) const noexcept {
  const auto index = static_cast<std::size_t>(fd);
  return index < fds_.size() ? fds_[index].kind : Kind::kUnknown;
}

void EpollIo::set_kind(int fd, Kind kind) {
  TRELLIS_ASSERT(kind != Kind::kUnknown);
  // Only for a descriptor a call just accepted: its number is below RLIMIT_NOFILE, so growing
  // fds_ to it is bounded (a bogus number got EBADF and is never recorded).
  state(fd).kind = kind;
  TRELLIS_ASSERT(this->kind(fd) == kind);
}

IoResult<std::size_t> EpollIo::write(IoHandle handle, const void* data, std::size_t size) {
  if (handle.value < 0 || handle.value > INT_MAX) return {0, EBADF};
  const int fd = static_cast<int>(handle.value);
  ssize_t n = -1;
  int error = 0;
  const Kind known = kind(fd);
  if (known != Kind::kPipe) {
    // A socket, or not known yet: send() with MSG_NOSIGNAL, which a pipe refuses (ENOTSOCK).
    n = ::send(fd, data, size, MSG_NOSIGNAL);
    error = n < 0 ? errno : 0;
    if (error == 0 && known == Kind::kUnknown) set_kind(fd, Kind::kSocket);
  }
  if (known == Kind::kPipe || error == ENOTSOCK) {
    // Not a socket (its number may also have been reused behind our back: write(2) is right
    // for any descriptor). SIGPIPE is blocked on this thread, so EPIPE raises no signal that
    // is ever delivered: one write(2), no signal-mask calls around it.
    if (known != Kind::kPipe) set_kind(fd, Kind::kPipe);
    SigpipeBlock::ensure_blocked(this);
    n = ::write(fd, data, size);
    error = n < 0 ? errno : 0;
    if (error == EPIPE) SigpipeBlock::consume_after_epipe();
  }
  if (error == EAGAIN) note_would_block(fd, true);
  if (n < 0) return {0, error};
  return {static_cast<std::size_t>(n), 0};
}

}  // namespace trellis::posix::internal
