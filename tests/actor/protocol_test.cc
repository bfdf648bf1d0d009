// The actors' message protocol: round trips, and every malformed input is a FrameError naming
// the problem (never a crash or a wrong value); a child actor answers a malformed message
// from its parent with an error and keeps serving.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "trellis/actor.h"
#include "trellis/core/run.h"
#include "trellis/io/tcp.h"
#include "trellis/process/process.h"
#include "trellis/to_process/codec.h"

namespace trellis::actor {
namespace {

using to_process::FrameError;
using to_process::RawFrame;

RawFrame decode_one(const std::vector<char>& bytes) {
  std::optional<to_process::DecodedRawFrame> decoded =
      to_process::decode_raw_frame(protocol::kActorFrameFormat, bytes);
  EXPECT_TRUE(decoded.has_value());
  EXPECT_EQ(decoded->consumed, bytes.size());
  return decoded->frame;
}

// The parent's end of a connection, raw: frames out, frames in.
class RawChannel {
 public:
  explicit RawChannel(std::unique_ptr<SocketStream> stream) : stream_(std::move(stream)) {}
  void send(const std::vector<char>& frame) { stream_->send_all(std::as_bytes(std::span(frame))); }
  std::optional<RawFrame> receive() {
    for (;;) {
      if (std::optional<RawFrame> frame = reader_.next()) return frame;
      const std::size_t got = stream_->receive_some(buffer_);
      if (got == 0) return std::nullopt;
      reader_.feed(std::span<const char>(reinterpret_cast<const char*>(buffer_.data()), got));
    }
  }
  void close() { stream_->close(); }

