// trellis/scenarios/chat/chat_server.h — the Trio tutorial's echo server grown into a chat
// server: every message a client sends is relayed to every connected client, the sender
// included. Production code: only the runtime API (serve_tcp, memory channels, cancel scopes).
//
//   ChatServer server;
//   server.serve(7100);   // runs until cancelled
//
// Each connection has a reader (the handler task) and a writer task fed by a bounded outbox
// channel. A client whose outbox is full — it reads too slowly or its link is cut — is
// dropped (its connection closed) rather than slowing everyone down; it reconnects and misses
// what was relayed meanwhile. Per sender, the server relays only messages with a seq above
// the last one it relayed from that sender: a message that a partition held back on an old
// connection until after the sender reconnected is dropped, so every client sees each
// sender's messages in order and at most once. A connection speaks for one sender (the name
// of its first message; another name on it is a protocol error), and a sender's entry lives
// only while a connection speaks for it: the server's memory is bounded by its connections,
// however many names come and go.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "trellis/channel/memory_channel.h"
#include "trellis/core/cancel_scope.h"
#include "trellis/core/nursery.h"
#include "trellis/io/socket_stream.h"
#include "trellis/io/stream.h"

namespace trellis {
class SslContext;  // trellis/tls/ssl_context.h (target trellis::tls)
}

namespace trellis::scenarios::chat {

class ChatServer {
 public:
  struct Options {
    // Lines waiting to be written to one client; a client further behind is dropped.
    std::size_t outbox_lines_max = 32;
    // The planted bug of the chat scenario: a line is written with a single send() call
    // instead of send_all, so when the socket's buffer has room for only part of it the rest
    // is silently lost. Off by default.
    bool single_send_writes = false;
    // Serve TLS with this server context (serve_ssl_over_tcp) instead of plain TCP; null:
    // plain TCP. Not with single_send_writes (std::invalid_argument from serve).
    SslContext* tls = nullptr;
  };

  struct Statistics {
    std::uint64_t connections = 0;
    std::uint64_t messages_relayed = 0;
    std::uint64_t stale_messages_dropped = 0;  // seq not above the sender's last relayed
    std::uint64_t clients_dropped_slow = 0;
    std::uint64_t clients_dropped_bad_sender = 0;  // a second sender name on a connection
  };

  ChatServer() : ChatServer(Options{}) {}
  explicit ChatServer(Options options) : options_(options) {}
  ChatServer(const ChatServer&) = delete;
  ChatServer& operator=(const ChatServer&) = delete;

  // Serves on port (0: any; the bound port is reported through task_status) until
  // cancelled. Blocks; a checkpoint; throws OSError when the port cannot be bound.
  void serve(std::uint16_t port, std::string host = {},
             TaskStatus<std::vector<SocketListener*>>* task_status = nullptr);

  // Runs one client's connection until it ends (the peer closes or breaks it, sends a
  // malformed line, or is dropped as slow). Blocks; a checkpoint; never throws but Cancelled.
  void handle_connection(Stream& stream);

  Statistics statistics() const noexcept { return statistics_; }
  // Senders the server keeps a last relayed seq for: those with an open connection.
  std::size_t senders_tracked() const noexcept { return senders_.size(); }

 private:
  using Line = std::shared_ptr<const std::string>;
  struct Client {
    MemorySendChannel<Line> outbox;
    CancelScope* connection_scope;  // cancelled to drop the client
  };

  // Queues line on every connected client's outbox; drops the clients whose outbox is full.
  // Not a checkpoint.
  void broadcast(const Line& line);
  void write_line(Stream& stream, const std::string& line);
  // Reads and relays the connection's messages until it ends. The connection speaks for the
  // sender of its first message. A checkpoint; never throws but Cancelled.
  void relay_messages(Stream& stream);
  void release_sender(const std::string& sender);

  struct SenderState {
    std::uint64_t last_seq = 0;     // Invariant: the seqs relayed from the sender increase.
    std::uint64_t connections = 0;  // open connections speaking for it; never 0 in senders_
  };

  Options options_;
  // Connected clients by connection number. Invariant: an entry lives exactly while its
  // connection's handler runs and it has not been dropped.
  std::map<std::uint64_t, Client*> clients_;
  std::map<std::string, SenderState, std::less<>> senders_;
  std::uint64_t next_connection_ = 1;
  Statistics statistics_;
};

}  // namespace trellis::scenarios::chat
