#include "trellis/tls/dtls_endpoint.h"

#include "trellis/tls/openssl_random.h"

#include <arpa/inet.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <algorithm>
#include <iterator>
#include <mutex>
#include <stdexcept>
#include <utility>

#include "trellis/base/assert.h"
#include "trellis/core/cancel_scope.h"
#include "trellis/core/errors.h"
#include "trellis/core/nursery.h"
#include "trellis/core/os_error.h"
#include "trellis/core/run.h"
#include "trellis/tls/internal/dtls_state.h"
#include "trellis/tls/internal/ssl_failure.h"

namespace trellis::tls_internal {
namespace {

// Trio's DTLS: the first retransmission after 1 s without an answer, doubling up to 60 s.
constexpr Duration kRetransmitInitial = std::chrono::seconds(1);
constexpr Duration kRetransmitMax = std::chrono::seconds(60);
// The largest UDP payload there is: every receive buffer has room for it.
constexpr std::size_t kDatagramSizeMax = 65536;
// DTLS's smallest MTU (OpenSSL refuses less).
constexpr std::size_t kMtuMin = 256;

using BioAddrPtr = std::unique_ptr<BIO_ADDR, openssl::OpenSslDeleter<BIO_ADDR_free>>;

// OpenSSL's own DTLS timer reads the wall clock; we retransmit on the run's clock instead
// (run_handshake), so OpenSSL's timer is set so far out that it never fires by itself.
unsigned int far_timer(SSL*, unsigned int) {
  return 3'600'000'000u;
}

bool is_ip_address(const std::string& host) {
  unsigned char buffer[16];
  return inet_pton(AF_INET, host.c_str(), buffer) == 1 ||
         inet_pton(AF_INET6, host.c_str(), buffer) == 1;
}

// Whether a datagram holds a record of epoch 0 (a peer still handshaking): a DTLS record
// header is type(1) version(2) epoch(2) sequence(6) length(2).
bool is_epoch_zero(const std::vector<std::byte>& datagram) {
  return datagram.size() >= 13 && datagram[3] == std::byte{0} && datagram[4] == std::byte{0};
}

bool cookie_for(SSL* ssl, unsigned char* cookie, unsigned int* length) {
  const auto* channel = static_cast<const DtlsChannelState*>(SSL_get_app_data(ssl));
  if (channel == nullptr) return false;
  const std::array<unsigned char, 32>& secret = channel->endpoint->cookie_secret;
  return HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
              reinterpret_cast<const unsigned char*>(channel->key.data()), channel->key.size(),
              cookie, length) != nullptr;
}

int generate_cookie(SSL* ssl, unsigned char* cookie, unsigned int* length) {
  return cookie_for(ssl, cookie, length) ? 1 : 0;
}

int verify_cookie(SSL* ssl, const unsigned char* cookie, unsigned int length) {
  unsigned char expected[EVP_MAX_MD_SIZE];
  unsigned int expected_length = 0;
  if (!cookie_for(ssl, expected, &expected_length)) return 0;
  return length == expected_length && CRYPTO_memcmp(cookie, expected, length) == 0 ? 1 : 0;
}

}  // namespace

void DtlsEndpointState::send_to(std::span<const std::byte> datagram, const SocketAddress& to) {
  std::lock_guard<Lock> hold(send_lock);
  socket.send_to(datagram, to);
}

bool DtlsEndpointState::dispatch(std::vector<std::byte> datagram, const SocketAddress& from) {
  const auto found = channels.find(from.to_string());
  if (found == channels.end()) return false;
  DtlsChannelState& channel = *found->second;
  TRELLIS_ASSERT(channel.peer == from);
  channel.incoming.push(std::move(datagram));
  channel.arrival->set();
  return true;
}

void DtlsEndpointState::pump_one() {
  std::vector<std::byte> buffer(kDatagramSizeMax);
  Datagram got;
  try {
    got = socket.receive_from(buffer);
  } catch (const OSError& error) {
    // An ICMP "port unreachable" for an earlier datagram: the peer is not there (yet). DTLS
    // does not care; the handshake's retransmissions will try again.
    if (error.errno_value() == ECONNREFUSED) return;
    throw;
  }
  buffer.resize(got.size);
  // A datagram from a stranger is dropped.
  if (!dispatch(std::move(buffer), got.from)) ++statistics.datagrams_dropped;
}

