#include "trellis/tls/ssl_tcp.h"

#include <stdexcept>
#include <utility>

#include "trellis/base/assert.h"
#include "trellis/io/serve_listeners.h"
#include "trellis/io/socket_stream.h"

namespace trellis {

std::unique_ptr<SslStream> SslListener::accept() {
  TRELLIS_ASSERT(accept_transport_ != nullptr);
  std::unique_ptr<Stream> transport = accept_transport_();
  TRELLIS_ASSERT(transport != nullptr);
  return std::make_unique<SslStream>(
      std::move(transport), context_,
      SslStream::Options{.server_side = true, .https_compatible = https_compatible_});
}

void SslListener::close() {
  TRELLIS_ASSERT(transport_ != nullptr);
  transport_->close();
}

void SslListener::check_arguments(bool have_transport) const {
  if (!have_transport) throw std::invalid_argument("SslListener: transport is null");
  if (context_.is_client()) {
    throw std::invalid_argument("SslListener: needs a server context (SslContext::server())");
  }
}

SslStream open_ssl_over_tcp_stream(const std::string& host, std::uint16_t port, SslContext& ctx,
                                   OpenSslOverTcpOptions options) {
  auto transport =
      std::make_unique<SocketStream>(open_tcp_stream(host, port, options.happy_eyeballs_delay));
  return SslStream(std::move(transport), ctx,
                   {.server_hostname = host, .https_compatible = options.https_compatible});
}

std::vector<std::unique_ptr<SslListener>> open_ssl_over_tcp_listeners(std::uint16_t port,
                                                                      SslContext& ctx,
                                                                      const std::string& host,
                                                                      bool https_compatible,
                                                                      int backlog) {
  std::vector<std::unique_ptr<SocketListener>> tcp = open_tcp_listeners(port, host, backlog);
  std::vector<std::unique_ptr<SslListener>> listeners;
  listeners.reserve(tcp.size());
  for (std::unique_ptr<SocketListener>& listener : tcp) {
    listeners.push_back(std::make_unique<SslListener>(std::move(listener), ctx, https_compatible));
  }
  return listeners;
}

void serve_ssl_over_tcp(std::function<void(SslStream&)> handler, std::uint16_t port,
                        SslContext& ctx, ServeTcpOptions options, bool https_compatible) {
  std::vector<std::unique_ptr<SslListener>> listeners =
      open_ssl_over_tcp_listeners(port, ctx, options.host, https_compatible, options.backlog);
  if (options.task_status != nullptr) {
    // The sockets listen already, so a client may connect as soon as this is reported.
    std::vector<SocketListener*> tcp;
    for (const std::unique_ptr<SslListener>& listener : listeners) {
      tcp.push_back(&listener->transport_listener_as<SocketListener>());
    }
    options.task_status->started(std::move(tcp));
  }
  serve_listeners<SslListener>(std::move(handler), std::move(listeners),
                               {.handler_nursery = options.handler_nursery});
}

}  // namespace trellis
