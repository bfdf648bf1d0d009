// trellis/tls.h — TLS for Trellis (target trellis::tls, which brings OpenSSL 3).
//
// tls/ssl_context.h     SslContext: the configuration (certificates, trust, ALPN, versions)
// tls/ssl_stream.h      SslStream: TLS over any Stream
// tls/ssl_listener.h    SslListener: TLS over any Listener
// tls/ssl_tcp.h         open_ssl_over_tcp_stream, open_ssl_over_tcp_listeners,
//                       serve_ssl_over_tcp
// tls/dtls_endpoint.h   DtlsEndpoint, DtlsChannel: DTLS over any UdpSocket
// tls/ssl_error.h       SslError: a TLS failure with OpenSSL's reason
// tls/openssl_random.h  DeterministicOpenSslRandom: OpenSSL's randomness from a seed
// tls/openssl_handles.h RAII owners for OpenSSL objects
#pragma once

#include "trellis/tls/dtls_endpoint.h"
#include "trellis/tls/openssl_handles.h"
#include "trellis/tls/openssl_random.h"
#include "trellis/tls/ssl_context.h"
#include "trellis/tls/ssl_error.h"
#include "trellis/tls/ssl_listener.h"
#include "trellis/tls/ssl_stream.h"
#include "trellis/tls/ssl_tcp.h"
