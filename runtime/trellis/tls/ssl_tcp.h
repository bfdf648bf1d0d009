// trellis/tls/ssl_tcp.h — TLS over TCP in one call (Trio's open_ssl_over_tcp_stream,
// open_ssl_over_tcp_listeners, serve_ssl_over_tcp).
//
//   trellis::SslContext context = trellis::SslContext::client();
//   trellis::SslStream stream = trellis::open_ssl_over_tcp_stream("example.com", 443, context);
//
//   // A TLS echo server on port 8443 (every interface):
//   trellis::serve_ssl_over_tcp([](trellis::SslStream& s) { echo(s); }, 8443, server_context);
//
// They run over the run's NetworkFacet, so they work on the epoll backend and in a World.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "trellis/io/tcp.h"
#include "trellis/tls/ssl_listener.h"
#include "trellis/tls/ssl_stream.h"

namespace trellis {

struct OpenSslOverTcpOptions {
  bool https_compatible = false;
  Duration happy_eyeballs_delay = kHappyEyeballsDelayDefault;
};

// open_tcp_stream(host, port), wrapped in a client SslStream whose server_hostname is host.
// Does not handshake (the first I/O does; call do_handshake() to fail early). Blocks; a
// checkpoint. Throws what open_tcp_stream and the SslStream constructor throw.
SslStream open_ssl_over_tcp_stream(const std::string& host, std::uint16_t port, SslContext& ctx,
                                   OpenSslOverTcpOptions options = {});

// open_tcp_listeners(port, host, backlog), each wrapped in an SslListener. Not a checkpoint
// unless host must be resolved. Throws what open_tcp_listeners throws.
std::vector<std::unique_ptr<SslListener>> open_ssl_over_tcp_listeners(
    std::uint16_t port, SslContext& ctx, const std::string& host = "",
    bool https_compatible = false, int backlog = kListenBacklogMax);

// open_ssl_over_tcp_listeners + serve_listeners: handler(stream) runs in a new task for every
// connection (the stream is closed after it returns). options.task_status reports the TCP
// listeners under TLS (read local_address().port()). Never returns normally; cancel it to
// stop. Blocks; a checkpoint.
void serve_ssl_over_tcp(std::function<void(SslStream&)> handler, std::uint16_t port,
                        SslContext& ctx, ServeTcpOptions options = {},
                        bool https_compatible = false);

}  // namespace trellis
