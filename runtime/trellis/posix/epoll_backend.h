// trellis/posix/epoll_backend.h — the real Backend: an epoll instance plus an eventfd.
//
// This first part waits with a timeout and can be woken from any thread (and from a signal
// handler) through the eventfd; readiness waits on sockets and pipes arrive with the I/O
// issue. When no wait is registered and no wake-up is pending, a zero-timeout poll returns
// without a system call, which keeps a busy run loop cheap.
#pragma once

#include <atomic>
#include <cstddef>

#include "trellis/core/backend.h"

namespace trellis::posix {

class EpollBackend final : public Backend {
 public:
  EpollBackend();
  ~EpollBackend() override;
  EpollBackend(const EpollBackend&) = delete;
  EpollBackend& operator=(const EpollBackend&) = delete;

  std::string_view name() const override { return "epoll"; }
  bool wait_and_dispatch(Duration timeout) override;
  void wake_from_any_thread() noexcept override;
  bool has_pending_sources() const override { return external_sources_.load() > 0; }
  BackendStatistics statistics() const override;

  // A foreign thread that may call wake_from_any_thread() later (a RunToken holder, a worker
  // thread) registers itself, so an idle run waits for it instead of reporting a deadlock.
  void add_external_source() noexcept { external_sources_.fetch_add(1); }
  void remove_external_source() noexcept { external_sources_.fetch_sub(1); }

 private:
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  // Invariant: wake_pending_ is true from a wake_from_any_thread() until the loop has
  // drained the eventfd.
  std::atomic<bool> wake_pending_{false};
  std::atomic<std::size_t> external_sources_{0};
};

}  // namespace trellis::posix
