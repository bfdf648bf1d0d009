#include "trellis/scenarios/chat/chat_client.h"

#include <optional>
#include <stdexcept>
#include <utility>

#include "trellis/core/cancel_scope.h"
#include "trellis/core/errors.h"
#include "trellis/core/nursery.h"
#include "trellis/core/os_error.h"
#include "trellis/io/close_forcefully.h"
#include "trellis/io/tcp.h"
#include "trellis/scenarios/kv/kv_protocol.h"
#include "trellis/tls/ssl_stream.h"

namespace trellis::scenarios::chat {
namespace {

std::pair<MemorySendChannel<std::string>, MemoryReceiveChannel<std::string>> open_outbox(
    std::size_t size) {
  if (size == 0) throw std::invalid_argument("ChatClient: outbox_texts_max must be >= 1");
  return open_memory_channel<std::string>(size);
}

}  // namespace

ChatClient::ChatClient(Options options)
    : options_(std::move(options)), outbox_(open_outbox(options_.outbox_texts_max)) {
  if (options_.server.empty()) throw std::invalid_argument("ChatClient: no server");
  check_sender(options_.name);
}

void ChatClient::send(std::string text) {
  check_text(text);
  outbox_.first.send(std::move(text));
  ++queued_;
}

std::unique_ptr<Stream> ChatClient::connect() {
  std::unique_ptr<Stream> stream;
  move_on_after(options_.connect_timeout, [&] {
    try {
      auto tcp = std::make_unique<SocketStream>(open_tcp_stream(options_.server, options_.port));
      if (options_.tls == nullptr) {
        stream = std::move(tcp);
      } else {
        // The handshake runs on the session's first send or receive.
        stream = std::make_unique<SslStream>(
            std::move(tcp), *options_.tls, SslStream::Options{.server_hostname = options_.server});
      }
    } catch (const OSError&) {
      // Refused (the server is restarting), unreachable: try again.
    }
  });
  return stream;
}

void ChatClient::run(const Handlers& handlers) {
  for (;;) {
    if (std::unique_ptr<Stream> stream = connect()) {
      ++statistics_.connections;
      session(*stream, handlers);
      // A TLS close would first finish a handshake or send close_notify, which a cut link
      // could hold up: the connection is over, so close it without a goodbye.
      if (options_.tls != nullptr) {
        close_forcefully(*stream);
      } else {
        stream->close();
      }
    }
    sleep(options_.reconnect_backoff);
  }
}

void ChatClient::receive_loop(Stream& stream, const Handlers& handlers) {
  kv::LineReader reader(stream);
  try {
    while (std::optional<std::string> line = reader.read_line()) {
      ChatMessage message;
      try {
        message = parse_message(*line);
      } catch (const kv::ProtocolError&) {
        ++statistics_.malformed_lines;
        if (handlers.malformed) handlers.malformed(*line);
        return;
      }
      ++statistics_.messages_received;
      if (message.sender == options_.name && message.seq > echoed_seq_) {
        echoed_seq_ = message.seq;
        if (echoed_seq_ >= sent_seq_ && echo_) echo_->set();
      }
      if (handlers.message) handlers.message(message);
    }
  } catch (const BrokenResourceError&) {
  } catch (const ClosedResourceError&) {
  } catch (const kv::ProtocolError&) {
    // An over-long line, or the stream ended mid-line (the server dropped this client in the
    // middle of a write): the connection is unusable, nothing was delivered.
  }
}

void ChatClient::session(Stream& stream, const Handlers& handlers) {
  open_nursery([&](Nursery& nursery) {
    nursery.start_soon([&] {
      receive_loop(stream, handlers);
      nursery.cancel_scope().cancel();
    });
    try {
      for (;;) {
        std::string text = outbox_.second.receive();
        const ChatMessage message{options_.name, ++sent_seq_, std::move(text)};
        echo_ = std::make_unique<Event>();
        if (options_.tls == nullptr) {
          kv::send_line(stream, encode_message(message));
        } else if (!move_on_after(options_.echo_timeout,
                                  [&] { kv::send_line(stream, encode_message(message)); })) {
          // Over TLS the first send waits for the handshake, which a server that crashed
          // after accepting never answers: give up as for a missing echo, and reconnect.
          ++statistics_.echo_timeouts;
          break;
        }
        ++statistics_.messages_sent;
        move_on_after(options_.echo_timeout, [&] { echo_->wait(); });
        if (!echo_->is_set()) {
          ++statistics_.echo_timeouts;
          break;
        }
      }
    } catch (const BrokenResourceError&) {
    } catch (const ClosedResourceError&) {
    }
    nursery.cancel_scope().cancel();
  });
}

}  // namespace trellis::scenarios::chat
