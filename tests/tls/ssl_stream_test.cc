// Ports of Trio's src/trio/_tests/test_ssl.py that apply to C++: SSLStream over memory and
// lockstep streams (test_SSLStream_generic's check_two_way_stream), TLS 1.2 and 1.3, the
// handshake done lazily or explicitly (test_ssl_client_basics, test_ssl_server_basics),
// certificate and host name failures, close_notify and ragged EOFs (test_closing_nice_case,
// test_https_mode_eof_before_handshake, test_ssl_https_compatibility_disagreement),
// unwrap (test_unwrap), concurrent-call detection (test_send_all_conflict...), and
// cancellation during the handshake and during send_all (test_ssl_handshake_failure_during_
// aclose, "a cancelled send breaks the stream"). Trio's PyOpenSSLEchoStream tests exercise
// Python's ssl quirks that OpenSSL's C API does not have; they are not ported.
#include <gtest/gtest.h>

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "../trio/autojump_fixture.h"
#include "trellis/fakes.h"
#include "trellis/fakes/tls.h"
#include "trellis/tls.h"
#include "trellis/trellis.h"

namespace trellis {
namespace {

using namespace std::chrono_literals;

constexpr const char* kHostname = "trellis-sslstream-test.example.org";

std::span<const std::byte> b(std::string_view text) {
  return std::as_bytes(std::span(text.data(), text.size()));
}

std::string receive_text(Stream& stream, std::size_t max = 4096) {
  std::vector<std::byte> buffer(max);
  const std::size_t n = stream.receive_some(buffer);
  return std::string(reinterpret_cast<const char*>(buffer.data()), n);
}

// Receives until `size` bytes came (or end of file).
std::string receive_exactly(Stream& stream, std::size_t size) {
  std::string text;
  while (text.size() < size) {
    std::string part = receive_text(stream, size - text.size());
    if (part.empty()) break;
    text += part;
  }
  return text;
}

fakes::TestCertificateAuthority& ca() {
  static fakes::TestCertificateAuthority authority;
  return authority;
}

struct Contexts {
  SslContext client = SslContext::client();
  SslContext server = SslContext::server();
};

Contexts make_contexts(TlsVersion version) {
  Contexts contexts;
  ca().issue_server_certificate({kHostname}).configure(contexts.server);
  ca().configure_trust(contexts.client);
  contexts.client.set_maximum_version(version);
  return contexts;
}

using SslPair = std::pair<std::unique_ptr<SslStream>, std::unique_ptr<SslStream>>;

SslPair wrap_pair(std::pair<StapledStream, StapledStream> raw, Contexts& contexts,
                  SslStream::Options client_options = {.server_hostname = kHostname},
                  SslStream::Options server_options = {.server_side = true}) {
  return {std::make_unique<SslStream>(std::make_unique<StapledStream>(std::move(raw.first)),
                                      contexts.client, std::move(client_options)),
          std::make_unique<SslStream>(std::make_unique<StapledStream>(std::move(raw.second)),
                                      contexts.server, std::move(server_options))};
}

SslPair ssl_memory_stream_pair(Contexts& contexts) {
  return wrap_pair(fakes::memory_stream_pair(), contexts);
}

// Both sides handshake, concurrently.
void handshake_both(SslStream& client, SslStream& server) {
  open_nursery([&](Nursery& nursery) {
    nursery.start_soon([&] { client.do_handshake(); });
    nursery.start_soon([&] { server.do_handshake(); });
  });
}

class SslStreamVersions : public ::testing::TestWithParam<TlsVersion> {};

INSTANTIATE_TEST_SUITE_P(Tls, SslStreamVersions,
                         ::testing::Values(TlsVersion::kTls12, TlsVersion::kTls13),
                         [](const auto& info) {
                           return info.param == TlsVersion::kTls12 ? "Tls12" : "Tls13";
                         });

TEST_P(SslStreamVersions, EchoWithLazyHandshakeAlpnAndPeerCertificate) {
  Contexts contexts = make_contexts(GetParam());
  contexts.client.set_alpn_protocols({"h2", "http/1.1"});
  contexts.server.set_alpn_protocols({"http/1.1", "spdy"});
  run_autojump([&] {
    auto [client, server] = ssl_memory_stream_pair(contexts);
    EXPECT_EQ(client->version(), std::nullopt);
    EXPECT_EQ(client->peer_certificate_pem(), std::nullopt);
    open_nursery([&](Nursery& nursery) {
      nursery.start_soon([&] {
        client->send_all(b("hello"));  // handshakes first
        EXPECT_EQ(receive_exactly(*client, 5), "HELLO");
      });
      nursery.start_soon([&] {
        EXPECT_EQ(receive_exactly(*server, 5), "hello");
        server->send_all(b("HELLO"));
      });
    });
    const std::string expected = GetParam() == TlsVersion::kTls12 ? "TLSv1.2" : "TLSv1.3";
    EXPECT_EQ(client->version(), expected);
    EXPECT_EQ(server->version(), expected);
    EXPECT_EQ(client->selected_alpn_protocol(), "http/1.1");
    EXPECT_EQ(server->selected_alpn_protocol(), "http/1.1");
    ASSERT_TRUE(client->peer_certificate_pem().has_value());
    EXPECT_NE(client->peer_certificate_pem()->find("BEGIN CERTIFICATE"), std::string::npos);
    EXPECT_EQ(server->peer_certificate_pem(), std::nullopt);  // no client certificate asked
    client->do_handshake();                                   // idempotent once done
    client->close();
    EXPECT_EQ(receive_text(*server), "");  // close_notify: a clean end of file
    EXPECT_EQ(receive_text(*server), "");
    server->close();
    server->close();  // idempotent
    EXPECT_THROW(client->send_all(b("x")), ClosedResourceError);
  });
}

TEST_P(SslStreamVersions, PassesTheTwoWayStreamChecksOverMemoryAndLockstepStreams) {
  Contexts contexts = make_contexts(GetParam());
  run_autojump([&] {
    fakes::check_two_way_stream(
        [&]() -> std::pair<std::unique_ptr<Stream>, std::unique_ptr<Stream>> {
          return ssl_memory_stream_pair(contexts);
        },
        [&]() -> std::pair<std::unique_ptr<Stream>, std::unique_ptr<Stream>> {
          // Handshake up front, as Trio's clogged maker: otherwise a receive_some that should
          // unclog a waiting sender would itself start the handshake and get stuck.
          SslPair pair = wrap_pair(fakes::lockstep_stream_pair(), contexts);
          handshake_both(*pair.first, *pair.second);
          return pair;
        });
  });
}

TEST_P(SslStreamVersions, HttpsCompatibleStreamsReadARaggedEofAsEof) {
  Contexts contexts = make_contexts(GetParam());
  run_autojump([&] {
    auto [client, server] = wrap_pair(fakes::memory_stream_pair(), contexts,
                                      {.server_hostname = kHostname, .https_compatible = true},
                                      {.server_side = true, .https_compatible = true});
    handshake_both(*client, *server);
    client->close();  // https_compatible: no close_notify, just the transport's EOF
    EXPECT_EQ(receive_text(*server), "");
    // Read as EOF, but the stream is still broken (a truncation is not a goodbye): what it
    // would send next has no one to go to.
    EXPECT_THROW(server->send_all(b("x")), BrokenResourceError);
  });
}

TEST(SslStream, RaggedEofIsAnErrorWithoutHttpsCompatible) {
  Contexts contexts = make_contexts(TlsVersion::kTls13);
  run_autojump([&] {
    auto [client, server] = ssl_memory_stream_pair(contexts);
    handshake_both(*client, *server);
    client->transport_stream().close();  // the peer vanishes without close_notify
    try {
      receive_text(*server);
      ADD_FAILURE() << "no error";
    } catch (const SslError& error) {
      EXPECT_TRUE(error.unexpected_eof()) << error.what();
      EXPECT_NE(error.reason().find("unexpected eof"), std::string::npos) << error.reason();
    }
    EXPECT_THROW(server->send_all(b("x")), BrokenResourceError);
  });
}

TEST(SslStream, HttpsCompatibleEofBeforeTheHandshakeIsEof) {
  Contexts contexts = make_contexts(TlsVersion::kTls13);
  run_autojump([&] {
    auto [client, server] =
        wrap_pair(fakes::memory_stream_pair(), contexts, {.server_hostname = kHostname},
                  {.server_side = true, .https_compatible = true});
    client->transport_stream().close();
    EXPECT_EQ(receive_text(*server), "");
  });
}

TEST(SslStream, UnwrapReturnsTheTransportAndTheBytesAfterCloseNotify) {
  Contexts contexts = make_contexts(TlsVersion::kTls13);
  run_autojump([&] {
    auto [client, server] = ssl_memory_stream_pair(contexts);
    open_nursery([&](Nursery& nursery) {
      nursery.start_soon([&] {
        client->send_all(b("x"));
        std::vector<std::byte> trailing;
        std::unique_ptr<Stream> raw = client->unwrap(&trailing);
        EXPECT_TRUE(trailing.empty());
        raw->send_all(b("plain text after TLS"));
        EXPECT_EQ(receive_exactly(*raw, 5), "reply");
      });
      nursery.start_soon([&] {
        EXPECT_EQ(receive_text(*server), "x");
        std::vector<std::byte> trailing;
        std::unique_ptr<Stream> raw = server->unwrap(&trailing);
        std::string text(reinterpret_cast<const char*>(trailing.data()), trailing.size());
        text += receive_exactly(*raw, 20 - text.size());
        EXPECT_EQ(text, "plain text after TLS");
        raw->send_all(b("reply"));
      });
    });
    EXPECT_THROW(client->send_all(b("x")), ClosedResourceError);
    EXPECT_THROW(client->transport_stream(), ClosedResourceError);
  });
}

TEST(SslStream, ConcurrentSendsOrReceivesAreBusyResourceErrors) {
  Contexts contexts = make_contexts(TlsVersion::kTls13);
  run_autojump([&] {
    auto [client, server] = wrap_pair(fakes::lockstep_stream_pair(), contexts);
    handshake_both(*client, *server);
    open_nursery([&](Nursery& nursery) {
      nursery.start_soon([&] { client->send_all(b("blocks: nobody receives yet")); });
      nursery.start_soon([&] {
        fakes::wait_all_tasks_blocked();
        EXPECT_THROW(client->send_all(b("x")), BusyResourceError);
        EXPECT_THROW(client->wait_send_all_might_not_block(), BusyResourceError);
        EXPECT_EQ(receive_exactly(*server, 27), "blocks: nobody receives yet");
      });
    });
    open_nursery([&](Nursery& nursery) {
      nursery.start_soon([&] { EXPECT_EQ(receive_text(*server), "late"); });
      nursery.start_soon([&] {
        fakes::wait_all_tasks_blocked();
        EXPECT_THROW(receive_text(*server), BusyResourceError);
        client->send_all(b("late"));
      });
    });
  });
}

TEST(SslStream, ACancelledHandshakeBreaksTheStream) {
  Contexts contexts = make_contexts(TlsVersion::kTls13);
  run_autojump([&] {
    auto [client, server] = ssl_memory_stream_pair(contexts);
    // The server never answers: the client's handshake waits until its deadline.
    move_on_after(1s, [&] { client->do_handshake(); });
    EXPECT_THROW(client->do_handshake(), BrokenResourceError);
    EXPECT_THROW(client->send_all(b("x")), BrokenResourceError);
    EXPECT_THROW(receive_text(*client), BrokenResourceError);
    client->close();  // closes the transport without a goodbye
    EXPECT_THROW(client->send_all(b("x")), ClosedResourceError);
  });
}

TEST(SslStream, ACancelledSendBreaksTheStreamNeverCorruptingIt) {
  Contexts contexts = make_contexts(TlsVersion::kTls12);
  run_autojump([&] {
    auto [client, server] = wrap_pair(fakes::lockstep_stream_pair(), contexts);
    handshake_both(*client, *server);
    move_on_after(1s, [&] { client->send_all(b("nobody reads this")); });
    EXPECT_THROW(client->send_all(b("x")), BrokenResourceError);
    EXPECT_THROW(client->wait_send_all_might_not_block(), BrokenResourceError);
  });
}

TEST(SslStream, ConcurrentHandshakesFromBothDirectionsShareOne) {
  Contexts contexts = make_contexts(TlsVersion::kTls13);
  run_autojump([&] {
    auto [client, server] = ssl_memory_stream_pair(contexts);
    open_nursery([&](Nursery& nursery) {
      nursery.start_soon([&] { client->do_handshake(); });
      nursery.start_soon([&] { client->do_handshake(); });
      nursery.start_soon([&] { client->send_all(b("abc")); });
      nursery.start_soon([&] { EXPECT_EQ(receive_exactly(*server, 3), "abc"); });
    });
  });
}

TEST(SslStream, TlsInsideTlsWorks) {
  Contexts contexts = make_contexts(TlsVersion::kTls13);
  run_autojump([&] {
    auto [outer_client, outer_server] = ssl_memory_stream_pair(contexts);
    SslStream client(std::move(outer_client), contexts.client, {.server_hostname = kHostname});
    SslStream server(std::move(outer_server), contexts.server, {.server_side = true});
    open_nursery([&](Nursery& nursery) {
      nursery.start_soon([&] { client.send_all(b("nested")); });
      nursery.start_soon([&] { EXPECT_EQ(receive_exactly(server, 6), "nested"); });
    });
  });
}

TEST(SslStream, MisuseIsAClearError) {
  Contexts contexts = make_contexts(TlsVersion::kTls13);
  auto [a, b_side] = fakes::memory_stream_pair();
  EXPECT_THROW(SslStream(nullptr, contexts.client, {.server_hostname = kHostname}),
               std::invalid_argument);
  EXPECT_THROW(SslStream(std::make_unique<StapledStream>(std::move(a)), contexts.client, {}),
               std::invalid_argument);  // verifying, but no host name to verify
  EXPECT_THROW(SslStream(std::make_unique<StapledStream>(std::move(b_side)), contexts.client,
                         {.server_side = true}),
               std::invalid_argument);
  run_autojump([&] {
    auto [client, server] = ssl_memory_stream_pair(contexts);
    std::vector<std::byte> empty;
    EXPECT_THROW(client->receive_some(empty), std::invalid_argument);
    SslStream moved = std::move(*client);
    EXPECT_THROW(client->send_all(b("x")), UsageError);
    client->close();  // a moved-from stream may be closed
  });
}

}  // namespace
}  // namespace trellis
