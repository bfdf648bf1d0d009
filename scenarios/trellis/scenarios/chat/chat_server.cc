#include "trellis/scenarios/chat/chat_server.h"

#include <stdexcept>
#include <utility>

#include "trellis/core/errors.h"
#include "trellis/io/tcp.h"
#include "trellis/scenarios/chat/chat_protocol.h"
#include "trellis/scenarios/kv/kv_protocol.h"
#include "trellis/tls/ssl_tcp.h"

namespace trellis::scenarios::chat {

void ChatServer::serve(std::uint16_t port, std::string host,
                       TaskStatus<std::vector<SocketListener*>>* task_status) {
  if (options_.tls != nullptr) {
    if (options_.single_send_writes) {
      throw std::invalid_argument("ChatServer: the planted single-send bug needs plain TCP");
    }
    serve_ssl_over_tcp([this](SslStream& stream) { handle_connection(stream); }, port,
                       *options_.tls, {.host = std::move(host), .task_status = task_status});
    return;
  }
  serve_tcp([this](SocketStream& stream) { handle_connection(stream); }, port,
            {.host = std::move(host), .task_status = task_status});
}

void ChatServer::broadcast(const Line& line) {
  std::vector<std::uint64_t> slow;
  for (auto& [id, client] : clients_) {
    try {
      client->outbox.send_nowait(line);
    } catch (const WouldBlock&) {
      slow.push_back(id);
    } catch (const BrokenResourceError&) {
      slow.push_back(id);  // its writer is gone: the connection is ending anyway
    }
  }
  for (const std::uint64_t id : slow) {
    clients_.at(id)->connection_scope->cancel();
    clients_.erase(id);
    ++statistics_.clients_dropped_slow;
  }
}

void ChatServer::write_line(Stream& stream, const std::string& line) {
  if (!options_.single_send_writes) {
    kv::send_line(stream, line);
    return;
  }
  // The planted bug: one send() and whatever did not fit is forgotten.
  const std::string data = line + "\n";
  Socket& socket = dynamic_cast<SocketStream&>(stream).socket();  // plain TCP (serve checks)
  const IoResult<std::size_t> sent = socket.io_call(
      true, [&] { return socket.network().send(socket.handle(), data.data(), data.size()); });
  if (!sent.ok())
    throw BrokenResourceError("send failed (errno " + std::to_string(sent.error) + ")");
}

void ChatServer::handle_connection(Stream& stream) {
  // (Not a structured binding: clang 14 cannot capture one in a lambda.)
  auto channel = open_memory_channel<Line>(options_.outbox_lines_max);
  auto& outbox = channel.first;
  auto& inbox = channel.second;
  const std::uint64_t id = next_connection_++;
  ++statistics_.connections;
  open_nursery([&](Nursery& nursery) {
    Client client{std::move(outbox), &nursery.cancel_scope()};
    clients_[id] = &client;
    struct Unregister {
      std::map<std::uint64_t, Client*>& clients;
      std::uint64_t id;
      ~Unregister() { clients.erase(id); }
    } unregister{clients_, id};
    nursery.start_soon([&] {
      try {
        for (;;) write_line(stream, *inbox.receive());
      } catch (const BrokenResourceError&) {
      } catch (const ClosedResourceError&) {
      } catch (const EndOfChannel&) {
      }
      nursery.cancel_scope().cancel();
    });
    relay_messages(stream);
    nursery.cancel_scope().cancel();
  });
}

void ChatServer::relay_messages(Stream& stream) {
  // The sender this connection speaks for, released however the connection ends (Cancelled
  // included).
  struct Claim {
    ChatServer& server;
    std::string sender;
    ~Claim() {
      if (!sender.empty()) server.release_sender(sender);
    }
  } claim{*this, {}};
  std::string& sender = claim.sender;
  kv::LineReader reader(stream);
  try {
    while (std::optional<std::string> line = reader.read_line()) {
      const ChatMessage message = parse_message(*line);
      if (sender.empty()) {
        sender = message.sender;
        ++senders_[sender].connections;
      } else if (message.sender != sender) {
        ++statistics_.clients_dropped_bad_sender;
        return;
      }
      std::uint64_t& last = senders_.find(sender)->second.last_seq;
      if (message.seq <= last) {
        ++statistics_.stale_messages_dropped;
        continue;
      }
      last = message.seq;
      ++statistics_.messages_relayed;
      broadcast(std::make_shared<const std::string>(std::move(*line)));
    }
  } catch (const BrokenResourceError&) {
    // The client went away (or crashed).
  } catch (const ClosedResourceError&) {
  } catch (const kv::ProtocolError&) {
    // A malformed or over-long line: drop the connection.
  }
}

void ChatServer::release_sender(const std::string& sender) {
  auto it = senders_.find(sender);
  if (--it->second.connections == 0) senders_.erase(it);
}

}  // namespace trellis::scenarios::chat
