// tests/tls/dtls_world.h — the simulated world that the DTLS tests (dtls_test,
// dtls_hostile_test) and the DTLS fuzzer (tools/fuzz/dtls_fuzzer.cc) share: a server host
// echoing DTLS datagrams, a client host, an attacker host, certificates from a test CA, and
// OpenSSL's randomness from the seed, so one seed is one run.
//
//   trellis::dtls_testing::DtlsWorld w(trellis::sim::Config{.seed = seed});
//   w.start_echo_server();
//   const bool done = w.run_client([&] {
//     trellis::DtlsEndpoint endpoint(trellis::UdpSocket(AF_INET));
//     trellis::DtlsChannel channel = endpoint.connect(w.server_address(), w.client_context());
//     channel.send(trellis::dtls_testing::bytes("hello"));
//     ...
//   }, std::chrono::seconds(200));
//
// Header-only test support (it needs trellis::tls, trellis::fakes_tls and trellis::sim).
#pragma once

#include <sys/socket.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "trellis/fakes/tls.h"
#include "trellis/sim.h"
#include "trellis/tls.h"
#include "trellis/trellis.h"

namespace trellis::dtls_testing {

inline std::vector<std::byte> bytes(std::string_view text) {
  const auto* data = reinterpret_cast<const std::byte*>(text.data());
  return std::vector<std::byte>(data, data + text.size());
}

inline std::string text(const std::vector<std::byte>& datagram) {
  return std::string(reinterpret_cast<const char*>(datagram.data()), datagram.size());
}

// Sends every datagram back until the channel ends: closed by the peer or failed
// (SslError is a BrokenResourceError); the endpoint goes on serving the others.
inline void echo(DtlsChannel& channel) {
  try {
    for (;;) channel.send(channel.receive());
  } catch (const BrokenResourceError&) {
    // This channel is over.
  }
}

// A real ClientHello, from a DTLS client (of client_ctx) that talks to a socket of our own
// bound to spy (which nobody answers). Blocks until the first datagram arrives.
inline std::vector<std::byte> capture_client_hello(SslContext& client_ctx,
                                                   const SocketAddress& spy_address) {
  UdpSocket spy = UdpSocket::bind(spy_address);
  std::vector<std::byte> hello(65536);
  open_nursery([&](Nursery& nursery) {
    nursery.start_soon([&] {
      DtlsEndpoint endpoint(UdpSocket(AF_INET));
      DtlsChannel channel = endpoint.connect(spy.local_address(), client_ctx);
      channel.do_handshake();  // never completes: cancelled below
    });
    hello.resize(spy.receive_from(hello).size);
    nursery.cancel_scope().cancel();
  });
  return hello;
}

class DtlsWorld {
 public:
  static constexpr const char* kServerIp = "10.0.0.1";
  static constexpr const char* kClientIp = "10.0.0.2";
  static constexpr const char* kAttackerIp = "10.0.0.3";
  static constexpr std::uint16_t kPort = 4433;

  // The world of config (its seed also seeds OpenSSL, the CA included), with its three hosts.
  explicit DtlsWorld(const sim::Config& config)
      : random_(config.seed),
        certificate_(ca_.issue_server_certificate({kServerIp})),
        world_(config),
        server_(world_.add_host("server", kServerIp)),
        client_(world_.add_host("client", kClientIp)),
        attacker_(world_.add_host("attacker", kAttackerIp)) {
    certificate_.configure(server_context_);
    ca_.configure_trust(client_context_);
  }
  DtlsWorld(const DtlsWorld&) = delete;
  DtlsWorld& operator=(const DtlsWorld&) = delete;

  sim::World& world() { return world_; }
  sim::Host& server() { return server_; }
  sim::Host& client() { return client_; }
  sim::Host& attacker() { return attacker_; }
  SslContext& server_context() { return server_context_; }
  SslContext& client_context() { return client_context_; }
  static SocketAddress server_address() { return *SocketAddress::parse(kServerIp, kPort); }

  // Starts the server host: a DtlsEndpoint on kServerIp:kPort serving echo.
  void start_echo_server() {
    server_.start([this] {
      DtlsEndpoint endpoint(UdpSocket::bind(server_address()));
      endpoint.serve(server_context_, echo);
    });
  }

  // Starts body on the client host and runs the world until body returns (true) or
  // time_max of virtual time went by (false). body's exceptions fail the run.
  bool run_client(std::function<void()> body, Duration time_max) {
    bool done = false;
    client_.start([&done, body = std::move(body)] {
      body();
      done = true;
    });
    world_.run([&] {
      const Time deadline = current_time() + time_max;
      // Bounded by time_max: one virtual second per turn.
      while (!done && current_time() < deadline) sleep(std::chrono::seconds(1));
    });
    return done;
  }

 private:
  // First: everything below draws OpenSSL's randomness from the seed.
  DeterministicOpenSslRandom random_;
  fakes::TestCertificateAuthority ca_;
  fakes::IssuedCertificate certificate_;
  SslContext server_context_ = SslContext::dtls_server();
  SslContext client_context_ = SslContext::dtls_client();
  sim::World world_;
  sim::Host& server_;
  sim::Host& client_;
  sim::Host& attacker_;
};

}  // namespace trellis::dtls_testing
