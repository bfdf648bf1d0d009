#include "trellis/sim/internal/sim_signals.h"

#include <signal.h>

#include <algorithm>
#include <utility>

#include "trellis/base/assert.h"
#include "trellis/core/errors.h"
#include "trellis/sim/trace.h"

namespace trellis::sim::internal {
namespace {

// A trace event's detail: which host, which signal.
std::uint64_t detail(const HostState& host, int signo) {
  return Trace::detail_pair(host.index, static_cast<std::uint64_t>(signo));
}

bool ignored_by_default(int signo) {
  switch (signo) {
    case SIGCHLD:
    case SIGURG:
    case SIGWINCH:
    case SIGCONT:
      return true;
    default:
      return false;
  }
}

bool stops_by_default(int signo) {
  return signo == SIGSTOP || signo == SIGTSTP || signo == SIGTTIN || signo == SIGTTOU;
}

}  // namespace

SimSignals::SimSignals(Hooks hooks, Trace* trace) : hooks_(std::move(hooks)), trace_(trace) {
  TRELLIS_ASSERT(hooks_.current_host != nullptr);
  TRELLIS_ASSERT(hooks_.terminate != nullptr);
}

void SimSignals::add_receiver(int signo, SignalReceiver& receiver) {
  TRELLIS_ASSERT(signo > 0 && signo < kSignalLimit);
  HostState* host = hooks_.current_host();
  if (host == nullptr) {
    throw UsageError(
        "open_signal_receiver: in a simulation, signals are caught by a host's task "
        "(Host::start), not by the world's driver; send them with Host::send_signal");
  }
  std::vector<Entry>& stack = entries_[signo];
  TRELLIS_ASSERT_SLOW(std::none_of(stack.begin(), stack.end(),
                                   [&](const Entry& e) { return e.receiver == &receiver; }));
  // A task of a crashed incarnation still unwinding may open a block: it is recorded under
  // that incarnation and never gets a signal.
  const bool stale = hooks_.caller_is_stale && hooks_.caller_is_stale();
  stack.push_back(Entry{&receiver, host->index, stale ? host->incarnation - 1 : host->incarnation});
}

void SimSignals::remove_receiver(int signo, SignalReceiver& receiver) noexcept {
  TRELLIS_ASSERT(signo > 0 && signo < kSignalLimit);
  std::vector<Entry>& stack = entries_[signo];
  auto it = std::find_if(stack.rbegin(), stack.rend(),
                         [&](const Entry& e) { return e.receiver == &receiver; });
  TRELLIS_ASSERT(it != stack.rend());
  stack.erase(std::next(it).base());
}

void SimSignals::raise(int signo) noexcept {
  HostState* host = hooks_.current_host();
  TRELLIS_ASSERT(host != nullptr);  // add_receiver refused a block outside every host
  try {
    if (hooks_.caller_is_stale && hooks_.caller_is_stale()) {
      // Raised in a process that has died since: nobody gets it.
      if (trace_ != nullptr) trace_->record("signal dropped (stale raise)", detail(*host, signo));
      return;
    }
    if (trace_ != nullptr) trace_->record("signal raised again", detail(*host, signo));
    send(*host, signo);
  } catch (...) {
    // send() throws only if the trace cannot allocate; the signal is then lost.
    TRELLIS_ASSERT(false);
  }
}

void SimSignals::send(HostState& host, int signo) {
  TRELLIS_ASSERT(signo > 0 && signo < kSignalLimit);
  if (!host.alive) {
    if (trace_ != nullptr) trace_->record("signal dropped (host down)", detail(host, signo));
    return;
  }
  const std::vector<Entry>& stack = entries_[signo];
  for (auto it = stack.rbegin(); it != stack.rend(); ++it) {
    if (it->host == host.index && it->incarnation == host.incarnation) {
      if (trace_ != nullptr) trace_->record("signal delivered", detail(host, signo));
      deliver(*it->receiver, signo);
      return;
    }
  }
  default_action(host, signo);
}

void SimSignals::default_action(HostState& host, int signo) {
  if (ignored_by_default(signo)) {
    if (trace_ != nullptr) trace_->record("signal ignored", detail(host, signo));
    return;
  }
  if (stops_by_default(signo)) {
    if (trace_ != nullptr) trace_->record("signal ignored (stop)", detail(host, signo));
    return;
  }
  if (trace_ != nullptr) trace_->record("signal terminates host", detail(host, signo));
  hooks_.terminate(host);
  TRELLIS_ASSERT(!host.alive);
}

void SimSignals::host_crashed(const HostState& host) noexcept {
  // Each receiver once (a receiver listens for several signals), in the order opened.
  std::vector<SignalReceiver*> closing;
  for (std::vector<Entry>& stack : entries_) {
    for (const Entry& entry : stack) {
      if (entry.host == host.index &&
          std::find(closing.begin(), closing.end(), entry.receiver) == closing.end()) {
        closing.push_back(entry.receiver);
      }
    }
    std::erase_if(stack, [&](const Entry& e) { return e.host == host.index; });
  }
  if (!closing.empty() && trace_ != nullptr) {
    trace_->record("signal receivers closed by crash", detail(host, 0) + closing.size());
  }
  for (SignalReceiver* receiver : closing) abandon(*receiver);
}

std::size_t SimSignals::receivers_open(const HostState& host) const {
  std::vector<const SignalReceiver*> seen;
  for (const std::vector<Entry>& stack : entries_) {
    for (const Entry& entry : stack) {
      if (entry.host == host.index &&
          std::find(seen.begin(), seen.end(), entry.receiver) == seen.end()) {
        seen.push_back(entry.receiver);
      }
    }
  }
  return seen.size();
}

}  // namespace trellis::sim::internal
