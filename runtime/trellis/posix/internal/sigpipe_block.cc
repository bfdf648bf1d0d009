#include "trellis/posix/internal/sigpipe_block.h"

#include <pthread.h>
#include <signal.h>
#include <time.h>

#include <cerrno>

#include "trellis/base/assert.h"

namespace trellis::posix::internal {
namespace {

struct ThreadState {
  // Invariant: owner != nullptr iff this thread's mask has SIGPIPE blocked by ensure_blocked.
  const void* owner = nullptr;
  // Whether SIGPIPE was blocked already when owner came (then release() leaves it blocked).
  bool was_blocked = false;
};
thread_local ThreadState t_state;

sigset_t sigpipe_only() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGPIPE);
  return set;
}

}  // namespace

void SigpipeBlock::ensure_blocked(const void* owner) noexcept {
  TRELLIS_ASSERT(owner != nullptr);
  if (t_state.owner != nullptr) return;
  const sigset_t set = sigpipe_only();
  sigset_t old;
  const int error = pthread_sigmask(SIG_BLOCK, &set, &old);
  TRELLIS_ASSERT(error == 0);
  t_state.owner = owner;
  t_state.was_blocked = sigismember(&old, SIGPIPE) == 1;
}

void SigpipeBlock::consume_after_epipe() noexcept {
  TRELLIS_ASSERT(t_state.owner != nullptr);
  // Linux takes a thread's own pending signals before the process's: this is the one the
  // failed write raised. Zero timeout: EAGAIN if there is none, never a wait.
  const sigset_t set = sigpipe_only();
  const timespec zero{};
  while (::sigtimedwait(&set, nullptr, &zero) < 0 && errno == EINTR) {
  }
}

void SigpipeBlock::release(const void* owner) noexcept {
  if (owner == nullptr || t_state.owner != owner) return;
  if (!t_state.was_blocked) {
    const sigset_t set = sigpipe_only();
    const int error = pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
    TRELLIS_ASSERT(error == 0);
  }
  t_state = ThreadState{};
  TRELLIS_ASSERT(t_state.owner == nullptr);
}

bool SigpipeBlock::blocked_on_this_thread() noexcept {
  return t_state.owner != nullptr;
}

}  // namespace trellis::posix::internal
