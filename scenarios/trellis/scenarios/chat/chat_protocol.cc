#include "trellis/scenarios/chat/chat_protocol.h"

#include <charconv>
#include <stdexcept>

#include "trellis/scenarios/kv/kv_protocol.h"

namespace trellis::scenarios::chat {
namespace {

bool sender_ok(std::string_view sender) {
  if (sender.empty() || sender.size() > kSenderBytesMax) return false;
  for (const char c : sender) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

bool text_ok(std::string_view text) {
  if (text.size() > kTextBytesMax) return false;
  for (const char c : text) {
    if (c < ' ' || c > '~') return false;
  }
  return true;
}

}  // namespace

void check_sender(std::string_view sender) {
  if (!sender_ok(sender)) {
    throw std::invalid_argument("chat: a sender is 1.." + std::to_string(kSenderBytesMax) +
                                " bytes of [A-Za-z0-9._-], got '" +
                                std::string(sender.substr(0, 40)) + "'");
  }
}

void check_text(std::string_view text) {
  if (!text_ok(text)) {
    throw std::invalid_argument("chat: a text is 0.." + std::to_string(kTextBytesMax) +
                                " printable ASCII bytes");
  }
}

std::string encode_message(const ChatMessage& message) {
  check_sender(message.sender);
  check_text(message.text);
  if (message.seq == 0) throw std::invalid_argument("chat: seq must be >= 1");
  return "M " + message.sender + " " + std::to_string(message.seq) + " " + message.text;
}

ChatMessage parse_message(std::string_view line) {
  const auto bad = [&](const char* why) {
    return kv::ProtocolError(std::string("chat: ") + why + ": '" + std::string(line.substr(0, 80)) +
                             "'");
  };
  if (line.size() < 2 || line.substr(0, 2) != "M ") throw bad("not a message");
  std::string_view rest = line.substr(2);
  const std::size_t space1 = rest.find(' ');
  if (space1 == std::string_view::npos) throw bad("no seq");
  ChatMessage message;
  message.sender = std::string(rest.substr(0, space1));
  if (!sender_ok(message.sender)) throw bad("bad sender");
  rest = rest.substr(space1 + 1);
  const std::size_t space2 = rest.find(' ');
  if (space2 == std::string_view::npos) throw bad("no text");
  const std::string_view seq = rest.substr(0, space2);
  const auto [end, error] = std::from_chars(seq.data(), seq.data() + seq.size(), message.seq);
  if (seq.empty() || error != std::errc{} || end != seq.data() + seq.size() || message.seq == 0) {
    throw bad("bad seq");
  }
  message.text = std::string(rest.substr(space2 + 1));
  if (!text_ok(message.text)) throw bad("bad text");
  return message;
}

}  // namespace trellis::scenarios::chat
