// trellis/scenarios/chat/chat_client.h — a chat client that stays connected: it sends the
// texts queued with send(), one at a time, each waiting for its echo, and hands every message
// the server relays to a handler. Production code: only the runtime API.
//
//   ChatClient client({.server = "10.0.0.1", .name = "alice"});
//   open_nursery([&](Nursery& n) {
//     n.start_soon([&] { client.run({.message = [](const ChatMessage& m) { show(m); }}); });
//     client.send("hello");               // seq 1
//   });
//
// Delivery is at most once: the k-th text queued goes out as seq k, on one connection only.
// When the connection breaks, a line arrives malformed, or a text's echo does not come back
// within echo_timeout, the client closes the connection and reconnects (after
// reconnect_backoff); a text whose connection broke may be lost, and it is never sent twice.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "trellis/channel/memory_channel.h"
#include "trellis/core/time.h"
#include "trellis/io/socket_stream.h"
#include "trellis/scenarios/chat/chat_protocol.h"
#include "trellis/sync/event.h"

namespace trellis {
class SslContext;  // trellis/tls/ssl_context.h (target trellis::tls)
}

namespace trellis::scenarios::chat {

class ChatClient {
 public:
  struct Options {
    std::string server;
    std::uint16_t port = 7100;
    std::string name;  // the sender name; unique among the server's clients
    Duration connect_timeout = std::chrono::milliseconds(300);
    Duration echo_timeout = std::chrono::milliseconds(300);
    Duration reconnect_backoff = std::chrono::milliseconds(20);
    std::size_t outbox_texts_max = 16;  // send() blocks while this many wait
    // Speak TLS with this client context (server_hostname: `server`); null: plain TCP.
    SslContext* tls = nullptr;
  };

  struct Handlers {
    // Every message received, in arrival order (the client's own echoes included).
    std::function<void(const ChatMessage&)> message;
    // A complete line that is not a valid message (the connection is then dropped). May be
    // empty. (A stream that ends mid-line is a broken connection, not a malformed line.)
    std::function<void(std::string_view line)> malformed;
  };

  struct Statistics {
    std::uint64_t connections = 0;
    std::uint64_t messages_sent = 0;
    std::uint64_t messages_received = 0;
    std::uint64_t echo_timeouts = 0;
    std::uint64_t malformed_lines = 0;
  };

  // Throws std::invalid_argument for an empty server or a bad name (chat_protocol.h).
  explicit ChatClient(Options options);
  ChatClient(const ChatClient&) = delete;
  ChatClient& operator=(const ChatClient&) = delete;

  // Queues text (the next seq). Blocks while outbox_texts_max texts wait; a checkpoint.
  // Throws std::invalid_argument for a bad text.
  void send(std::string text);
  // Connects and runs the session, reconnecting as needed, until cancelled. Blocks; a
  // checkpoint; throws only Cancelled (and what the handlers throw).
  [[noreturn]] void run(const Handlers& handlers);

  // The highest seq of this client's own messages that came back.
  std::uint64_t echoed_seq() const noexcept { return echoed_seq_; }
  // Texts queued so far (the seq of the last one).
  std::uint64_t queued() const noexcept { return queued_; }
  Statistics statistics() const noexcept { return statistics_; }

 private:
  // One connection: returns when it broke, a line was malformed or an echo timed out.
  void session(Stream& stream, const Handlers& handlers);
  void receive_loop(Stream& stream, const Handlers& handlers);
  // A connection to the server (TLS when options_.tls), or null if it could not be made.
  std::unique_ptr<Stream> connect();

  Options options_;
  // Texts queued by send(), not yet taken by the session.
  std::pair<MemorySendChannel<std::string>, MemoryReceiveChannel<std::string>> outbox_;
  std::uint64_t queued_ = 0;
  std::uint64_t sent_seq_ = 0;  // seq of the last text taken from the outbox
  std::uint64_t echoed_seq_ = 0;
  // Set when the echo of sent_seq_ arrives (a fresh one per text).
  std::unique_ptr<Event> echo_;
  Statistics statistics_;
};

}  // namespace trellis::scenarios::chat
