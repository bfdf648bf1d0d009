// trellis/tls/internal/context_state.h — what an SslContext and the streams made from it
// share: the SSL_CTX and the ALPN list its selection callback reads.
#pragma once

#include <string>
#include <vector>

#include "trellis/tls/openssl_handles.h"

namespace trellis::tls_internal {

struct ContextState {
  // Invariant: never null.
  openssl::SslCtxPtr ctx;
  bool client = true;
  bool dtls = false;
  bool verify_peer = false;
  // A server's ALPN preference order; the SSL_CTX's select callback points at this state,
  // which every stream keeps alive (shared_ptr) for as long as its SSL object lives.
  std::vector<std::string> alpn_protocols;
};

}  // namespace trellis::tls_internal