DtlsChannelState::DtlsChannelState(std::shared_ptr<DtlsEndpointState> owner,
                                   SocketAddress peer_address, const SslContext& ssl_context)
    : endpoint(std::move(owner)),
      peer(std::move(peer_address)),
      key(peer.empty() ? std::string() : peer.to_string()),
      context(ssl_context.state()) {
  TRELLIS_ASSERT(endpoint != nullptr && context->dtls);
  ERR_clear_error();
  ssl.reset(SSL_new(context->ctx.get()));
  if (ssl == nullptr) throw SslError("DTLS: SSL_new failed", openssl::drain_error_queue());
  BIO* rbio = new_datagram_bio(incoming);
  BIO* wbio = nullptr;
  try {
    wbio = new_datagram_bio(outgoing);
  } catch (...) {
    BIO_free(rbio);
    throw;
  }
  SSL_set_bio(ssl.get(), rbio, wbio);
  SSL_set_app_data(ssl.get(), this);
  SSL_set_options(ssl.get(), SSL_OP_NO_QUERY_MTU);
  SSL_set_mtu(ssl.get(), static_cast<long>(mtu));
  DTLS_set_timer_cb(ssl.get(), far_timer);
  if (context->client) {
    SSL_set_connect_state(ssl.get());
  } else {
    SSL_set_accept_state(ssl.get());
  }
}

DtlsChannelState::~DtlsChannelState() {
  forget();
}

void DtlsChannelState::forget() noexcept {
  const auto found = endpoint->channels.find(key);
  if (found != endpoint->channels.end() && found->second == this) endpoint->channels.erase(found);
}

void DtlsChannelState::check_status() const {
  if (closed) throw ClosedResourceError("this DtlsChannel is closed");
  if (broken) throw BrokenResourceError("this DtlsChannel is broken (" + broken_reason + ")");
  if (endpoint->closed) throw ClosedResourceError("the DtlsEndpoint was closed");
}

void DtlsChannelState::mark_broken(std::string reason) noexcept {
  if (broken || closed) return;
  broken = true;
  broken_reason = std::move(reason);
}

void DtlsChannelState::wait_datagram() {
  // Bounded by the socket: each turn either sees a datagram or reads one from the socket.
  while (incoming.datagrams.empty()) {
    check_status();
    if (endpoint->serving) {
      const std::shared_ptr<Event> event = arrival;
      event->wait();
      if (arrival == event) arrival = std::make_shared<Event>();
      continue;
    }
    std::lock_guard<Lock> hold(endpoint->pump_lock);
    if (incoming.datagrams.empty()) endpoint->pump_one();
  }
}

std::vector<std::vector<std::byte>> DtlsChannelState::flush() {
  std::vector<std::vector<std::byte>> flight(std::make_move_iterator(outgoing.datagrams.begin()),
                                             std::make_move_iterator(outgoing.datagrams.end()));
  outgoing.datagrams.clear();
  for (const std::vector<std::byte>& datagram : flight) endpoint->send_to(datagram, peer);
  statistics.datagrams_sent += flight.size();
  return flight;
}

void DtlsChannelState::resend_last_flight() {
  for (const std::vector<std::byte>& datagram : last_flight) endpoint->send_to(datagram, peer);
  statistics.datagrams_sent += last_flight.size();
}

void DtlsChannelState::answer_handshaking_peer() {
  TRELLIS_ASSERT(handshake_done);
  // Not ours to resend: the peer has our last flight, or it would not be done.
  if (!sent_final_flight || last_flight.empty()) return;
  const Time now = current_time();
  if (final_flight_resent_at && now - *final_flight_resent_at < kRetransmitInitial) return;
  final_flight_resent_at = now;
  resend_last_flight();
  ++statistics.flights_resent_to_handshaking_peer;
}

