#include "trellis/tls/internal/ssl_failure.h"

#include <openssl/err.h>
#include <openssl/x509.h>

#include <string>
#include <utility>

#include "trellis/tls/openssl_handles.h"

namespace trellis::tls_internal {

SslError make_ssl_error(SSL* ssl, int ssl_error, const char* operation) {
  const unsigned long first = ERR_peek_error();
  std::string reason = openssl::drain_error_queue();
  const bool eof_reason = ERR_GET_LIB(first) == ERR_LIB_SSL &&
                          ERR_GET_REASON(first) == SSL_R_UNEXPECTED_EOF_WHILE_READING;
  // OpenSSL 1.1 reports a transport EOF as SSL_ERROR_SYSCALL with nothing queued; 3.0 as
  // SSL_R_UNEXPECTED_EOF_WHILE_READING. One error for both.
  const bool eof_syscall = ssl_error == SSL_ERROR_SYSCALL && reason.empty();
  if (eof_syscall) reason = "unexpected eof while reading";
  const long verify = SSL_get_verify_result(ssl);
  if (verify != X509_V_OK) {
    reason += std::string(reason.empty() ? "" : ": ") + X509_verify_cert_error_string(verify);
  }
  if (reason.empty()) reason = "OpenSSL error " + std::to_string(ssl_error);
  return SslError(operation, std::move(reason), eof_reason || eof_syscall);
}

}  // namespace trellis::tls_internal
