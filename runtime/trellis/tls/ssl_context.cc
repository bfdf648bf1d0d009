#include "trellis/tls/ssl_context.h"

#include <openssl/err.h>
#include <openssl/pem.h>

#include <stdexcept>
#include <utility>

#include "trellis/base/assert.h"
#include "trellis/tls/internal/context_state.h"
#include "trellis/tls/openssl_handles.h"
#include "trellis/tls/openssl_random.h"
#include "trellis/tls/ssl_error.h"

namespace trellis {
namespace {

using tls_internal::ContextState;

[[noreturn]] void throw_context_error(const std::string& operation) {
  std::string reason = openssl::drain_error_queue();
  if (reason.empty()) reason = "OpenSSL gave no reason";
  throw SslError(operation, std::move(reason));
}

// Called by a server just before it encrypts a session ticket: under a
// DeterministicOpenSslRandom guard the session's creation time (time(NULL), inside the
// ticket) is pinned, so a deterministic run's bytes do not depend on the wall clock.
int pin_ticket_time(SSL* ssl, void*) {
  SSL_SESSION* session = SSL_get_session(ssl);
  if (DeterministicOpenSslRandom::active() && session != nullptr) {
    SSL_SESSION_set_time(session, DeterministicOpenSslRandom::kSessionTime);
  }
  return 1;
}

std::shared_ptr<ContextState> make_state(const SSL_METHOD* method, bool client, bool dtls) {
  ERR_clear_error();
  auto state = std::make_shared<ContextState>();
  state->ctx.reset(SSL_CTX_new(method));
  if (state->ctx == nullptr) throw_context_error("SSL_CTX_new failed");
  state->client = client;
  state->dtls = dtls;
  SSL_CTX* ctx = state->ctx.get();
  // Python's defaults: no compression, no renegotiation from clients; TLS 1.2 at least.
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  if (!dtls && SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
    throw_context_error("SSL_CTX_set_min_proto_version failed");
  }
  if (!client && SSL_CTX_set_session_ticket_cb(ctx, pin_ticket_time, nullptr, nullptr) != 1) {
    throw_context_error("SSL_CTX_set_session_ticket_cb failed");
  }
  if (client) {
    state->verify_peer = true;
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    // The system's CAs; a missing CA directory is not an error (then nothing is trusted).
    if (SSL_CTX_set_default_verify_paths(ctx) != 1) openssl::drain_error_queue();
  }
  TRELLIS_ASSERT(state->ctx != nullptr);
  return state;
}

int select_alpn(SSL*, const unsigned char** out, unsigned char* out_length,
                const unsigned char* offered, unsigned int offered_length, void* arg) {
  const auto* state = static_cast<const ContextState*>(arg);
  TRELLIS_ASSERT(state != nullptr && !state->client);
  for (const std::string& mine : state->alpn_protocols) {
    // offered: the client's wire-format list (length-prefixed strings).
    for (unsigned int i = 0; i < offered_length;) {
      const unsigned int length = offered[i];
      if (i + 1 + length > offered_length) break;  // malformed: OpenSSL rejects it anyway
      if (length == mine.size() &&
          mine.compare(0, length, reinterpret_cast<const char*>(offered + i + 1), length) == 0) {
        *out = offered + i + 1;
        *out_length = static_cast<unsigned char>(length);
        return SSL_TLSEXT_ERR_OK;
      }
      i += 1 + length;
    }
  }
  return SSL_TLSEXT_ERR_NOACK;  // no common protocol: go on without ALPN
}

int version_number(TlsVersion version, bool dtls) {
  if (dtls) return DTLS1_2_VERSION;  // DTLS 1.2 is the only DTLS both versions map to
  return version == TlsVersion::kTls13 ? TLS1_3_VERSION : TLS1_2_VERSION;
}

}  // namespace

SslContext::SslContext(std::shared_ptr<tls_internal::ContextState> state)
    : state_(std::move(state)) {
  TRELLIS_ASSERT(state_ != nullptr && state_->ctx != nullptr);
}

SslContext SslContext::client() {
  return SslContext(make_state(TLS_client_method(), true, false));
}
SslContext SslContext::server() {
  return SslContext(make_state(TLS_server_method(), false, false));
}
SslContext SslContext::dtls_client() {
  return SslContext(make_state(DTLS_client_method(), true, true));
}
SslContext SslContext::dtls_server() {
  return SslContext(make_state(DTLS_server_method(), false, true));
}

void SslContext::load_certificate_chain(std::string_view pem_chain,
                                        std::string_view pem_private_key) {
  ERR_clear_error();
  openssl::BioPtr chain_bio = openssl::memory_bio(pem_chain);
  openssl::X509Ptr leaf(PEM_read_bio_X509(chain_bio.get(), nullptr, nullptr, nullptr));
  if (leaf == nullptr) throw_context_error("load_certificate_chain: bad certificate");
  std::vector<openssl::X509Ptr> intermediates;
  // Bounded by the PEM text: each read consumes one certificate.
  while (openssl::X509Ptr next{PEM_read_bio_X509(chain_bio.get(), nullptr, nullptr, nullptr)}) {
    intermediates.push_back(std::move(next));
  }
  ERR_clear_error();  // the loop ends on "no start line": expected
  openssl::BioPtr key_bio = openssl::memory_bio(pem_private_key);
  openssl::PkeyPtr key(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr));
  if (key == nullptr) throw_context_error("load_certificate_chain: bad private key");
  if (X509_check_private_key(leaf.get(), key.get()) != 1) {
    throw_context_error("load_certificate_chain: the key does not match the certificate");
  }
  SSL_CTX* ctx = state_->ctx.get();
  if (SSL_CTX_use_certificate(ctx, leaf.get()) != 1 ||
      SSL_CTX_use_PrivateKey(ctx, key.get()) != 1 || SSL_CTX_clear_chain_certs(ctx) != 1) {
    throw_context_error("load_certificate_chain");
  }
  for (openssl::X509Ptr& certificate : intermediates) {
    // add0 takes ownership only on success.
    if (SSL_CTX_add0_chain_cert(ctx, certificate.get()) != 1) {
      throw_context_error("load_certificate_chain: chain certificate");
    }
    certificate.release();
  }
}

