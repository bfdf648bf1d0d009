// trellis/tls/ssl_stream.h — SslStream: TLS over any Stream (Trio's trio.SSLStream).
//
// The transport may be anything that moves bytes: a SocketStream, a memory stream pair, a
// simulated TCP stream, another SslStream. OpenSSL runs over two memory buffers and never
// touches a file descriptor, so the same code runs on the epoll backend and inside a World.
//
//   trellis::SslContext context = trellis::SslContext::client();
//   trellis::SslStream stream(std::make_unique<trellis::SocketStream>(
//                                 trellis::open_tcp_stream("example.com", 443)),
//                             context, {.server_hostname = "example.com"});
//   stream.send_all(request);                 // the handshake runs first, lazily
//   std::size_t n = stream.receive_some(buffer);
//   stream.close();                           // sends close_notify, then closes the socket
//
// Semantics (Trio's): the handshake happens on the first I/O or on do_handshake(); two tasks
// may use one stream at once if one sends and the other receives (a second sender, or a
// second receiver, gets BusyResourceError). If a send_all, a handshake or a close is
// cancelled, or the transport fails under it, the stream is broken: every later call throws
// BrokenResourceError (naming the first failure), never corrupted data. A cancelled
// receive_some loses nothing. Every TLS failure is an SslError (a BrokenResourceError) with
// OpenSSL's reason.
//
// Movable (the moved-from stream only accepts destruction, assignment and close()); not
// copyable. Not thread-safe: for the tasks of one run.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "trellis/io/stream.h"
#include "trellis/tls/ssl_context.h"
#include "trellis/tls/ssl_error.h"

namespace trellis {

namespace tls_internal {
class SslStreamState;
}

class SslStream final : public Stream {
 public:
  struct Options {
    // Client side: the name sent in SNI (not for an IP address) and checked against the
    // server's certificate (DNS name or IP address) when the context verifies peers.
    std::string server_hostname{};
    bool server_side = false;
    // Trio's https_compatible: close() sends no close_notify, and the peer closing the
    // transport without close_notify (a "ragged EOF") reads as a clean end of file.
    bool https_compatible = false;
  };

  // Takes ownership of transport and wraps it; nothing is sent yet. Throws
  // std::invalid_argument if transport is null, if a client-side stream whose context
  // verifies peers has no server_hostname (as Python: check_hostname needs it), or if the
  // context's side (client/server) does not match options.server_side. Not a checkpoint.
  SslStream(std::unique_ptr<Stream> transport, SslContext& context, Options options);
  SslStream(SslStream&&) noexcept;
  SslStream& operator=(SslStream&&) noexcept;
  // Destroying an open stream destroys (and so closes) the transport, without close_notify.
  ~SslStream() override;

  // Runs the TLS handshake if it has not run yet; if another task is running it, waits for
  // that one. Idempotent; always a checkpoint. Throws SslError if the handshake fails,
  // BrokenResourceError / ClosedResourceError if the stream is broken / closed, what the
  // transport throws (the stream is then broken). Cancelling it breaks the stream.
  void do_handshake();

  // Stream (contracts in io/stream.h), each handshaking first if needed. receive_some returns
  // 0 once the peer sent close_notify (and, if https_compatible, at a ragged end of file);
  // without https_compatible a ragged end of file is SslError (unexpected_eof()).
  void send_all(std::span<const std::byte> data) override;
  void wait_send_all_might_not_block() override;
  std::size_t receive_some(std::span<std::byte> buffer) override;
  // Sends close_notify (unless https_compatible or broken; after the handshake, which it
  // completes first if needed) without waiting for the peer's, then closes the transport.
  // Always closes the transport, also when cancelled or failing. Idempotent; a checkpoint.
  void close() override;

  // Runs the TLS closing handshake (sends close_notify and waits for the peer's) and returns
  // the transport, with any bytes that arrived after the peer's close_notify appended to
  // *trailing (if not null). The stream is then closed (without closing the transport).
  // Throws as receive_some; BusyResourceError if another task sends or receives. Blocks; a
  // checkpoint.
  std::unique_ptr<Stream> unwrap(std::vector<std::byte>* trailing);

  // After the handshake (std::nullopt before it, or if none was agreed): the ALPN protocol
  // agreed, the peer's certificate (PEM), the protocol version ("TLSv1.3") and cipher name.
  // Not checkpoints; never throw but UsageError when moved from.
  std::optional<std::string> selected_alpn_protocol() const;
  std::optional<std::string> peer_certificate_pem() const;
  std::optional<std::string> version() const;
  std::optional<std::string> cipher() const;
  // The wrapped stream (owned by this one). Throws ClosedResourceError after unwrap().
  Stream& transport_stream() const;
  const Options& options() const;

 private:
  tls_internal::SslStreamState& state() const;
  // Invariant: non-null except in a moved-from stream.
  std::unique_ptr<tls_internal::SslStreamState> state_;
};

}  // namespace trellis
