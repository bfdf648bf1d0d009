#include "trellis/scenarios/chat/chat_checker.h"

#include <utility>

namespace trellis::scenarios::chat {

void ChatChecker::fail(std::string what) {
  if (!violation_) violation_ = std::move(what);
}

void ChatChecker::sent(const std::string& sender, std::string text) {
  sent_[sender].push_back(std::move(text));
}

void ChatChecker::received(const std::string& receiver, const ChatMessage& message) {
  ++received_;
  const std::string id = message.sender + " #" + std::to_string(message.seq);
  auto it = sent_.find(message.sender);
  if (it == sent_.end() || message.seq > it->second.size()) {
    fail(receiver + " received " + id + " ('" + message.text.substr(0, 60) +
         "'), which was never sent");
    return;
  }
  const std::string& text = it->second[message.seq - 1];
  if (message.text != text) {
    fail(receiver + " received " + id + " corrupted: '" + message.text.substr(0, 60) +
         "' instead of '" + text.substr(0, 60) + "'");
    return;
  }
  std::uint64_t& last = last_seq_[receiver][message.sender];
  if (message.seq <= last) {
    fail(receiver + " received " + id + (message.seq == last ? " twice" : " out of order") +
         " (after #" + std::to_string(last) + ")");
    return;
  }
  last = message.seq;
}

void ChatChecker::malformed(const std::string& receiver, std::string_view line) {
  fail(receiver + " received a malformed line: '" + std::string(line.substr(0, 80)) + "'");
}

std::uint64_t ChatChecker::last_seq(const std::string& receiver, const std::string& sender) const {
  auto r = last_seq_.find(receiver);
  if (r == last_seq_.end()) return 0;
  auto s = r->second.find(sender);
  return s == r->second.end() ? 0 : s->second;
}

}  // namespace trellis::scenarios::chat
