// trellis/signal/signal_receiver.cc — SignalReceiver (the run's hub of real signals is
// core/internal/signal_hub.cc).

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
#include "trellis/core/lowlevel.h"
#include "trellis/core/os_error.h"
#include "trellis/core/run.h"
#include "trellis/core/signal_facet.h"

namespace trellis {

SignalReceiver::SignalReceiver(std::initializer_list<int> signals) {
  lowlevel::current_task();  // a task of a run, or UsageError
  if (signals.size() == 0) throw std::invalid_argument("open_signal_receiver: no signals given");
  for (int signo : signals) {
    check_signal_catchable(signo);
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