void SslContext::load_verify_locations(std::string_view pem_ca_certificates) {
  ERR_clear_error();
  openssl::BioPtr bio = openssl::memory_bio(pem_ca_certificates);
  std::vector<openssl::X509Ptr> certificates;
  while (openssl::X509Ptr next{PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)}) {
    certificates.push_back(std::move(next));
  }
  const std::string reason = openssl::drain_error_queue();
  if (certificates.empty()) {
    throw SslError("load_verify_locations: no certificate",
                   reason.empty() ? "no PEM certificate found" : reason);
  }
  X509_STORE* store = SSL_CTX_get_cert_store(state_->ctx.get());
  for (const openssl::X509Ptr& certificate : certificates) {
    if (X509_STORE_add_cert(store, certificate.get()) != 1) {
      throw_context_error("load_verify_locations");
    }
  }
}

void SslContext::set_alpn_protocols(std::vector<std::string> protocols) {
  std::string wire;
  for (const std::string& protocol : protocols) {
    if (protocol.empty() || protocol.size() > 255) {
      throw std::invalid_argument("set_alpn_protocols: a protocol name must be 1 to 255 bytes");
    }
    wire += static_cast<char>(protocol.size());
    wire += protocol;
  }
  SSL_CTX* ctx = state_->ctx.get();
  if (state_->client) {
    // Returns 0 on success (sic).
    if (SSL_CTX_set_alpn_protos(ctx, reinterpret_cast<const unsigned char*>(wire.data()),
                                static_cast<unsigned int>(wire.size())) != 0) {
      throw_context_error("set_alpn_protocols");
    }
  } else {
    state_->alpn_protocols = std::move(protocols);
    SSL_CTX_set_alpn_select_cb(ctx, select_alpn, state_.get());
  }
}

void SslContext::set_verify_peer(bool on) {
  state_->verify_peer = on;
  int mode = SSL_VERIFY_NONE;
  if (on)
    mode = state_->client ? SSL_VERIFY_PEER : SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
  SSL_CTX_set_verify(state_->ctx.get(), mode, nullptr);
}

void SslContext::set_minimum_version(TlsVersion version) {
  ERR_clear_error();
  if (SSL_CTX_set_min_proto_version(state_->ctx.get(), version_number(version, state_->dtls)) !=
      1) {
    throw_context_error("set_minimum_version");
  }
}

void SslContext::set_maximum_version(TlsVersion version) {
  ERR_clear_error();
  if (SSL_CTX_set_max_proto_version(state_->ctx.get(), version_number(version, state_->dtls)) !=
      1) {
    throw_context_error("set_maximum_version");
  }
}

void SslContext::set_num_tickets(std::size_t count) {
  ERR_clear_error();
  if (SSL_CTX_set_num_tickets(state_->ctx.get(), count) != 1) {
    throw_context_error("set_num_tickets");
  }
}

bool SslContext::is_client() const noexcept {
  return state_->client;
}
bool SslContext::is_dtls() const noexcept {
  return state_->dtls;
}
bool SslContext::verify_peer() const noexcept {
  return state_->verify_peer;
}
SSL_CTX* SslContext::native_handle() const noexcept {
  return state_->ctx.get();
}

}  // namespace trellis