void DtlsChannelState::run_handshake() {
  Duration timeout = kRetransmitInitial;
  // Ends when OpenSSL completes or fails, or the caller is cancelled: each turn hands
  // OpenSSL one more datagram or retransmits after a doubled timeout.
  for (;;) {
    ERR_clear_error();
    const int ret = SSL_do_handshake(ssl.get());
    if (ret != 1) {
      const int error = SSL_get_error(ssl.get(), ret);
      if (error != SSL_ERROR_WANT_READ)
        throw make_ssl_error(ssl.get(), error, "DTLS handshake failed");
    }
    std::vector<std::vector<std::byte>> flight = flush();
    if (!flight.empty()) {
      last_flight = std::move(flight);
      timeout = kRetransmitInitial;  // progress: the next silence starts the count again
    }
    if (ret == 1) return;
    if (!move_on_after(timeout, [this] { wait_datagram(); })) {
      resend_last_flight();
      ++statistics.handshake_retransmissions;
      timeout = std::min(timeout * 2, kRetransmitMax);
    }
  }
}

void DtlsChannelState::ensure_handshake() {
  if (handshake_done) return;
  if (handshake_started) {
    handshake_finished.wait();
    check_status();
    TRELLIS_ASSERT(handshake_done);
    return;
  }
  handshake_started = true;
  try {
    run_handshake();
  } catch (const SslError& error) {
    mark_broken(error.what());
    handshake_finished.set();
    throw;
  } catch (...) {
    mark_broken("the DTLS handshake failed or was cancelled");
    handshake_finished.set();
    throw;
  }
  handshake_done = true;
  sent_final_flight = context->client == (SSL_session_reused(ssl.get()) == 1);
  handshake_finished.set();
}

}  // namespace trellis::tls_internal

