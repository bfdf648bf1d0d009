// trellis/scenarios/chat/chat_serve.h — the chat server as a real program: `trellis serve chat`.
//
//   trellis serve chat --options=port=7100,host=127.0.0.1
//   trellis serve chat --tls --tls_ca_out=/tmp/chat-ca.pem       # a generated test CA
//   trellis serve chat --tls --tls_cert=chain.pem --tls_key=key.pem
//
// Serves a ChatServer on host:port (port 0: any; the line printed says which) on the epoll
// backend until SIGINT, then returns 0. Production code only: the same ChatServer the
// simulator tests. With TLS (tls=on) every connection runs TLS (serve_ssl_over_tcp) with the
// certificate chain and key read from cert= and key= (PEM files), or, without them, with a
// certificate for localhost, 127.0.0.1 and host issued by a test CA made at start-up, whose
// certificate (what clients must trust) goes to the file ca_out= or, without it, to `out`
// before the banner.
#pragma once

#include <cstdio>
#include <map>
#include <string>

namespace trellis::scenarios::chat {

// Options: port (default 0), host (default 127.0.0.1), tls (default off), cert and key (PEM
// files; both or neither, only with tls=on), ca_out (a file for the generated test CA's
// certificate; only with tls=on and no cert). Throws std::invalid_argument for an unknown or
// inconsistent option, a bad port, or a certificate or key that cannot be read or used
// (naming OpenSSL's reason); OSError if the port cannot be bound.
int serve_chat(const std::map<std::string, std::string>& options, std::FILE* out);

// The option help of serve_chat.
std::map<std::string, std::string> serve_chat_option_help();

}  // namespace trellis::scenarios::chat
