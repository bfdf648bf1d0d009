// trellis/tls/internal/dtls_state.h — what DtlsEndpoint and its DtlsChannels share.
#pragma once

#include <array>
#include <cstddef>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "trellis/core/socket_address.h"
#include "trellis/core/time.h"
#include "trellis/io/conflict_detector.h"
#include "trellis/io/udp_socket.h"
#include "trellis/sync/event.h"
#include "trellis/sync/lock.h"
#include "trellis/tls/dtls_endpoint.h"
#include "trellis/tls/internal/context_state.h"
#include "trellis/tls/internal/datagram_bio.h"
#include "trellis/tls/openssl_handles.h"

namespace trellis::tls_internal {

struct DtlsChannelState;

struct DtlsEndpointState {
  explicit DtlsEndpointState(UdpSocket udp) : socket(std::move(udp)) {}

  // Sends one datagram to `to` (the socket takes one sender at a time: send_lock).
  void send_to(std::span<const std::byte> datagram, const SocketAddress& to);
  // Reads one datagram from the socket and hands it to its channel (or, when serving, to the
  // cookie exchange). Blocks; a checkpoint.
  void pump_one();
  // Hands a datagram to the channel of `from`; false if there is none.
  bool dispatch(std::vector<std::byte> datagram, const SocketAddress& from);

  UdpSocket socket;
  // Every open channel, by peer address ("10.0.0.1:4433"). Invariant: a channel is here from
  // its creation until it closes or is destroyed, under its peer's address.
  std::map<std::string, DtlsChannelState*> channels;
  Lock send_lock;
  // Held by the task reading the socket for channels (when nobody serves).
  Lock pump_lock;
  bool serving = false;
  bool closed = false;
  // The key of this endpoint's cookies (HMAC over the peer's address); drawn from OpenSSL's
  // generator when the endpoint is made (so from the seed inside a deterministic run).
  std::array<unsigned char, 32> cookie_secret{};
  DtlsEndpointStatistics statistics;
};

struct DtlsChannelState {
  DtlsChannelState(std::shared_ptr<DtlsEndpointState> endpoint, SocketAddress peer,
                   const SslContext& context);
  ~DtlsChannelState();

  // Waits until a datagram is queued (reading the socket itself when nobody serves).
  void wait_datagram();
  // Sends every datagram OpenSSL queued; returns them (a new flight), or {} if none.
  std::vector<std::vector<std::byte>> flush();
  void resend_last_flight();
  // Answers an epoch-0 datagram that arrived after the handshake: resends our last flight
  // if it is the one that ended the handshake (the peer may have lost it), at most once per
  // kRetransmitInitial of the run's clock; otherwise does nothing.
  void answer_handshaking_peer();
  void ensure_handshake();
  void run_handshake();
  void check_status() const;
  void mark_broken(std::string reason) noexcept;
  void forget() noexcept;

  std::shared_ptr<DtlsEndpointState> endpoint;
  SocketAddress peer;
  std::string key;  // peer.to_string()
  std::shared_ptr<ContextState> context;
  // Owned by ssl's BIOs' users (here): what arrived from the peer, what OpenSSL wrote.
  DatagramQueue incoming;
  DatagramQueue outgoing;
  openssl::SslPtr ssl;
  // Set (and replaced) each time a datagram is queued for this channel.
  std::shared_ptr<Event> arrival = std::make_shared<Event>();
  // The datagrams of this side's latest flight, resent when the peer seems not to have them.
  std::vector<std::vector<std::byte>> last_flight;
  bool handshake_started = false;
  bool handshake_done = false;
  // Invariant: set once the handshake is done, iff our last flight ended it (the server's
  // in a full handshake, the client's in a resumed one). Only that side resends when the peer
  // still sends epoch 0; if both did, one spoofed epoch-0 datagram would start an endless
  // exchange of flights between the two peers.
  bool sent_final_flight = false;
  // When answer_handshaking_peer last resent (bounds what a spoofer can make us send).
  std::optional<Time> final_flight_resent_at;
  Event handshake_finished;
  bool broken = false;
  bool closed = false;
  std::string broken_reason;
  std::size_t mtu = 1200;
  DtlsChannelStatistics statistics;
  ConflictDetector send_conflict{"another task is sending on this DtlsChannel"};
  ConflictDetector receive_conflict{"another task is receiving on this DtlsChannel"};
};

}  // namespace trellis::tls_internal