namespace trellis {

using tls_internal::DtlsChannelState;
using tls_internal::DtlsEndpointState;

DtlsChannel::DtlsChannel(std::unique_ptr<DtlsChannelState> state) : state_(std::move(state)) {
  TRELLIS_ASSERT(state_ != nullptr);
}
DtlsChannel::DtlsChannel(DtlsChannel&&) noexcept = default;
DtlsChannel& DtlsChannel::operator=(DtlsChannel&&) noexcept = default;
DtlsChannel::~DtlsChannel() = default;

DtlsChannelState& DtlsChannel::state() const {
  if (state_ == nullptr) throw UsageError("DtlsChannel: used after being moved from");
  return *state_;
}

void DtlsChannel::do_handshake() {
  DtlsChannelState& s = state();
  s.check_status();
  s.ensure_handshake();
  checkpoint();
}

void DtlsChannel::send(std::span<const std::byte> datagram) {
  DtlsChannelState& s = state();
  ConflictDetector::Guard guard(s.send_conflict);
  s.check_status();
  s.ensure_handshake();
  const std::size_t room = DTLS_get_data_mtu(s.ssl.get());
  if (datagram.size() > room) {
    throw std::invalid_argument("DtlsChannel::send: a datagram of " +
                                std::to_string(datagram.size()) + " bytes does not fit in one " +
                                "record under the MTU (" + std::to_string(room) + " bytes)");
  }
  ERR_clear_error();
  std::size_t written = 0;
  const int ret = SSL_write_ex(s.ssl.get(), datagram.data(), datagram.size(), &written);
  if (ret != 1) {
    throw tls_internal::make_ssl_error(s.ssl.get(), SSL_get_error(s.ssl.get(), ret),
                                       "DTLS send failed");
  }
  if (s.flush().empty()) checkpoint();  // an empty datagram makes a record too; be sure
}

std::vector<std::byte> DtlsChannel::receive() {
  DtlsChannelState& s = state();
  ConflictDetector::Guard guard(s.receive_conflict);
  s.check_status();
  s.ensure_handshake();
  std::vector<std::byte> buffer(tls_internal::kDatagramSizeMax);
  // Each turn hands OpenSSL at least one queued datagram (or waits for one).
  for (;;) {
    // A peer still sending epoch-0 records is still handshaking: it lost our last flight.
    while (!s.incoming.datagrams.empty() &&
           tls_internal::is_epoch_zero(s.incoming.datagrams.front())) {
      s.incoming.datagrams.pop_front();
      s.answer_handshaking_peer();
    }
    ERR_clear_error();
    std::size_t n = 0;
    const int ret = SSL_read_ex(s.ssl.get(), buffer.data(), buffer.size(), &n);
    s.flush();
    if (ret == 1) {
      buffer.resize(n);
      return buffer;
    }
    const int error = SSL_get_error(s.ssl.get(), ret);
    if (error == SSL_ERROR_ZERO_RETURN) {
      ERR_clear_error();
      s.mark_broken("the peer sent close_notify");
      throw BrokenResourceError("DtlsChannel: the peer closed the channel (close_notify)");
    }
    if (error != SSL_ERROR_WANT_READ) {
      SslError failure = tls_internal::make_ssl_error(s.ssl.get(), error, "DTLS receive failed");
      s.mark_broken(failure.what());
      throw failure;
    }
    if (s.incoming.datagrams.empty()) s.wait_datagram();
  }
}

void DtlsChannel::set_ciphertext_mtu(std::size_t mtu) {
  DtlsChannelState& s = state();
  if (mtu < tls_internal::kMtuMin || mtu > tls_internal::kDatagramSizeMax) {
    throw std::invalid_argument("DtlsChannel::set_ciphertext_mtu: " + std::to_string(mtu) +
                                " is outside [256, 65536]");
  }
  s.mtu = mtu;
  SSL_set_mtu(s.ssl.get(), static_cast<long>(mtu));
}

std::size_t DtlsChannel::ciphertext_mtu() const {
  return state().mtu;
}

void DtlsChannel::close() {
  if (state_ == nullptr || state_->closed) {
    checkpoint();
    return;
  }
  DtlsChannelState& s = *state_;
  const bool goodbye = s.handshake_done && !s.broken && !s.endpoint->closed;
  s.closed = true;
  s.forget();
  if (goodbye) {
    ERR_clear_error();
    SSL_shutdown(s.ssl.get());  // queues close_notify; we do not wait for the peer's
    openssl::drain_error_queue();
    if (!s.flush().empty()) return;  // send_to was the checkpoint
  }
  checkpoint();
}

const SocketAddress& DtlsChannel::peer_address() const {
  return state().peer;
}

DtlsChannelStatistics DtlsChannel::statistics() const {
  return state().statistics;
}

namespace {

std::unique_ptr<DtlsChannelState> make_listener(const std::shared_ptr<DtlsEndpointState>& state,
                                                const SslContext& context) {
  return std::make_unique<DtlsChannelState>(state, SocketAddress(), context);
}

// Feeds a datagram from a stranger to the listener (OpenSSL's stateless DTLSv1_listen):
// answers a ClientHello without a valid cookie with a HelloVerifyRequest, drops anything
// else, and returns true when the ClientHello carried the cookie for its address (then the
// listener holds that peer's half-done handshake).
bool listen(DtlsEndpointState& endpoint, DtlsChannelState& listener,
            std::vector<std::byte> datagram, const SocketAddress& from) {
  listener.peer = from;
  listener.key = from.to_string();  // the cookie callbacks read it
  listener.incoming.datagrams.clear();
  listener.outgoing.datagrams.clear();
  listener.incoming.push(std::move(datagram));
  tls_internal::BioAddrPtr client(BIO_ADDR_new());
  if (client == nullptr) throw std::bad_alloc();
  ERR_clear_error();
  const int ret = DTLSv1_listen(listener.ssl.get(), client.get());
  openssl::drain_error_queue();  // a garbage datagram is not our error
  for (const std::vector<std::byte>& reply : listener.outgoing.datagrams) {
    endpoint.send_to(reply, from);
    ++endpoint.statistics.hello_verify_requests_sent;
  }
  if (ret <= 0 && listener.outgoing.datagrams.empty()) ++endpoint.statistics.datagrams_dropped;
  listener.outgoing.datagrams.clear();
  return ret > 0;
}

}  // namespace

DtlsEndpoint::DtlsEndpoint(UdpSocket socket)
    : state_(std::make_shared<DtlsEndpointState>(std::move(socket))) {
  ::trellis::internal::use_run_randomness();  // inside a World: the cookie key comes from the seed
  if (RAND_bytes(state_->cookie_secret.data(), static_cast<int>(state_->cookie_secret.size())) !=
      1) {
    throw SslError("DtlsEndpoint: no random bytes for the cookie key",
                   openssl::drain_error_queue());
  }
}
DtlsEndpoint::DtlsEndpoint(DtlsEndpoint&&) noexcept = default;
DtlsEndpoint& DtlsEndpoint::operator=(DtlsEndpoint&&) noexcept = default;
DtlsEndpoint::~DtlsEndpoint() = default;

UdpSocket& DtlsEndpoint::socket() {
  return state_->socket;
}

DtlsEndpointStatistics DtlsEndpoint::statistics() const {
  return state_->statistics;
}

void DtlsEndpoint::close() {
  state_->closed = true;
  // Wake channels waiting for a datagram: they see the endpoint closed.
  for (auto& [key, channel] : state_->channels) channel->arrival->set();
  state_->socket.close();
}

void DtlsEndpoint::serve(SslContext& server_ctx, std::function<void(DtlsChannel&)> handler) {
  if (!server_ctx.is_dtls() || server_ctx.is_client()) {
    throw std::invalid_argument("DtlsEndpoint::serve: needs SslContext::dtls_server()");
  }
  if (state_->serving) throw UsageError("DtlsEndpoint::serve: this endpoint already serves");
  SSL_CTX_set_cookie_generate_cb(server_ctx.native_handle(), tls_internal::generate_cookie);
  SSL_CTX_set_cookie_verify_cb(server_ctx.native_handle(), tls_internal::verify_cookie);
  state_->serving = true;
  auto shared_handler = std::make_shared<std::function<void(DtlsChannel&)>>(std::move(handler));
  struct ServingFlag {
    DtlsEndpointState& state;
    ~ServingFlag() { state.serving = false; }
  } serving_flag{*state_};
  open_nursery([&](Nursery& nursery) {
    std::unique_ptr<DtlsChannelState> listener = make_listener(state_, server_ctx);
    std::vector<std::byte> buffer(tls_internal::kDatagramSizeMax);
    // Forever (until cancelled or the socket fails): one datagram per turn.
    for (;;) {
      Datagram got;
      try {
        got = state_->socket.receive_from(buffer);
      } catch (const OSError& error) {
        if (error.errno_value() == ECONNREFUSED) continue;  // ICMP for an earlier reply
        throw;
      }
      std::vector<std::byte> datagram(buffer.begin(), buffer.begin() + got.size);
      if (state_->channels.count(got.from.to_string()) != 0) {
        state_->dispatch(std::move(datagram), got.from);
        continue;
      }
      if (!listen(*state_, *listener, std::move(datagram), got.from)) continue;
      state_->channels[listener->key] = listener.get();
      ++state_->statistics.channels_accepted;
      auto channel = std::make_shared<DtlsChannel>(std::move(listener));
      listener = make_listener(state_, server_ctx);
      nursery.start_soon([shared_handler, channel] {
        (*shared_handler)(*channel);
        channel->close();
      });
    }
  });
}

DtlsChannel DtlsEndpoint::connect(const SocketAddress& to, SslContext& client_ctx,
                                  std::string server_hostname) {
  if (!client_ctx.is_dtls() || !client_ctx.is_client()) {
    throw std::invalid_argument("DtlsEndpoint::connect: needs SslContext::dtls_client()");
  }
  const std::string key = to.to_string();
  if (state_->channels.count(key) != 0) {
    throw UsageError("DtlsEndpoint::connect: a channel to " + key + " exists already");
  }
  auto channel = std::make_unique<DtlsChannelState>(state_, to, client_ctx);
  const std::string host = server_hostname.empty() ? to.host() : server_hostname;
  SSL* ssl = channel->ssl.get();
  const bool ip = tls_internal::is_ip_address(host);
  bool ok = ip || SSL_set_tlsext_host_name(ssl, host.c_str()) == 1;
  if (client_ctx.verify_peer()) {
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    ok = ok && (ip ? X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str())
                   : X509_VERIFY_PARAM_set1_host(param, host.c_str(), host.size())) == 1;
  }
  if (!ok) throw SslError("DtlsEndpoint::connect: bad host name", openssl::drain_error_queue());
  state_->channels[key] = channel.get();
  return DtlsChannel(std::move(channel));
}

}  // namespace trellis
