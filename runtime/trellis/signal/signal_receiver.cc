// trellis/signal/signal_receiver.cc — the process-wide signal handler, the run's signal
// hub and SignalReceiver.

#include "trellis/signal/signal_receiver.h"

#include <errno.h>
#include <signal.h>
#include <string.h>

#include <cstdio>

#include <algorithm>
#include <stdexcept>
#include <string>

#include "trellis/base/assert.h"
#include "trellis/core/errors.h"
#include "trellis/core/internal/signal_hub.h"
#include "trellis/core/lowlevel.h"
#include "trellis/core/os_error.h"
#include "trellis/core/run.h"

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

void check_catchable(int signo) {
  if (signo <= 0 || signo >= SignalHub::kSignalLimit || signo >= NSIG) {
    throw std::invalid_argument("open_signal_receiver: " + std::to_string(signo) +
                                " is not a signal number");
  }
  if (signo == SIGKILL || signo == SIGSTOP) {
    throw std::invalid_argument(std::string("open_signal_receiver: ") + signal_name(signo) +
                                " cannot be caught");
  }
}

}  // namespace

const char* signal_name(int signo) noexcept {
  const char* abbrev = sigabbrev_np(signo);
  if (abbrev == nullptr) return "unknown signal";
  static thread_local char buffer[16];
  std::snprintf(buffer, sizeof buffer, "SIG%s", abbrev);
  return buffer;
}

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
  check_catchable(signo);
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

SignalReceiver::SignalReceiver(std::initializer_list<int> signals) {
  lowlevel::current_task();  // a task of a run, or UsageError
  if (signals.size() == 0) throw std::invalid_argument("open_signal_receiver: no signals given");
  for (int signo : signals) {
    internal::check_catchable(signo);
    if (std::find(signals_.begin(), signals_.end(), signo) == signals_.end()) {
      signals_.push_back(signo);
    }
  }
  SignalFacet* facet = &lowlevel::current_signals();
  std::size_t added = 0;
  try {
    for (; added < signals_.size(); ++added) facet->add_receiver(signals_[added], *this);
  } catch (...) {
    while (added > 0) facet->remove_receiver(signals_[--added], *this);
    throw;
  }
  facet_ = facet;
}

void SignalReceiver::add(int signo) {
  if (std::find(pending_.begin(), pending_.end(), signo) == pending_.end()) {
    pending_.push_back(signo);
  }
  if (waiter_ != nullptr) {
    lowlevel::Task* task = waiter_;
    waiter_ = nullptr;
    facet_->waiter_removed();
    lowlevel::reschedule(*task);
  }
}

int SignalReceiver::receive() {
  if (closed_) throw UsageError("SignalReceiver::receive: the open_signal_receiver block exited");
  if (receiving_) {
    throw BusyResourceError("only one task can receive from a signal receiver at a time");
  }
  receiving_ = true;
  if (pending_.empty()) {
    waiter_ = &lowlevel::current_task();
    facet_->waiter_added();
    // Woken by add() (a signal is pending), by abort, or by close() / abandon() with
    // UsageError; the last ones clear receiving_ themselves (after close() this object may
    // be gone).
    lowlevel::wait_task_rescheduled(
        [this](std::exception_ptr) {
          waiter_ = nullptr;
          receiving_ = false;
          facet_->waiter_removed();
          return lowlevel::Abort::kSucceeded;
        },
        "signal");
  } else {
    try {
      checkpoint();
    } catch (...) {
      receiving_ = false;
      throw;
    }
  }
  receiving_ = false;
  TRELLIS_ASSERT(!pending_.empty());
  const int signo = pending_.front();
  pending_.pop_front();
  return signo;
}

void SignalReceiver::close() noexcept {
  if (facet_ == nullptr) return;
  SignalFacet& facet = *facet_;
  // Signals that arrived but were not dispatched yet belong to this block (or to an outer
  // one): hand them out first, so none is lost in the switch-over.
  try {
    facet.flush();
  } catch (...) {
    // on_unclaimed only cancels scopes; nothing here throws in practice.
  }
  for (int signo : signals_) facet.remove_receiver(signo, *this);
  finish_closing("the open_signal_receiver block exited");
  // Not received: raise again under whatever handles the signal now.
  std::deque<int> remaining;
  remaining.swap(pending_);
  for (int signo : remaining) facet.raise(signo);
}

void SignalReceiver::abandon() noexcept {
  if (facet_ == nullptr) return;
  finish_closing("its simulated host crashed");
  pending_.clear();  // died with the process
}

void SignalReceiver::finish_closing(const char* why) noexcept {
  if (waiter_ != nullptr) {
    // A task (spawned elsewhere) still waits on this receiver: it cannot get a signal now.
    lowlevel::Task* task = waiter_;
    waiter_ = nullptr;
    receiving_ = false;
    facet_->waiter_removed();
    lowlevel::reschedule(
        *task, std::make_exception_ptr(UsageError(std::string("SignalReceiver::receive: ") + why)));
  }
  facet_ = nullptr;
  closed_ = true;
}

void SignalFacet::deliver(SignalReceiver& receiver, int signo) {
  receiver.add(signo);
}

void SignalFacet::abandon(SignalReceiver& receiver) noexcept {
  receiver.abandon();
}

}  // namespace trellis
