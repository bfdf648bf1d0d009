// trellis/core/internal/signal_hub.cc — the process-wide signal handler and the run's hub
// of real POSIX signals (signal_hub.h); signal_name() and check_signal_catchable()
// (core/signal_facet.h).
#include "trellis/core/internal/signal_hub.h"

#include <errno.h>
#include <signal.h>
#include <string.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <stdexcept>
#include <string>

#include "trellis/base/assert.h"
#include "trellis/core/errors.h"
#include "trellis/core/os_error.h"

namespace trellis {
namespace internal {
namespace {

// Which hub each signal is routed to. The handler reads it; route/unroute write it.
std::array<std::atomic<SignalHub*>, SignalHub::kSignalLimit> routes_by_signal{};
// Handlers between reading routes_by_signal and finishing with the hub: a hub is destroyed
// only after this drops to zero with none of its routes left.
std::atomic<int> handlers_running{0};

extern "C" void trellis_signal_handler(int signo) {
  const int saved_errno = errno;
  handlers_running.fetch_add(1);
  if (signo > 0 && signo < SignalHub::kSignalLimit) {
    if (SignalHub* hub = routes_by_signal[signo].load()) hub->note(signo);
  }
  handlers_running.fetch_sub(1);
  errno = saved_errno;
}

}  // namespace
}  // namespace internal

void check_signal_catchable(int signo) {
  if (signo <= 0 || signo >= SignalFacet::kSignalLimit || signo >= NSIG) {
    throw std::invalid_argument("open_signal_receiver: " + std::to_string(signo) +
                                " is not a signal number");
  }
  if (signo == SIGKILL || signo == SIGSTOP) {
    throw std::invalid_argument(std::string("open_signal_receiver: ") + signal_name(signo) +
                                " cannot be caught");
  }
}

const char* signal_name(int signo) noexcept {
  const char* abbrev = sigabbrev_np(signo);
  if (abbrev == nullptr) return "unknown signal";
  static thread_local char buffer[16];
  std::snprintf(buffer, sizeof buffer, "SIG%s", abbrev);
  return buffer;
}

namespace internal {

SignalHub::SignalHub(Backend& backend, std::function<void(int)> on_unclaimed)
    : backend_(backend), on_unclaimed_(std::move(on_unclaimed)) {}

SignalHub::~SignalHub() {
  for (int signo = 1; signo < kSignalLimit; ++signo) {
    if (routes_[signo] > 0) {
      routes_[signo] = 1;
      unroute(signo);
    }
  }
  // A handler on another thread may still hold this hub: wait it out (handlers are short).
  while (handlers_running.load() != 0) {
  }
}

void SignalHub::route(int signo) {
  check_signal_catchable(signo);
  if (routes_[signo]++ > 0) return;
  SignalHub* expected = nullptr;
  if (!routes_by_signal[signo].compare_exchange_strong(expected, this)) {
    --routes_[signo];
    throw UsageError(std::string(signal_name(signo)) +
                     " is already caught by another trellis run in this process");
  }
  struct sigaction action {};
  action.sa_handler = &trellis_signal_handler;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  if (::sigaction(signo, &action, &previous_[signo]) != 0) {
    const int error = errno;
    routes_by_signal[signo].store(nullptr);
    --routes_[signo];
    throw OSError(error, std::string("sigaction ") + signal_name(signo));
  }
}

void SignalHub::unroute(int signo) noexcept {
  TRELLIS_ASSERT(routes_[signo] > 0);
  if (--routes_[signo] > 0) return;
  ::sigaction(signo, &previous_[signo], nullptr);
  routes_by_signal[signo].store(nullptr);
}

void SignalHub::add_receiver(int signo, SignalReceiver& receiver) {
  route(signo);
  receivers_[signo].push_back(&receiver);
}

void SignalHub::remove_receiver(int signo, SignalReceiver& receiver) noexcept {
  auto& stack = receivers_[signo];
  auto it = std::find(stack.rbegin(), stack.rend(), &receiver);
  TRELLIS_ASSERT(it != stack.rend());
  stack.erase(std::next(it).base());
  unroute(signo);
}

void SignalHub::raise(int signo) noexcept {
  ::raise(signo);
}

void SignalHub::note(int signo) noexcept {
  counts_[signo].fetch_add(1, std::memory_order_relaxed);
  arrived_.store(true, std::memory_order_release);
  backend_.wake_from_any_thread();
}

void SignalHub::dispatch() {
  if (!arrived_.exchange(false, std::memory_order_acquire)) return;
  for (int signo = 1; signo < kSignalLimit; ++signo) {
    if (counts_[signo].load(std::memory_order_relaxed) == 0) continue;
    counts_[signo].exchange(0, std::memory_order_acq_rel);
    if (!receivers_[signo].empty()) {
      deliver(*receivers_[signo].back(), signo);
    } else if (on_unclaimed_) {
      on_unclaimed_(signo);
    }
  }
}

}  // namespace internal
}  // namespace trellis
