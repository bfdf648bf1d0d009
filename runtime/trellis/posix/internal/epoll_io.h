// trellis/posix/internal/epoll_io.h — EpollIo: the epoll backend's IoFacet (readiness waits
// on file descriptors, notify_closing, close, nonblocking read/write).
//
// Owned by EpollBackend, which feeds it the events of each epoll wait through dispatch().
//
// Edge-triggered, with level-triggered meaning. A descriptor is registered once, on its first
// wait, for EPOLLIN|EPOLLOUT|EPOLLRDHUP|EPOLLET, and stays registered until notify_closing /
// close: a blocked read costs no epoll_ctl, only the epoll wait (Trio's level-triggered
// EPOLLONESHOT scheme pays an epoll_ctl per wait). Edge-triggered epoll only reports changes,
// so to keep wait_readable's promise ("returns when a read would not block, whatever happened
// before the call") each direction of each descriptor tracks:
//   ready: an edge arrived while no task waited; the next wait returns at once (possibly
//          spuriously: the caller retries its call, gets EAGAIN, and waits again);
//   armed: an edge is certain to come when the descriptor becomes ready — set when the
//          registration is made or re-made, and when a read (write) through this backend
//          returned EAGAIN after the last edge. A wait on an unarmed direction re-arms with
//          EPOLL_CTL_MOD, which makes the kernel re-check readiness.
// So the usual cycle (recv -> EAGAIN -> wait_readable -> edge -> recv) costs no epoll_ctl.
//
// Writes: send(MSG_NOSIGNAL) on a socket, plain write(2) on anything else (a pipe), with
// SIGPIPE blocked on the writing thread instead (see sigpipe_block.h). Which one a descriptor
// is, is learnt from its first write (a send() that fails with ENOTSOCK) and kept in its
// FdState until notify_closing/close, so each later write is one system call.
//
// Rule for descriptors not created through this backend (a pipe the caller made): call
// notify_closing() before closing it, as in Trio, so a reused number is not mistaken for it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "trellis/core/io_facet.h"
#include "trellis/core/task.h"

namespace trellis::posix::internal {

class EpollIo final : public IoFacet {
 public:
  // epoll_fd: the backend's epoll instance (not owned).
  explicit EpollIo(int epoll_fd) : epoll_fd_(epoll_fd) {}
  // Restores SIGPIPE in the signal mask of this thread if a write here blocked it.
  ~EpollIo() override;
  EpollIo(const EpollIo&) = delete;
  EpollIo& operator=(const EpollIo&) = delete;

  // IoFacet. wait_*: park (a schedule point; cancellable); throw BusyResourceError for a
  // second waiter in the same direction, ClosedResourceError when notify_closing() ran
  // meanwhile, OSError for a descriptor epoll refuses (EBADF, EPERM for regular files).
  void wait_readable(IoHandle handle) override;
  void wait_writable(IoHandle handle) override;
  void notify_closing(IoHandle handle) override;
  int close(IoHandle handle) override;
  IoResult<std::size_t> read(IoHandle handle, void* buffer, std::size_t size) override;
  IoResult<std::size_t> write(IoHandle handle, const void* data, std::size_t size) override;
  // As an EAGAIN read (the next edge will be reported: the direction is armed), unless an
  // event already reported the peer's end or an error: a short read says nothing of an end
  // of file or error still to read, and that edge is spent.
  void note_drained(IoHandle handle) noexcept override;

  // Loop thread: one epoll event for descriptor fd. Returns true if a task was woken.
  bool dispatch(int fd, std::uint32_t events);
  // A nonblocking call on fd returned EAGAIN: the next edge in that direction will be
  // reported (see "armed" above). Called by PosixNetwork too.
  void note_would_block(int fd, bool for_write) noexcept;
  // Tasks parked in wait_readable / wait_writable.
  std::size_t waiters() const noexcept { return waiters_; }

 private:
  struct Direction {
    lowlevel::Task* waiter = nullptr;
    bool ready = false;
    bool armed = false;
  };
  // What write() learnt a descriptor is. Not tied to registration: a pipe may be written
  // before any wait registers it.
  enum class Kind : std::uint8_t { kUnknown, kSocket, kPipe };
  struct FdState {
    // Invariant: registered iff fd is in the epoll set (as far as this backend knows).
    bool registered = false;
    // Reset with the rest by notify_closing/close. A number closed behind our back and reused
    // may carry a stale kind; write() stays correct either way (ENOTSOCK from send() re-learns
    // it; write(2) on a socket is covered by the blocked SIGPIPE).
    Kind kind = Kind::kUnknown;
    // An event reported EPOLLRDHUP, EPOLLHUP or EPOLLERR (note_drained is then ignored).
    bool read_end_seen = false;
    Direction read;
    Direction write;
  };

  void wait(IoHandle handle, bool for_write);
  FdState& state(int fd);
  Kind kind(int fd) const noexcept;
  void set_kind(int fd, Kind kind);
  static int checked_fd(IoHandle handle);

  const int epoll_fd_;
  // Indexed by descriptor number; grows on demand (descriptors are small integers).
  std::vector<FdState> fds_;
  // Invariant: waiters_ == the number of non-null Direction::waiter in fds_.
  std::size_t waiters_ = 0;
};

}  // namespace trellis::posix::internal
