// trellis/tls/ssl_context.h — SslContext: the TLS (or DTLS) configuration that streams share
// (an OpenSSL SSL_CTX; Python's ssl.SSLContext).
//
//   trellis::SslContext client = trellis::SslContext::client();   // verifies against system CAs
//   client.set_alpn_protocols({"h2", "http/1.1"});
//   trellis::SslStream stream(std::move(transport), client, {.server_hostname = "example.com"});
//
//   trellis::SslContext server = trellis::SslContext::server();
//   server.load_certificate_chain(chain_pem, key_pem);
//
// A handle: copies share one SSL_CTX (and its settings). Streams made from a context keep
// what they need of it alive, so a context may be destroyed before its streams. Configure a
// context before making streams from it; changing it later affects only later streams.
// Not thread-safe while being configured; safe to share between tasks afterwards. Nothing here
// blocks or is a checkpoint.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

typedef struct ssl_ctx_st SSL_CTX;

namespace trellis {

enum class TlsVersion { kTls12, kTls13 };

namespace tls_internal {
struct ContextState;
}

class SslContext {
 public:
  // A TLS client context as Python's ssl.create_default_context(): verifies the server's
  // certificate against the system's CAs and its host name against the stream's
  // server_hostname; TLS 1.2 at least. Throws SslError if OpenSSL cannot make one.
  static SslContext client();
  // A TLS server context: TLS 1.2 at least, no client certificate asked for. Load a
  // certificate chain before serving.
  static SslContext server();
  // The same over DTLS (DTLS 1.2), for DtlsEndpoint.
  static SslContext dtls_client();
  static SslContext dtls_server();

  // This side's certificate chain (PEM: the leaf first, then intermediates) and private key
  // (PEM). Throws SslError naming OpenSSL's reason if either does not parse or the key does
  // not match the certificate; the context is then unchanged.
  void load_certificate_chain(std::string_view pem_chain, std::string_view pem_private_key);
  // Trusts the CA certificates in pem_ca_certificates (one or more PEM certificates), in
  // addition to those already trusted. Throws SslError if one does not parse or there is none.
  void load_verify_locations(std::string_view pem_ca_certificates);
  // ALPN: a client offers these protocols in this order; a server picks the first of its own
  // list that the client offered (no ALPN if none matches: the handshake still succeeds).
  // Throws std::invalid_argument if a protocol is empty or longer than 255 bytes.
  void set_alpn_protocols(std::vector<std::string> protocols);
  // Client: verify the server's certificate (the default) or not. Server: ask for a client
  // certificate and fail the handshake if there is none or it does not verify (default off).
  void set_verify_peer(bool on);
  // The lowest / highest protocol version this context speaks. Throws SslError if OpenSSL
  // refuses (e.g. a TLS version on a DTLS context).
  void set_minimum_version(TlsVersion version);
  void set_maximum_version(TlsVersion version);
  // How many TLS 1.3 session tickets a server sends after each handshake (OpenSSL's default
  // is 2). Tickets travel after the server's handshake completes; 0 sends none.
  void set_num_tickets(std::size_t count);

  bool is_client() const noexcept;
  bool is_dtls() const noexcept;
  bool verify_peer() const noexcept;
  // The underlying SSL_CTX, for settings this class does not wrap. Owned by the context.
  SSL_CTX* native_handle() const noexcept;

  // Shared with the streams made from this context (internal).
  const std::shared_ptr<tls_internal::ContextState>& state() const noexcept { return state_; }

 private:
  explicit SslContext(std::shared_ptr<tls_internal::ContextState> state);
  // Invariant: never null.
  std::shared_ptr<tls_internal::ContextState> state_;
};

}  // namespace trellis
