// trellis/actor/context.h — contexts: a remote task with a started value, a result and a
// bidirectional message stream (tractor's Portal.open_context / Context / MsgStream).
//
//   // callee, in the child:
//   int counter(trellis::actor::Context& ctx, int from) {
//     ctx.started(from);
//     trellis::actor::MsgStream stream = ctx.open_stream();
//     for (;;) stream.send(stream.receive<int>() + 1);   // until EndOfChannel
//   }
//   TRELLIS_ACTOR_FUNCTION("counter", counter);
//
//   // caller:
//   trellis::actor::ContextHandle ctx = portal.open_context("counter", 10);
//   int first = ctx->first<int>();
//   trellis::actor::MsgStream stream = ctx->open_stream();
//   stream.send(1);  int two = stream.receive<int>();
//   stream.close();
//   for (int n : stream.messages<int>()) use(n);    // until the callee closes: range-for
//   for (auto message : stream) use(message.as<int>());   // the same, untyped
//
// Flow control: a side has at most 64 stream messages in flight that the other side has not
// consumed. Sending more waits while the other side has opened its stream (backpressure);
// if it has not opened it within 2 s (run time: virtual in a World), send() raises
// StreamOverrun instead of waiting forever.
// Cancellation: a caller cancelled while waiting (first, receive, send, result) cancels the
// remote task; so does Context::cancel() and destroying a ContextHandle whose remote task
// still runs. A remote failure surfaces on the caller's side as RemoteActorError.
#pragma once

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "trellis/actor/errors.h"
#include "trellis/core/errors.h"
#include "trellis/to_process/codec.h"

namespace trellis::actor {

namespace internal {
struct ContextState;
struct BroadcastState;
}  // namespace internal

// One stream message as it arrived (msgpack), read as a T with as<T>(): what range-for over
// a MsgStream gives (`for (auto message : stream)`), and receive<Message>().
class Message {
 public:
  explicit Message(std::vector<char> packed) : packed_(std::move(packed)) {}
  // Throws msgpack::type_error if the message is not a T.
  template <class T>
  T as() const {
    msgpack::object_handle handle = to_process::internal::unpack_payload(packed_);
    return to_process::internal::convert<T>(handle.get());
  }
  const std::vector<char>& packed() const noexcept { return packed_; }

 private:
  std::vector<char> packed_;
};

namespace internal {
// Range-for over a receiver (MsgStream, BroadcastReceiver): each step calls
// source->receive<T>(); EndOfChannel (the other side closed its stream, or its function
// returned) ends the loop cleanly; every other error (RemoteActorError, BrokenActorError,
// StreamOverrun, Lagged, Cancelled, msgpack::type_error) is raised from the loop. begin()
// receives the first message. An input iterator: one pass.
template <class T, class Source>
class ReceiveIterator {
 public:
  using iterator_category = std::input_iterator_tag;
  using value_type = T;
  using difference_type = std::ptrdiff_t;

  explicit ReceiveIterator(Source& source) : source_(&source) { fetch(); }
  T& operator*() const { return *value_; }
  T* operator->() const { return &*value_; }
  ReceiveIterator& operator++() {
    fetch();
    return *this;
  }
  void operator++(int) { fetch(); }
  friend bool operator==(const ReceiveIterator& it, std::default_sentinel_t) noexcept {
    return !it.value_.has_value();
  }

 private:
  void fetch() {
    value_.reset();
    try {
      value_.emplace(source_->template receive<T>());
    } catch (const EndOfChannel&) {
      // The end: value_ stays empty.
    }
  }
  Source* source_;
  mutable std::optional<T> value_;  // empty: at the end
};

// What messages<T>() returns: a range of T over a receiver.
template <class T, class Source>
class ReceiveRange {
 public:
  explicit ReceiveRange(Source& source) : source_(&source) {}
  ReceiveIterator<T, Source> begin() { return ReceiveIterator<T, Source>(*source_); }
  std::default_sentinel_t end() const noexcept { return {}; }

 private:
  Source* source_;
};
}  // namespace internal

// One of several readers of a stream (MsgStream::subscribe): each gets every message that
// arrives after it subscribed, as tokio's broadcast channel. One that falls more than the
// buffer behind gets Lagged once, then continues with the oldest message kept.
class BroadcastReceiver {
 public:
  BroadcastReceiver(std::shared_ptr<internal::ContextState> context,
                    std::shared_ptr<internal::BroadcastState> broadcast, std::uint64_t next)
      : context_(std::move(context)), broadcast_(std::move(broadcast)), next_(next) {}
  // Throws Lagged, and what MsgStream::receive throws (EndOfChannel at the end, to every
  // subscriber once it has had every message).
  template <class T>
  T receive() {
    std::vector<char> value = receive_packed();
    if constexpr (std::is_same_v<T, Message>) {
      return Message(std::move(value));
    } else {
      msgpack::object_handle handle = to_process::internal::unpack_payload(value);
      return to_process::internal::convert<T>(handle.get());
    }
  }
  std::vector<char> receive_packed();
  // Range-for: `for (auto message : receiver)` (Message) or `for (T value :
  // receiver.messages<T>())`, until the stream's end; errors (Lagged included) are raised.
  internal::ReceiveIterator<Message, BroadcastReceiver> begin() {
    return internal::ReceiveIterator<Message, BroadcastReceiver>(*this);
  }
  std::default_sentinel_t end() const noexcept { return {}; }
  template <class T>
  internal::ReceiveRange<T, BroadcastReceiver> messages() {
    return internal::ReceiveRange<T, BroadcastReceiver>(*this);
  }

