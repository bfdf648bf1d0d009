// trellis/tls/openssl_handles.h — RAII owners for the OpenSSL objects the TLS target
// uses, and the one place OpenSSL's error queue is read.
//
// Every OpenSSL object Trellis creates is held by one of these unique_ptrs from the line that
// creates it, so an exception anywhere (a bad PEM, a failed handshake) frees it. Public so
// that code beside the TLS target (fakes' TestCertificateAuthority, tests) holds OpenSSL
// objects the same way.
//
//   trellis::openssl::X509Ptr certificate(PEM_read_bio_X509(bio.get(), nullptr, nullptr,
//                                                           nullptr));
#pragma once

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <string>
#include <string_view>

namespace trellis::openssl {

template <auto Free>
struct OpenSslDeleter {
  template <class T>
  void operator()(T* object) const noexcept {
    Free(object);
  }
};

using BioPtr = std::unique_ptr<BIO, OpenSslDeleter<BIO_free_all>>;
using SslPtr = std::unique_ptr<SSL, OpenSslDeleter<SSL_free>>;
using SslCtxPtr = std::unique_ptr<SSL_CTX, OpenSslDeleter<SSL_CTX_free>>;
using X509Ptr = std::unique_ptr<X509, OpenSslDeleter<X509_free>>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, OpenSslDeleter<EVP_PKEY_free>>;
using X509NamePtr = std::unique_ptr<X509_NAME, OpenSslDeleter<X509_NAME_free>>;
using X509ExtensionPtr = std::unique_ptr<X509_EXTENSION, OpenSslDeleter<X509_EXTENSION_free>>;
using Asn1IntegerPtr = std::unique_ptr<ASN1_INTEGER, OpenSslDeleter<ASN1_INTEGER_free>>;

// Takes every entry off this thread's OpenSSL error queue (leaving it empty) and returns their
// reason strings joined by "; " ("" if the queue was empty). Call it after every failed
// OpenSSL call, so that a stale entry never shows up in a later, unrelated error.
std::string drain_error_queue();

// A read-only memory BIO over text (which must outlive the BIO). Throws std::bad_alloc.
BioPtr memory_bio(std::string_view text);

// Everything written to a memory BIO, as a string.
std::string bio_contents(BIO* bio);

}  // namespace trellis::openssl
