// trellis/posix/internal/sigpipe_block.h — SIGPIPE blocked on a run-loop thread, so that a
// write(2) to a pipe whose reader is gone returns EPIPE instead of killing the process.
//
// Sockets need none of this: send(2) takes MSG_NOSIGNAL. Pipes have no such flag, and a
// process-wide SIG_IGN would change what the program's other threads, and everything it
// spawns, see. So the thread that writes to a pipe through EpollIo blocks SIGPIPE in its own
// signal mask, once (one pthread_sigmask), and keeps it blocked until the EpollIo that blocked
// it is destroyed on that thread; a write is then a plain write(2). A write that fails with
// EPIPE leaves its SIGPIPE pending on the thread (a signal raised by write is thread-directed);
// consume_after_epipe() takes it off again, so it is never delivered when the mask is restored.
//
//   SigpipeBlock::ensure_blocked(this);            // before write(2) on a pipe
//   ssize_t n = ::write(fd, data, size);
//   if (n < 0 && errno == EPIPE) SigpipeBlock::consume_after_epipe();
//   ...
//   SigpipeBlock::release(this);                   // in the owner's destructor
//
// What others may notice: a thread the run-loop thread starts while SIGPIPE is blocked inherits
// the blocked mask (the runtime's own worker threads block every signal anyway); children
// started with posix_spawn get an empty mask (posix_processes.cc). A guest run destroyed off
// its host thread cannot restore the host thread's mask: SIGPIPE stays blocked there.
#pragma once

namespace trellis::posix::internal {

class SigpipeBlock {
 public:
  // Blocks SIGPIPE on the calling thread unless already blocked there; owner (an identity
  // only, never dereferenced) is who may release() it. Costs nothing when already blocked.
  static void ensure_blocked(const void* owner) noexcept;
  // After write(2) failed with EPIPE on this thread: takes the SIGPIPE it raised off the
  // thread's pending set. Never blocks.
  static void consume_after_epipe() noexcept;
  // If owner blocked SIGPIPE on the calling thread, restores the mask it found there.
  static void release(const void* owner) noexcept;
  // True while SIGPIPE is blocked on the calling thread by an ensure_blocked() (for tests).
  static bool blocked_on_this_thread() noexcept;
};

}  // namespace trellis::posix::internal
