// trellis/actor/context.cc — see context.h and internal/context_state.h.

#include <algorithm>

#include "trellis/actor/context.h"
#include "trellis/actor/internal/context_state.h"
#include "trellis/actor/protocol.h"
#include "trellis/core/cancel_scope.h"
#include "trellis/core/errors.h"

namespace trellis::actor {
namespace internal {

void ContextState::notify() {
  std::shared_ptr<Event> old = std::move(changed_);
  changed_ = std::make_shared<Event>();
  old->set();
}

void ContextState::wait_change(bool cancel_remote) {
  std::shared_ptr<Event> event = changed_;  // kept alive while waiting
  try {
    event->wait();
  } catch (const Cancelled&) {
    if (!cancel_remote) throw;
    // Transitive cancellation: a caller cancelled while waiting cancels the remote task.
    if (caller_side && !done && !cancel_requested && !error) {
      cancel_requested = true;
      try {
        send_frame(protocol::encode_cancel_call(id));
      } catch (const std::exception&) {  // the channel is gone: nothing to cancel
      }
    }
    throw;
  }
}

void ContextState::fail(std::exception_ptr failure) {
  if (!error) error = std::move(failure);
  notify();
}

void ContextState::send_frame(std::span<const char> frame) {
  try {
    channel->send(frame);
  } catch (const BrokenResourceError& e) {
    throw BrokenActorError("the connection to actor '" + peer_name + "' is lost: " + e.what());
  } catch (const ClosedResourceError&) {
    throw BrokenActorError("the connection to actor '" + peer_name + "' is closed");
  }
}

bool ContextState::on_message(std::uint8_t kind, std::span<const char> payload) {
  switch (static_cast<protocol::Kind>(kind)) {
    case protocol::Kind::kStarted:
      if (!caller_side || has_started) throw to_process::FrameError("unexpected 'started'");
      started_value = protocol::parse_return(payload).value;
      has_started = true;
      break;
    case protocol::Kind::kStreamOpened:
      (void)protocol::parse_cancel_call(payload);
      peer_opened = true;
      break;
    case protocol::Kind::kYield:
      if (inbox.size() >= kWindow) {
        fail(std::make_exception_ptr(
            StreamOverrun("actor '" + peer_name + "' sent more than " + std::to_string(kWindow) +
                          " stream messages without an acknowledgement (a broken flow control)")));
        return true;
      }
      inbox.push_back(protocol::parse_return(payload).value);
      break;
    case protocol::Kind::kAck:
      in_flight -= std::min<std::size_t>(in_flight, protocol::parse_ack(payload).second);
      break;
    case protocol::Kind::kStop:
      (void)protocol::parse_cancel_call(payload);
      peer_stopped = true;
      break;
    default:
      return false;
  }
  notify();
  return true;
}

void BroadcastState::notify() {
  std::shared_ptr<Event> old = std::move(changed);
  changed = std::make_shared<Event>();
  old->set();
}

void BroadcastState::wait_change() {
  std::shared_ptr<Event> event = changed;
  event->wait();
}

}  // namespace internal

using internal::BroadcastState;
using internal::ContextState;

BroadcastReceiver MsgStream::subscribe(std::size_t buffer) {
  if (!state_->broadcast) state_->broadcast = std::make_shared<BroadcastState>(buffer);
  BroadcastState& b = *state_->broadcast;
  return BroadcastReceiver(state_, state_->broadcast, b.base + b.ring.size());
}

std::vector<char> BroadcastReceiver::receive_packed() {
  BroadcastState& b = *broadcast_;
  for (;;) {
    if (next_ < b.base) {
      const std::uint64_t skipped = b.base - next_;
      next_ = b.base;
      throw Lagged(skipped);
    }
    if (next_ < b.base + b.ring.size()) return b.ring[static_cast<std::size_t>(next_++ - b.base)];
    if (b.ended) std::rethrow_exception(b.ended);
    if (b.pulling) {
      b.wait_change();
      continue;
    }
    // This receiver reads the stream for every subscriber.
    b.pulling = true;
    std::vector<char> message;
    try {
      message = MsgStream(context_).receive_packed();
    } catch (const Cancelled&) {
      b.pulling = false;
      b.notify();  // another receiver takes over
      throw;
    } catch (...) {
      b.ended = std::current_exception();
    }
    b.pulling = false;
    if (!b.ended) {
      b.ring.push_back(std::move(message));
      if (b.ring.size() > b.capacity) {
        b.ring.pop_front();
        ++b.base;
      }
    }
    b.notify();
  }
}

void MsgStream::send_packed(std::vector<char> message) {
  ContextState& s = *state_;
  if (s.local_stopped) throw ClosedResourceError("this stream was closed");
  for (;;) {
    if (s.error) std::rethrow_exception(s.error);
    if (s.done) {
      throw EndOfChannel("the context with actor '" + s.peer_name + "' is over");
    }
    if (s.in_flight < ContextState::kWindow) break;
    if (!s.peer_opened) {
      move_on_after(ContextState::kOverrunGrace, [&] {
        while (!s.peer_opened && !s.error && !s.done) s.wait_change(false);
      });
      if (s.peer_opened || s.error || s.done) continue;
      throw StreamOverrun(
          "actor '" + s.peer_name + "' has not opened its stream and its buffer of " +
          std::to_string(ContextState::kWindow) + " messages is full (it did not open it within " +
          std::to_string(
              std::chrono::duration_cast<std::chrono::milliseconds>(ContextState::kOverrunGrace)
                  .count()) +
          " ms)");
    }
    s.wait_change();
  }
  ++s.in_flight;
  s.send_frame(protocol::encode_id_value(protocol::Kind::kYield, s.id, message));
}

std::vector<char> MsgStream::receive_packed() {
  ContextState& s = *state_;
  for (;;) {
    if (!s.inbox.empty()) {
      std::vector<char> message = std::move(s.inbox.front());
      s.inbox.pop_front();
      if (++s.consumed_unacked >= ContextState::kWindow / 2) {
        const std::size_t count = s.consumed_unacked;
        s.consumed_unacked = 0;
        s.send_frame(protocol::encode_ack(s.id, count));
      }
      return message;
    }
    if (s.error) std::rethrow_exception(s.error);
    if (s.peer_stopped || s.done) {
      throw EndOfChannel("actor '" + s.peer_name + "' closed its side of the stream");
    }
    s.wait_change();
  }
}

void MsgStream::close() {
  ContextState& s = *state_;
  if (s.local_stopped) return;
  s.local_stopped = true;
  if (s.done || s.error) return;
  s.send_frame(protocol::encode_id(protocol::Kind::kStop, s.id));
}

MsgStream Context::open_stream() {
  ContextState& s = *state_;
  if (s.local_opened) throw UsageError("Context::open_stream: the stream is open already");
  s.local_opened = true;
  if (!s.done && !s.error) s.send_frame(protocol::encode_id(protocol::Kind::kStreamOpened, s.id));
  return MsgStream(state_);
}

void Context::cancel() {
  ContextState& s = *state_;
  if (!s.caller_side || s.done || s.cancel_requested || s.error) return;
  s.cancel_requested = true;
  s.send_frame(protocol::encode_cancel_call(s.id));
}

void Context::started_packed(std::vector<char> value) {
  ContextState& s = *state_;
  if (s.caller_side) throw UsageError("Context::started: only the callee side starts");
  if (s.has_started) throw UsageError("Context::started: called twice");
  s.has_started = true;
  s.send_frame(protocol::encode_id_value(protocol::Kind::kStarted, s.id, value));
}

std::vector<char> Context::first_packed() {
  ContextState& s = *state_;
  if (!s.caller_side) throw UsageError("Context::first: only the caller side has a first value");
  for (;;) {
    if (s.has_started) return s.started_value;
    if (s.error) std::rethrow_exception(s.error);
    if (s.done) {
      throw EndOfChannel("actor '" + s.peer_name +
                         "': the context function returned without calling started()");
    }
    s.wait_change();
  }
}

std::vector<char> Context::result_packed() {
  ContextState& s = *state_;
  if (!s.caller_side) throw UsageError("Context::result: only the caller side has a result");
  while (!s.done && !s.error) s.wait_change();
  if (s.error) std::rethrow_exception(s.error);
  return s.result;
}

ContextHandle::ContextHandle(std::shared_ptr<internal::ContextState> state)
    : context_(std::move(state)) {}

ContextHandle::~ContextHandle() {
  if (!context_.valid()) return;  // moved from
  try {
    context_.cancel();  // a remote task still running is cancelled (tractor's exit)
  } catch (...) {       // the channel is gone: so is the remote task
  }
}

}  // namespace trellis::actor
