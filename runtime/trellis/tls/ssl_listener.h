// trellis/tls/ssl_listener.h — SslListener: accepts connections from any Listener and wraps
// each in a server-side SslStream (Trio's trio.SSLListener).
//
//   auto listeners = trellis::open_tcp_listeners(443);
//   trellis::SslListener tls(std::move(listeners.front()), server_context);
//   std::unique_ptr<trellis::SslStream> stream = tls.accept();   // handshake on first I/O
//
// accept() does not handshake (a slow client must not hold up the accept loop): the stream
// handshakes lazily, in its handler's task. Not thread-safe: for the tasks of one run.
#pragma once

#include <functional>
#include <memory>
#include <type_traits>
#include <utility>

#include "trellis/io/stream.h"
#include "trellis/tls/ssl_context.h"
#include "trellis/tls/ssl_stream.h"

namespace trellis {

class SslListener final : public Listener<SslStream> {
 public:
  // Takes ownership of transport: any Listener<S> (or a class derived from one, such as
  // SocketListener) whose streams S are Streams. The context is copied (a handle: settings
  // stay shared). Throws std::invalid_argument if transport is null or context is a client
  // context. Not a checkpoint.
  template <class L>
  requires std::is_base_of_v<Listener<typename L::StreamType>, L> &&
      std::is_base_of_v<Stream, typename L::StreamType>
      SslListener(std::unique_ptr<L> transport, SslContext& context, bool https_compatible = false)
      : context_(context), https_compatible_(https_compatible) {
    check_arguments(transport != nullptr);
    Listener<typename L::StreamType>* raw = transport.get();
    accept_transport_ = [raw]() -> std::unique_ptr<Stream> { return raw->accept(); };
    transport_ = std::move(transport);
  }

  // Accepts one transport stream (a checkpoint; blocks; errors as the transport's accept) and
  // returns it wrapped, server side, not yet handshaken.
  std::unique_ptr<SslStream> accept() override;
  // Closes the transport listener. Idempotent; a checkpoint.
  void close() override;

  // The wrapped listener as its concrete type (e.g. SocketListener, for local_address()).
  // Throws std::bad_cast if it is of another type.
  template <class L>
  L& transport_listener_as() const {
    return dynamic_cast<L&>(*transport_);
  }

 private:
  void check_arguments(bool have_transport) const;

  // Invariant: both non-null after construction.
  std::unique_ptr<AsyncResource> transport_;
  std::function<std::unique_ptr<Stream>()> accept_transport_;
  SslContext context_;
  bool https_compatible_;
};

}  // namespace trellis
