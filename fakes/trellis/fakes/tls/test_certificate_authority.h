// trellis/fakes/tls/test_certificate_authority.h — TestCertificateAuthority: a throwaway CA
// in memory that issues server and client certificates for tests (Python's trustme).
//
//   trellis::fakes::TestCertificateAuthority ca;
//   trellis::SslContext server = trellis::SslContext::server();
//   ca.issue_server_certificate({"localhost", "127.0.0.1"}).configure(server);
//   trellis::SslContext client = trellis::SslContext::client();
//   ca.configure_trust(client);
//   // A client stream with server_hostname "localhost" or "127.0.0.1" now verifies.
//
// Nothing touches the disk. Keys are ECDSA P-256 (fast to make). By default a certificate is
// valid from 2000-01-01 to 2100-01-01, fixed rather than "now", so that certificates (and so
// the bytes of a handshake) do not depend on the wall clock: under a
// DeterministicOpenSslRandom guard a CA and its certificates are the same in every run.
// Not thread-safe (one CA per test, or one per thread).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "trellis/tls/openssl_handles.h"
#include "trellis/tls/ssl_context.h"

namespace trellis::fakes {

// What a certificate says about itself, beyond its names.
struct CertificateOptions {
  // Validity, in seconds since 1970 (UTC). Defaults: 2000-01-01 and 2100-01-01.
  std::int64_t not_before = 946684800;
  std::int64_t not_after = 4102444800;
  // Common name of the subject; empty: the first identity (or "Trellis test client").
  std::string common_name{};
};

// A certificate and its key, as PEM text.
struct IssuedCertificate {
  std::string certificate_chain_pem;  // the leaf (issued directly by the CA: no intermediates)
  std::string private_key_pem;
  // context.load_certificate_chain(certificate_chain_pem, private_key_pem).
  void configure(SslContext& context) const;
};

class TestCertificateAuthority {
 public:
  // Makes the CA's key and self-signed certificate. Throws SslError if OpenSSL fails.
  explicit TestCertificateAuthority(std::string organization = "Trellis test CA");
  TestCertificateAuthority(const TestCertificateAuthority&) = delete;
  TestCertificateAuthority& operator=(const TestCertificateAuthority&) = delete;

  // The CA's certificate (PEM): what a peer must trust.
  const std::string& ca_certificate_pem() const noexcept { return ca_certificate_pem_; }
  // context.load_verify_locations(ca_certificate_pem()).
  void configure_trust(SslContext& context) const;

  // A certificate for serving TLS as each of identities: host names ("localhost",
  // "*.example.com") and IP addresses ("127.0.0.1", "::1"), all in its subjectAltName. Throws
  // std::invalid_argument if identities is empty or one is empty, SslError if OpenSSL fails.
  IssuedCertificate issue_server_certificate(std::vector<std::string> identities,
                                             CertificateOptions options = {});
  // A certificate for a client to present (extendedKeyUsage clientAuth); identities may be
  // empty. Throws as issue_server_certificate.
  IssuedCertificate issue_client_certificate(std::vector<std::string> identities = {},
                                             CertificateOptions options = {});

 private:
  IssuedCertificate issue(const std::vector<std::string>& identities,
                          const CertificateOptions& options, bool server);

  openssl::PkeyPtr key_;
  openssl::X509Ptr certificate_;
  std::string ca_certificate_pem_;
  // The next certificate's serial number (the CA's own is 1).
  std::uint64_t next_serial_ = 2;
};

}  // namespace trellis::fakes
