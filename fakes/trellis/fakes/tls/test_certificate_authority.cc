#include "trellis/fakes/tls/test_certificate_authority.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include <stdexcept>
#include <utility>

#include "trellis/base/assert.h"
#include "trellis/tls/openssl_random.h"
#include "trellis/tls/ssl_error.h"

namespace trellis::fakes {
namespace {

[[noreturn]] void fail(const std::string& what) {
  std::string reason = openssl::drain_error_queue();
  throw SslError("TestCertificateAuthority: " + what,
                 reason.empty() ? std::string("OpenSSL gave no reason") : reason);
}

openssl::PkeyPtr make_key() {
  openssl::PkeyPtr key(EVP_EC_gen("P-256"));
  if (key == nullptr) fail("key generation failed");
  return key;
}

bool is_ip_address(const std::string& text) {
  unsigned char buffer[16];
  return inet_pton(AF_INET, text.c_str(), buffer) == 1 ||
         inet_pton(AF_INET6, text.c_str(), buffer) == 1;
}

void add_extension(X509* certificate, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer, certificate, nullptr, nullptr, 0);
  openssl::X509ExtensionPtr extension(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str()));
  if (extension == nullptr || X509_add_ext(certificate, extension.get(), -1) != 1) {
    fail("bad extension " + value);
  }
}

// A certificate for subject_name with key's public half, serial and validity set, not signed.
openssl::X509Ptr make_certificate(EVP_PKEY* key, const std::string& organization,
                                  const std::string& common_name, std::uint64_t serial,
                                  const CertificateOptions& options) {
  openssl::X509Ptr certificate(X509_new());
  if (certificate == nullptr) fail("X509_new failed");
  X509* x = certificate.get();
  openssl::X509NamePtr name(X509_NAME_new());
  const auto* o = reinterpret_cast<const unsigned char*>(organization.c_str());
  const auto* cn = reinterpret_cast<const unsigned char*>(common_name.c_str());
  if (X509_set_version(x, 2) != 1 ||
      ASN1_INTEGER_set_uint64(X509_get_serialNumber(x), serial) != 1 || name == nullptr ||
      X509_NAME_add_entry_by_txt(name.get(), "O", MBSTRING_UTF8, o, -1, -1, 0) != 1 ||
      X509_NAME_add_entry_by_txt(name.get(), "CN", MBSTRING_UTF8, cn, -1, -1, 0) != 1 ||
      X509_set_subject_name(x, name.get()) != 1 || X509_set_pubkey(x, key) != 1 ||
      ASN1_TIME_set(X509_getm_notBefore(x), static_cast<time_t>(options.not_before)) == nullptr ||
      ASN1_TIME_set(X509_getm_notAfter(x), static_cast<time_t>(options.not_after)) == nullptr) {
    fail("building a certificate failed");
  }
  return certificate;
}

std::string to_pem(X509* certificate) {
  openssl::BioPtr out(BIO_new(BIO_s_mem()));
  if (out == nullptr || PEM_write_bio_X509(out.get(), certificate) != 1) fail("PEM failed");
  return openssl::bio_contents(out.get());
}

std::string to_pem(EVP_PKEY* key) {
  openssl::BioPtr out(BIO_new(BIO_s_mem()));
  if (out == nullptr ||
      PEM_write_bio_PrivateKey(out.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    fail("PEM failed");
  }
  return openssl::bio_contents(out.get());
}

}  // namespace

void IssuedCertificate::configure(SslContext& context) const {
  context.load_certificate_chain(certificate_chain_pem, private_key_pem);
}

TestCertificateAuthority::TestCertificateAuthority(std::string organization) {
  ::trellis::internal::use_run_randomness();  // made inside a World: keys from the world's seed
  ERR_clear_error();
  key_ = make_key();
  certificate_ = make_certificate(key_.get(), organization, organization + " root", 1, {});
  X509* x = certificate_.get();
  if (X509_set_issuer_name(x, X509_get_subject_name(x)) != 1) fail("issuer name");
  add_extension(x, x, NID_basic_constraints, "critical,CA:TRUE");
  add_extension(x, x, NID_key_usage, "critical,keyCertSign,cRLSign");
  add_extension(x, x, NID_subject_key_identifier, "hash");
  if (X509_sign(x, key_.get(), EVP_sha256()) <= 0) fail("signing the CA certificate failed");
  ca_certificate_pem_ = to_pem(x);
  TRELLIS_ASSERT(!ca_certificate_pem_.empty());
}

void TestCertificateAuthority::configure_trust(SslContext& context) const {
  context.load_verify_locations(ca_certificate_pem_);
}

IssuedCertificate TestCertificateAuthority::issue_server_certificate(
    std::vector<std::string> identities, CertificateOptions options) {
  if (identities.empty()) {
    throw std::invalid_argument("issue_server_certificate: needs at least one identity");
  }
  return issue(identities, options, true);
}

IssuedCertificate TestCertificateAuthority::issue_client_certificate(
    std::vector<std::string> identities, CertificateOptions options) {
  return issue(identities, options, false);
}

IssuedCertificate TestCertificateAuthority::issue(const std::vector<std::string>& identities,
                                                  const CertificateOptions& options, bool server) {
  ::trellis::internal::use_run_randomness();
  std::string alt_names;
  for (const std::string& identity : identities) {
    if (identity.empty() || identity.find_first_of(",\n") != std::string::npos) {
      throw std::invalid_argument("TestCertificateAuthority: bad identity '" + identity + "'");
    }
    alt_names += (alt_names.empty() ? "" : ",") +
                 std::string(is_ip_address(identity) ? "IP:" : "DNS:") + identity;
  }
  std::string common_name = options.common_name;
  if (common_name.empty()) common_name = identities.empty() ? "Trellis test client" : identities[0];
  ERR_clear_error();
  openssl::PkeyPtr key = make_key();
  openssl::X509Ptr certificate =
      make_certificate(key.get(), "Trellis test", common_name, next_serial_++, options);
  X509* x = certificate.get();
  if (X509_set_issuer_name(x, X509_get_subject_name(certificate_.get())) != 1) fail("issuer");
  add_extension(x, certificate_.get(), NID_basic_constraints, "critical,CA:FALSE");
  add_extension(x, certificate_.get(), NID_key_usage, "critical,digitalSignature");
  add_extension(x, certificate_.get(), NID_ext_key_usage, server ? "serverAuth" : "clientAuth");
  add_extension(x, certificate_.get(), NID_authority_key_identifier, "keyid:always");
  if (!alt_names.empty()) add_extension(x, certificate_.get(), NID_subject_alt_name, alt_names);
  if (X509_sign(x, key_.get(), EVP_sha256()) <= 0) fail("signing a certificate failed");
  return IssuedCertificate{.certificate_chain_pem = to_pem(x),
                           .private_key_pem = to_pem(key.get())};
}

}  // namespace trellis::fakes
