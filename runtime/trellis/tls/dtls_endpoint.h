// trellis/tls/dtls_endpoint.h — DTLS over one UdpSocket (Trio's trio.DTLSEndpoint and
// trio.DTLSChannel): encrypted, authenticated datagrams, real or simulated.
//
//   // Server: one socket, many peers; each verified peer gets a task running the handler.
//   trellis::DtlsEndpoint server(trellis::UdpSocket::bind(*SocketAddress::parse("0.0.0.0", 4433)));
//   server.serve(server_context, [](trellis::DtlsChannel& channel) {
//     for (;;) channel.send(channel.receive());    // an echo
//   });
//
//   // Client:
//   trellis::DtlsEndpoint client(trellis::UdpSocket(AF_INET));
//   trellis::DtlsChannel channel = client.connect(server_address, client_context);
//   channel.send(datagram);                        // handshakes first
//   std::vector<std::byte> reply = channel.receive();
//
// As in Trio: a server answers a ClientHello from an unknown address statelessly (a
// HelloVerifyRequest with a cookie bound to that address, OpenSSL's DTLSv1_listen), so a
// spoofed address costs it nothing; only a peer that echoes the cookie gets a channel. The
// handshake retransmits its last flight of datagrams when no answer came within 1 s on the
// run's clock, doubling up to 60 s (so it runs in virtual time in a World); once done, a
// peer that is still handshaking (its copy of our last flight was lost) gets that flight
// again, from the side whose flight ended the handshake only and at most once a second (so
// a spoofed epoch-0 datagram cannot start an endless exchange of flights, nor make us send
// more than a flight a second). Empty datagrams are ignored. DTLS itself does not retransmit
// application data: a lost datagram stays lost, a duplicated one is dropped (replay protection),
// reordered ones arrive reordered.
//
// Not thread-safe: for the tasks of one run.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "trellis/core/socket_address.h"
#include "trellis/core/time.h"
#include "trellis/io/udp_socket.h"
#include "trellis/tls/ssl_context.h"
#include "trellis/tls/ssl_error.h"

namespace trellis {

namespace tls_internal {
struct DtlsEndpointState;
struct DtlsChannelState;
}  // namespace tls_internal

struct DtlsChannelStatistics {
  std::size_t handshake_retransmissions = 0;  // flights resent after a silence (run's clock)
  std::size_t flights_resent_to_handshaking_peer = 0;  // after our handshake was done
  std::size_t datagrams_sent = 0;
};

struct DtlsEndpointStatistics {
  std::size_t hello_verify_requests_sent = 0;  // cookies handed to unverified addresses
  std::size_t channels_accepted = 0;           // peers that echoed their cookie
  std::size_t datagrams_dropped = 0;           // from strangers, or not DTLS
};

// One association with one peer. Movable (returned by value); not copyable.
class DtlsChannel {
 public:
  explicit DtlsChannel(std::unique_ptr<tls_internal::DtlsChannelState> state);
  DtlsChannel(DtlsChannel&&) noexcept;
  DtlsChannel& operator=(DtlsChannel&&) noexcept;
  // Forgets the channel (no close_notify): later datagrams from the peer go nowhere.
  ~DtlsChannel();

  // Runs the handshake (once; other callers wait for it), retransmitting as described above.
  // Blocks; a checkpoint. Throws SslError if it fails (the channel is then broken), what the
  // socket throws. Cancelling it breaks the channel.
  void do_handshake();
  // Sends one datagram (handshaking first if needed). Throws SslError if it does not fit in
  // one record under the channel's MTU, BrokenResourceError / ClosedResourceError if broken
  // / closed, BusyResourceError if another task is sending. A checkpoint.
  void send(std::span<const std::byte> datagram);
  // Waits for the next datagram from the peer (handshaking first if needed). Throws
  // BrokenResourceError once the peer sent close_notify (or SslError on a failure),
  // ClosedResourceError if closed, BusyResourceError if another task is receiving. A
  // checkpoint.
  std::vector<std::byte> receive();
  // The largest UDP payload this channel sends (handshake fragments included). Default
  // 1200 bytes. Throws std::invalid_argument below DTLS's minimum (256).
  void set_ciphertext_mtu(std::size_t mtu);
  std::size_t ciphertext_mtu() const;
  // Sends close_notify (if the handshake completed) and forgets the channel. Idempotent; a
  // checkpoint.
  void close();
  const SocketAddress& peer_address() const;
  DtlsChannelStatistics statistics() const;

 private:
  tls_internal::DtlsChannelState& state() const;
  std::unique_ptr<tls_internal::DtlsChannelState> state_;
};

class DtlsEndpoint {
 public:
  // Takes the socket (bound for a server; a client's may be unbound). Not a checkpoint.
  explicit DtlsEndpoint(UdpSocket socket);
  DtlsEndpoint(DtlsEndpoint&&) noexcept;
  DtlsEndpoint& operator=(DtlsEndpoint&&) noexcept;
  ~DtlsEndpoint();

  // Serves DTLS: reads the socket forever, answers new peers with cookies, and runs
  // handler(channel) in a new task for each peer that completed the cookie exchange (the
  // channel is closed when the handler returns; an exception from a handler propagates, as
  // serve_listeners). Never returns normally; cancel it to stop. Throws
  // std::invalid_argument for a context that is not a DTLS server context, UsageError if
  // this endpoint already serves.
  void serve(SslContext& server_ctx, std::function<void(DtlsChannel&)> handler);
  // A channel to `to`; not yet handshaken. The server's certificate is checked against
  // server_hostname (default: to's IP address) when the context verifies peers. Throws
  // std::invalid_argument for a context that is not a DTLS client context, UsageError if a
  // channel to `to` exists. Not a checkpoint.
  DtlsChannel connect(const SocketAddress& to, SslContext& client_ctx,
                      std::string server_hostname = "");
  UdpSocket& socket();
  DtlsEndpointStatistics statistics() const;
  // Closes the socket (channels then fail with ClosedResourceError). A checkpoint.
  void close();

 private:
  std::shared_ptr<tls_internal::DtlsEndpointState> state_;
};

}  // namespace trellis
