// trellis/tls/internal/ssl_failure.h — an OpenSSL failure of an SSL object as an SslError.
#pragma once

#include <openssl/ssl.h>

#include "trellis/tls/ssl_error.h"

namespace trellis::tls_internal {

// The reason of a failed SSL call (ssl_error from SSL_get_error): the error queue's reasons,
// then the verification result when the peer's certificate did not verify. Drains the queue.
SslError make_ssl_error(SSL* ssl, int ssl_error, const char* operation);

}  // namespace trellis::tls_internal
