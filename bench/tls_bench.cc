// TLS on loopback: a Trellis TLS echo server (serve_ssl_over_tcp + SslStream, trellis::run on
// the epoll backend) beside a single-threaded Boost.Asio one (ssl::stream, callback style),
// on the same OpenSSL, the same certificate (a TestCertificateAuthority's) and the same
// protocol (TLS 1.3), both driven by the same Asio client, so the ratios compare servers.
//
//   build/release/bench/trellis_bench --benchmark_filter=Tls --benchmark_repetitions=3
//
// Groups:
//   TlsEcho       64-byte messages echoed back over established TLS connections; one
//                 iteration = one round trip per connection (1 connection: blocking
//                 write/read; 100: every connection writes, then the client's io_context
//                 runs until every echo is back). Counter round_trips (per second).
//   TlsHandshake  one iteration = a new TCP connection, a full TLS handshake (no session
//                 resumption), one 64-byte round trip (so the server finished its side too)
//                 and a close (without close_notify). Counter handshakes (per second).
//                 TrellisHttpsCompatible: the Trellis server with https_compatible streams,
//                 for which that close is a clean end of file rather than an SslError.
// Both report server_cpu_per_op: the server thread's CPU time per round trip / handshake.
//
// Debian's Boost 1.74 Asio under g++ 12 in C++20 mode needs <utility> before
// <boost/asio.hpp>.
#include <utility>
// (Keep <utility> first: see above.)
#include <benchmark/benchmark.h>

#include <array>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <cstdint>
#include <cstdio>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tcp_bench.h"
#include "trellis/fakes/tls.h"
#include "trellis/tls.h"
#include "trellis/trellis.h"

namespace trellis_bench {
namespace {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using asio::ip::tcp;

constexpr std::size_t kMessageSize = 64;

struct Pki {
  trellis::fakes::TestCertificateAuthority ca;
  trellis::fakes::IssuedCertificate certificate = ca.issue_server_certificate({"localhost"});
};

Pki& pki() {
  static Pki instance;
  return instance;
}

// The Trellis server's context, made before the server thread starts (a base class that
// comes first: base-from-member).
struct TrellisTlsContext {
  TrellisTlsContext() { pki().certificate.configure(context); }
  trellis::SslContext context = trellis::SslContext::server();
};

// https_compatible: the streams treat a peer that closes without close_notify as a clean end
// of file (as the Asio server's sessions do: any error ends them) instead of an SslError.
template <bool https_compatible>
class TrellisTlsServerOf final : private TrellisTlsContext, public TrellisServerThread {
 public:
  TrellisTlsServerOf()
      : TrellisServerThread([this](trellis::TaskStatus<Listeners>& status) {
          trellis::serve_ssl_over_tcp(trellis_echo<trellis::SslStream>, 0, context,
                                      {.host = "127.0.0.1", .task_status = &status},
                                      https_compatible);
        }) {}
};
using TrellisTlsServer = TrellisTlsServerOf<false>;
using TrellisHttpsCompatibleTlsServer = TrellisTlsServerOf<true>;

// Asio: handshake, then read -> write -> read callbacks, one session object per connection.
class AsioTlsSession : public std::enable_shared_from_this<AsioTlsSession> {
 public:
  AsioTlsSession(tcp::socket socket, ssl::context& context) : stream_(std::move(socket), context) {}
  void start() {
    stream_.async_handshake(ssl::stream_base::server,
                            [self = shared_from_this()](boost::system::error_code error) {
                              if (!error) self->read();
                            });
  }

 private:
  void read() {
    stream_.async_read_some(
        asio::buffer(buffer_),
        [self = shared_from_this()](boost::system::error_code error, std::size_t n) {
          if (!error) self->write(n);
        });
  }
  void write(std::size_t n) {
    asio::async_write(stream_, asio::buffer(buffer_.data(), n),
                      [self = shared_from_this()](boost::system::error_code error, std::size_t) {
                        if (!error) self->read();
                      });
  }

  ssl::stream<tcp::socket> stream_;
  std::array<char, kEchoBufferSize> buffer_;
};

class AsioTlsServer final : public ServerThread {
 public:
  AsioTlsServer() {
    const Pki& p = pki();
    context_.set_options(ssl::context::default_workarounds | ssl::context::no_compression);
    context_.use_certificate_chain(asio::buffer(p.certificate.certificate_chain_pem));
    context_.use_private_key(asio::buffer(p.certificate.private_key_pem), ssl::context::pem);
    start([this] {
      try {
        acceptor_.emplace(io_, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
        accept();
        ready_.set_value(acceptor_->local_endpoint().port());
      } catch (...) {
        ready_.set_exception(std::current_exception());
        return;
      }
      io_.run();
    });
  }
  ~AsioTlsServer() {
    io_.stop();
    join();
  }

 private:
  void accept() {
    acceptor_->async_accept([this](boost::system::error_code error, tcp::socket socket) {
      if (error) return;
      socket.set_option(tcp::no_delay(true));  // as SocketStream does
      std::make_shared<AsioTlsSession>(std::move(socket), context_)->start();
      accept();
    });
  }

  asio::io_context io_{1};
  ssl::context context_{ssl::context::tls_server};
  std::optional<tcp::acceptor> acceptor_;
};

// The load: Asio TLS client connections in the benchmark thread.
class TlsClient {
 public:
  explicit TlsClient(std::uint16_t port) : port_(port) {
    context_.add_certificate_authority(asio::buffer(pki().ca.ca_certificate_pem()));
    context_.set_verify_mode(ssl::verify_peer);
    message_.fill('x');
  }

