// trellis/scenarios/chat/chat_checker.h — the chat scenario's invariant, checked as messages
// arrive: every message a client receives is one some client sent (same sender, seq and
// text: nothing corrupted or invented), and each receiver sees each sender's messages in
// increasing seq order (nothing duplicated or reordered). Harness code, shared by the
// simulation and the real-mode test; single-threaded (one run).
//
//   ChatChecker checker;
//   checker.sent("alice", "hi");                         // before client.send("hi")
//   checker.received("bob", message);                    // from bob's message handler
//   if (checker.violation()) fail(*checker.violation());
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "trellis/scenarios/chat/chat_protocol.h"

namespace trellis::scenarios::chat {

class ChatChecker {
 public:
  // sender queued text: it is sender's next seq (1, 2, ...).
  void sent(const std::string& sender, std::string text);
  // receiver's handler got message.
  void received(const std::string& receiver, const ChatMessage& message);
  // receiver got a line that is not a message: always a violation (the server relays only
  // valid lines).
  void malformed(const std::string& receiver, std::string_view line);

  // The first violation seen, if any.
  const std::optional<std::string>& violation() const noexcept { return violation_; }
  std::uint64_t messages_received() const noexcept { return received_; }
  // How many messages of sender receiver has seen (its last seq from that sender).
  std::uint64_t last_seq(const std::string& receiver, const std::string& sender) const;

 private:
  void fail(std::string what);

  std::map<std::string, std::vector<std::string>> sent_;  // sender -> texts by seq - 1
  // receiver -> sender -> the last seq received. Invariant: only grows.
  std::map<std::string, std::map<std::string, std::uint64_t>> last_seq_;
  std::uint64_t received_ = 0;
  std::optional<std::string> violation_;
};

}  // namespace trellis::scenarios::chat