 private:
  std::shared_ptr<internal::ContextState> context_;
  std::shared_ptr<internal::BroadcastState> broadcast_;
  std::uint64_t next_;  // sequence number of the next message this receiver gets
};

class MsgStream {
 public:
  explicit MsgStream(std::shared_ptr<internal::ContextState> state) : state_(std::move(state)) {}
  template <class T>
  void send(const T& message) {
    send_packed(to_process::internal::pack_value(message));
  }
  // Throws EndOfChannel when the other side closed its stream (or its function returned),
  // RemoteActorError / BrokenActorError / StreamOverrun if the context failed.
  template <class T>
  T receive() {
    std::vector<char> value = receive_packed();
    if constexpr (std::is_same_v<T, Message>) {
      return Message(std::move(value));
    } else {
      msgpack::object_handle handle = to_process::internal::unpack_payload(value);
      return to_process::internal::convert<T>(handle.get());
    }
  }
  // Range-for until the other side closes its stream (or its function returns):
  //   for (auto message : stream) use(message.as<int>());
  //   for (int value : stream.messages<int>()) use(value);
  // The loop ends cleanly at EndOfChannel; any other error of receive (RemoteActorError,
  // BrokenActorError, StreamOverrun, msgpack::type_error for a message that is not a T,
  // Cancelled) is raised from the loop. Each step is a checkpoint.
  internal::ReceiveIterator<Message, MsgStream> begin() {
    return internal::ReceiveIterator<Message, MsgStream>(*this);
  }
  std::default_sentinel_t end() const noexcept { return {}; }
  template <class T>
  internal::ReceiveRange<T, MsgStream> messages() {
    return internal::ReceiveRange<T, MsgStream>(*this);
  }
  // Tells the other side that no more messages come (its receive raises EndOfChannel).
  void close();
  // A broadcast receiver of this stream's incoming messages, keeping at most `buffer`
  // messages for the slowest subscriber (the first subscribe fixes the size). Once a stream
  // has subscribers, read it through them only.
  BroadcastReceiver subscribe(std::size_t buffer = 64);
  void send_packed(std::vector<char> message);
  std::vector<char> receive_packed();

 private:
  std::shared_ptr<internal::ContextState> state_;
};

class Context {
 public:
  explicit Context(std::shared_ptr<internal::ContextState> state) : state_(std::move(state)) {}
  // Callee side: the value the caller's first() returns. Once.
  template <class T>
  void started(const T& value) {
    started_packed(to_process::internal::pack_value(value));
  }
  // Caller side: waits for the callee's started value.
  template <class T>
  T first() {
    std::vector<char> value = first_packed();
    msgpack::object_handle handle = to_process::internal::unpack_payload(value);
    return to_process::internal::convert<T>(handle.get());
  }
  MsgStream open_stream();
  // Caller side: cancels the remote task (its result() then raises ContextCancelled unless
  // it had returned already). Callee side: nothing to do (a callee ends by returning).
  void cancel();

  void started_packed(std::vector<char> value);
  std::vector<char> first_packed();
  std::vector<char> result_packed();
  internal::ContextState& state() noexcept { return *state_; }
  bool valid() const noexcept { return state_ != nullptr; }

 private:
  std::shared_ptr<internal::ContextState> state_;
};

// The caller's side of a context; destroying it cancels a remote task still running.
class ContextHandle {
 public:
  explicit ContextHandle(std::shared_ptr<internal::ContextState> state);
  ContextHandle(ContextHandle&&) noexcept = default;
  ContextHandle& operator=(ContextHandle&&) noexcept = default;
  ~ContextHandle();
  Context& context() noexcept { return context_; }
  Context* operator->() noexcept { return &context_; }
  Context& operator*() noexcept { return context_; }
  // Waits for the callee's function to return and returns its result.
  template <class R>
  R result() {
    std::vector<char> value = context_.result_packed();
    if constexpr (!std::is_void_v<R>) {
      msgpack::object_handle handle = to_process::internal::unpack_payload(value);
      return to_process::internal::convert<R>(handle.get());
    }
  }

 private:
  Context context_;
};

}  // namespace trellis::actor