  // A new connection, handshaken (verifying "localhost").
  std::unique_ptr<ssl::stream<tcp::socket>> connect() {
    auto stream = std::make_unique<ssl::stream<tcp::socket>>(io_, context_);
    stream->lowest_layer().connect(tcp::endpoint(asio::ip::address_v4::loopback(), port_));
    stream->lowest_layer().set_option(tcp::no_delay(true));
    stream->set_verify_callback(ssl::host_name_verification("localhost"));
    stream->handshake(ssl::stream_base::client);
    return stream;
  }

  void round_trip(ssl::stream<tcp::socket>& stream) {
    asio::write(stream, asio::buffer(message_));
    asio::read(stream, asio::buffer(reply_));
  }

  // One round trip on every connection at once.
  void round_trips(std::vector<std::unique_ptr<ssl::stream<tcp::socket>>>& streams) {
    std::vector<std::array<char, kMessageSize>> replies(streams.size());
    for (std::size_t i = 0; i < streams.size(); ++i) {
      ssl::stream<tcp::socket>& stream = *streams[i];
      asio::async_write(
          stream, asio::buffer(message_),
          [&stream, &reply = replies[i]](boost::system::error_code error, std::size_t) {
            if (error) throw boost::system::system_error(error);
            asio::async_read(stream, asio::buffer(reply),
                             [](boost::system::error_code e, std::size_t) {
                               if (e) throw boost::system::system_error(e);
                             });
          });
    }
    io_.run();
    io_.restart();
  }

 private:
  asio::io_context io_{1};
  ssl::context context_{ssl::context::tls_client};
  std::uint16_t port_;
  std::array<char, kMessageSize> message_{};
  std::array<char, kMessageSize> reply_{};
};

template <class Server>
void tls_echo(benchmark::State& state) {
  const auto connections = static_cast<std::size_t>(state.range(0));
  try {
    Server server;
    TlsClient client(server.port());
    std::vector<std::unique_ptr<ssl::stream<tcp::socket>>> streams;
    for (std::size_t i = 0; i < connections; ++i) streams.push_back(client.connect());
    client.round_trips(streams);  // warm-up: every server handler is past its handshake
    measure_round_trips(state, server, connections, "server_cpu_per_op", [&] {
      if (connections == 1) {
        client.round_trip(*streams[0]);
      } else {
        client.round_trips(streams);
      }
    });
  } catch (const std::exception& error) {
    state.SkipWithError(error.what());
  }
}

template <class Server>
void tls_handshake(benchmark::State& state) {
  try {
    Server server;
    TlsClient client(server.port());
    const double cpu_before = server.cpu_seconds();
    for (auto _ : state) {
      std::unique_ptr<ssl::stream<tcp::socket>> stream = client.connect();
      client.round_trip(*stream);
      stream->lowest_layer().close();
    }
    const double cpu_used = server.cpu_seconds() - cpu_before;
    const auto handshakes = static_cast<double>(state.iterations());
    state.counters["handshakes"] = benchmark::Counter(handshakes, benchmark::Counter::kIsRate);
    state.counters["server_cpu_per_op"] = cpu_used / handshakes;
  } catch (const std::exception& error) {
    state.SkipWithError(error.what());
  }
}

void BM_Trellis_TlsEcho(benchmark::State& state) {
  tls_echo<TrellisTlsServer>(state);
}
BENCHMARK(BM_Trellis_TlsEcho)->ArgName("connections")->Arg(1)->Arg(100)->UseRealTime();
void BM_Asio_TlsEcho(benchmark::State& state) {
  tls_echo<AsioTlsServer>(state);
}
BENCHMARK(BM_Asio_TlsEcho)->ArgName("connections")->Arg(1)->Arg(100)->UseRealTime();
void BM_Trellis_TlsHandshake(benchmark::State& state) {
  tls_handshake<TrellisTlsServer>(state);
}
BENCHMARK(BM_Trellis_TlsHandshake)->UseRealTime();
// The same with https_compatible streams: the client's close without close_notify ends the
// handler's receive_some with 0, not with an SslError (each connection then costs one C++
// exception fewer).
void BM_TrellisHttpsCompatible_TlsHandshake(benchmark::State& state) {
  tls_handshake<TrellisHttpsCompatibleTlsServer>(state);
}
BENCHMARK(BM_TrellisHttpsCompatible_TlsHandshake)->UseRealTime();
void BM_Asio_TlsHandshake(benchmark::State& state) {
  tls_handshake<AsioTlsServer>(state);
}
BENCHMARK(BM_Asio_TlsHandshake)->UseRealTime();

}  // namespace
}  // namespace trellis_bench
