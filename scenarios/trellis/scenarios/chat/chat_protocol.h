// trellis/scenarios/chat/chat_protocol.h — the wire format of the chat server: one message per
// line, the same in both directions. Production code.
//
//   M <sender> <seq> <text>
//
// A client names itself (sender: 1..kSenderBytesMax bytes of [A-Za-z0-9._-]) and numbers its
// messages 1, 2, 3... (seq); text is 0..kTextBytesMax printable ASCII bytes (spaces allowed,
// no newline). The server relays each message it accepts, unchanged, to every connected
// client, the sender included (the sender's copy is its echo). Lines are read with
// kv::LineReader and written with kv::send_line (kv_protocol.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace trellis::scenarios::chat {

inline constexpr std::size_t kSenderBytesMax = 32;
inline constexpr std::size_t kTextBytesMax = 200;

struct ChatMessage {
  std::string sender;
  std::uint64_t seq = 0;  // >= 1
  std::string text;
  bool operator==(const ChatMessage&) const = default;
};

// Throw std::invalid_argument naming the problem.
void check_sender(std::string_view sender);
void check_text(std::string_view text);

// "M <sender> <seq> <text>" (no newline). Throws std::invalid_argument for a bad sender,
// seq 0 or a bad text.
std::string encode_message(const ChatMessage& message);
// Parses a line; throws kv::ProtocolError for anything that is not a valid message.
ChatMessage parse_message(std::string_view line);

}  // namespace trellis::scenarios::chat
