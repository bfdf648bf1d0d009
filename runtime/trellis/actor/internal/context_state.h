// trellis/actor/internal/context_state.h — one context, as either side sees it (context.h).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "trellis/actor/internal/channel.h"
#include "trellis/core/time.h"
#include "trellis/sync/event.h"

namespace trellis::actor::internal {

// The messages kept for a stream's broadcast receivers (context.h).
struct BroadcastState {
  explicit BroadcastState(std::size_t buffer) : capacity(buffer == 0 ? 1 : buffer) {}
  void notify();
  void wait_change();

  std::size_t capacity;
  std::deque<std::vector<char>> ring;
  std::uint64_t base = 0;    // sequence number of ring.front()
  bool pulling = false;      // a receiver is reading the stream for everyone
  std::exception_ptr ended;  // how the stream ended, for every receiver
  std::shared_ptr<Event> changed = std::make_shared<Event>();
};

struct ContextState {
  // Flow control: a side sends at most kWindow stream messages the other side has not
  // consumed; the consumer acknowledges every kWindow / 2.
  static constexpr std::size_t kWindow = 64;
  // How long a sender whose window is full waits for the other side to open its stream
  // before it raises StreamOverrun (it may be about to: opening races the first messages).
  static constexpr Duration kOverrunGrace = std::chrono::seconds(2);

  ContextState(std::uint64_t context_id, Channel& connection, bool caller, std::string peer)
      : id(context_id), channel(&connection), caller_side(caller), peer_name(std::move(peer)) {}

  // Wakes every task waiting for a change (a message, an ack, the end, an error).
  void notify();
  // Waits for the next notify(). A checkpoint. A caller cancelled while waiting cancels the
  // remote task unless `cancel_remote` is false.
  void wait_change(bool cancel_remote = true);
  // The context ended with `failure` (remote error, broken channel, overrun).
  void fail(std::exception_ptr failure);
  // Handles a stream-level message for this context; false if the kind is not one.
  bool on_message(std::uint8_t kind, std::span<const char> payload);
  void send_frame(std::span<const char> frame);

  std::uint64_t id;
  Channel* channel;
  bool caller_side;
  std::string peer_name;  // the other actor, for messages

  bool has_started = false;
  std::vector<char> started_value;

  std::deque<std::vector<char>> inbox;
  bool local_opened = false;
  bool peer_stopped = false;
  std::size_t consumed_unacked = 0;

  bool peer_opened = false;
  bool local_stopped = false;
  std::size_t in_flight = 0;

  std::shared_ptr<BroadcastState> broadcast;  // once subscribed

  bool done = false;  // the callee's function returned (or failed)
  bool cancel_requested = false;
  std::vector<char> result;
  std::exception_ptr error;

 private:
  std::shared_ptr<Event> changed_ = std::make_shared<Event>();
};

}  // namespace trellis::actor::internal