 private:
  std::unique_ptr<SocketStream> stream_;
  to_process::RawFrameReader reader_{protocol::kActorFrameFormat};
  std::vector<std::byte> buffer_ = std::vector<std::byte>(65536);
};

template <class F>
std::string error_of(F parse) {
  try {
    parse();
  } catch (const FrameError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(ActorProtocolTest, MessagesRoundTrip) {
  RawFrame hello = decode_one(protocol::encode_hello({"worker", "1-2", 4321}));
  EXPECT_EQ(hello.kind, static_cast<std::uint8_t>(protocol::Kind::kHello));
  protocol::Hello h = protocol::parse_hello(hello.payload);
  EXPECT_EQ(h.name, "worker");
  EXPECT_EQ(h.uid, "1-2");
  EXPECT_EQ(h.pid, 4321);

  const std::vector<char> arguments = to_process::internal::pack_arguments(1, std::string("x"));
  protocol::Call call =
      protocol::parse_call(decode_one(protocol::encode_call(7, "f", arguments)).payload);
  EXPECT_EQ(call.id, 7u);
  EXPECT_EQ(call.function, "f");
  EXPECT_EQ(call.arguments, arguments);

  const std::vector<char> value = to_process::internal::pack_value(42);
  protocol::Return ret =
      protocol::parse_return(decode_one(protocol::encode_return(8, value)).payload);
  EXPECT_EQ(ret.id, 8u);
  EXPECT_EQ(ret.value, value);

  protocol::Error error = protocol::parse_error(
      decode_one(protocol::encode_error(
                     {9, "std::logic_error", "m", "gc", {"c", "p"}, {{"gc", "f"}, {"c", "g"}}}))
          .payload);
  EXPECT_EQ(error.id, 9u);
  EXPECT_EQ(error.type_name, "std::logic_error");
  EXPECT_EQ(error.message, "m");
  EXPECT_EQ(error.source_actor, "gc");
  EXPECT_EQ(error.relayed_through, (std::vector<std::string>{"c", "p"}));
  EXPECT_EQ(error.task_tree, (std::vector<protocol::TaskFrame>{{"gc", "f"}, {"c", "g"}}));
  // A 5-element error (without the task tree) is read too.
  const std::vector<char> short_error = to_process::internal::pack_arguments(
      4u, std::string("t"), std::string("m"), std::string("a"), std::vector<std::string>{"r"});
  protocol::Error old = protocol::parse_error(short_error);
  EXPECT_EQ(old.source_actor, "a");
  EXPECT_TRUE(old.task_tree.empty());

  EXPECT_EQ(protocol::parse_cancel_call(decode_one(protocol::encode_cancel_call(10)).payload), 10u);
  protocol::parse_cancel_actor(decode_one(protocol::encode_cancel_actor()).payload);

  RawFrame open = decode_one(protocol::encode_open_context(11, "g", arguments));
  EXPECT_EQ(open.kind, static_cast<std::uint8_t>(protocol::Kind::kOpenContext));
  EXPECT_EQ(protocol::parse_call(open.payload).function, "g");
  RawFrame yield = decode_one(protocol::encode_id_value(protocol::Kind::kYield, 12, value));
  EXPECT_EQ(yield.kind, static_cast<std::uint8_t>(protocol::Kind::kYield));
  EXPECT_EQ(protocol::parse_return(yield.payload).value, value);
  RawFrame stop = decode_one(protocol::encode_id(protocol::Kind::kStop, 13));
  EXPECT_EQ(stop.kind, static_cast<std::uint8_t>(protocol::Kind::kStop));
  EXPECT_EQ(protocol::parse_cancel_call(stop.payload), 13u);
  const auto [id, count] = protocol::parse_ack(decode_one(protocol::encode_ack(14, 32)).payload);
  EXPECT_EQ(id, 14u);
  EXPECT_EQ(count, 32u);
  EXPECT_NE(error_of([] {
              protocol::parse_ack(to_process::internal::pack_arguments(1u, -3));
            }).find("count"),
            std::string::npos);
}

TEST(ActorProtocolTest, MalformedFramesAndPayloadsAreFrameErrors) {
  std::vector<char> frame = protocol::encode_cancel_call(3);
  // A to_process frame is not an actor frame, and the reverse.
  EXPECT_NE(error_of([] {
              (void)to_process::decode_raw_frame(
                  protocol::kActorFrameFormat,
                  to_process::encode_frame(to_process::FrameKind::kReady, 0, {}));
            }).find("bad frame magic"),
            std::string::npos);
  EXPECT_NE(error_of([&] { (void)to_process::decode_frame(frame); }).find("bad frame magic"),
            std::string::npos);
  std::vector<char> corrupt = frame;
  corrupt[to_process::kFrameHeaderSize] ^= 1;
  EXPECT_NE(error_of([&] {
              (void)to_process::decode_raw_frame(protocol::kActorFrameFormat, corrupt);
            }).find("checksum"),
            std::string::npos);
  std::vector<char> version = frame;
  version[4] = 2;
  EXPECT_NE(error_of([&] {
              (void)to_process::decode_raw_frame(protocol::kActorFrameFormat, version);
            }).find("unsupported protocol version 2"),
            std::string::npos);
  // A prefix is not an error: more bytes may come.
  for (std::size_t n = 0; n < frame.size(); ++n) {
    EXPECT_FALSE(to_process::decode_raw_frame(protocol::kActorFrameFormat,
                                              std::span<const char>(frame.data(), n)));
  }
  // Payloads of the wrong shape.
  const std::vector<char> not_array = to_process::internal::pack_value(5);
  EXPECT_NE(error_of([&] { protocol::parse_call(not_array); }).find("call payload"),
            std::string::npos);
  const std::vector<char> negative_id =
      to_process::internal::pack_arguments(-1, std::string("f"), std::vector<int>{});
  EXPECT_NE(error_of([&] { protocol::parse_call(negative_id); }).find("call id"),
            std::string::npos);
  const std::vector<char> bad_args = to_process::internal::pack_arguments(1u, std::string("f"), 3);
  EXPECT_NE(error_of([&] { protocol::parse_call(bad_args); }).find("arguments are not an array"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              protocol::parse_return(std::vector<char>{'\x92', '\x01'});
            }).find("truncated"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              protocol::parse_error(to_process::internal::pack_arguments(1u));
            }).find("error payload"),
            std::string::npos);
  // A task tree of the wrong shape.
  const std::vector<char> tree_not_array = to_process::internal::pack_arguments(
      4u, std::string("t"), std::string("m"), std::string("a"), std::vector<std::string>{}, 7);
  EXPECT_NE(error_of([&] { protocol::parse_error(tree_not_array); }).find("task tree"),
            std::string::npos);
  const std::vector<char> bad_frame = to_process::internal::pack_arguments(
      4u, std::string("t"), std::string("m"), std::string("a"), std::vector<std::string>{},
      std::vector<std::vector<int>>{{1, 2}});
  EXPECT_NE(error_of([&] { protocol::parse_error(bad_frame); }).find("task's actor"),
            std::string::npos);
  EXPECT_EQ(protocol::peek_call_id(bad_args), 1u);
  EXPECT_EQ(protocol::peek_call_id(not_array), std::nullopt);
}

// The test plays the parent of a real child actor and sends it bad messages.
TEST(ActorProtocolTest, ChildAnswersMalformedMessagesAndKeepsServing) {
  trellis::run([] {
    auto listeners = open_tcp_listeners(0, "127.0.0.1");
    const std::uint16_t port = listeners.front()->local_address().port();
    Process child = open_process({"/proc/self/exe", std::string(kActorFlag), "--name=probe",
                                  "--uid=u1", "--parent=127.0.0.1:" + std::to_string(port)});
    RawChannel channel(listeners.front()->accept());
    std::optional<RawFrame> hello = channel.receive();
    ASSERT_TRUE(hello);
    EXPECT_EQ(protocol::parse_hello(hello->payload).name, "probe");

    // A call whose arguments are not an array: an error answer for that call id.
    channel.send(to_process::encode_raw_frame(
        protocol::kActorFrameFormat, static_cast<std::uint8_t>(protocol::Kind::kCall), 0,
        to_process::internal::pack_arguments(5u, std::string("add"), 7)));
    std::optional<RawFrame> answer = channel.receive();
    ASSERT_TRUE(answer);
    ASSERT_EQ(answer->kind, static_cast<std::uint8_t>(protocol::Kind::kError));
    protocol::Error error = protocol::parse_error(answer->payload);
    EXPECT_EQ(error.id, 5u);
    EXPECT_EQ(error.type_name, "trellis::actor::ProtocolError");
    EXPECT_NE(error.message.find("arguments are not an array"), std::string::npos) << error.message;

    // A message a child never expects, and a cancel for an unknown call: ignored.
    channel.send(protocol::encode_return(1, to_process::internal::pack_value(1)));
    channel.send(protocol::encode_cancel_call(99));
    channel.send(protocol::encode_call(6, "add", to_process::internal::pack_arguments(2, 3)));
    answer = channel.receive();
    ASSERT_TRUE(answer);
    ASSERT_EQ(answer->kind, static_cast<std::uint8_t>(protocol::Kind::kReturn));
    protocol::Return ret = protocol::parse_return(answer->payload);
    EXPECT_EQ(ret.id, 6u);
    EXPECT_EQ(ret.value, to_process::internal::pack_value(5));

    channel.send(protocol::encode_cancel_actor());
    EXPECT_FALSE(channel.receive().has_value());  // it closes its end and exits
    EXPECT_EQ(child.wait(), 0);
  });
}

TEST(ActorProtocolTest, ChildExitsWhenItsParentHangsUp) {
  trellis::run([] {
    auto listeners = open_tcp_listeners(0, "127.0.0.1");
    const std::uint16_t port = listeners.front()->local_address().port();
    Process child = open_process({"/proc/self/exe", std::string(kActorFlag), "--name=orphan",
                                  "--uid=u2", "--parent=127.0.0.1:" + std::to_string(port)});
    RawChannel channel(listeners.front()->accept());
    ASSERT_TRUE(channel.receive());
    channel.send(protocol::encode_call(1, "sleep_forever", to_process::internal::pack_arguments()));
    channel.close();  // the parent vanishes: the child cancels its call and exits
    EXPECT_EQ(child.wait(), 0);
  });
}

}  // namespace
}  // namespace trellis::actor
