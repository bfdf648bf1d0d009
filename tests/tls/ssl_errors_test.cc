// Every way a TLS handshake can be refused gets an SslError that names OpenSSL's reason, on
// the side that refused, and the other side is never left hanging: a wrong host name, an
// unknown CA, an expired certificate, no common protocol version, a missing client
// certificate (Trio's test_ssl.py: test_ssl_client_basics' "bad hostname" and "no CA" cases,
// plus what Python's ssl module reports for the others). Also: mutual TLS works, context
// configuration rejects bad PEM text, and a stream with the same seed makes the same bytes.
#include <gtest/gtest.h>
#include <openssl/err.h>

#include <array>
#include <chrono>
#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "../trio/autojump_fixture.h"
#include "trellis/fakes.h"
#include "trellis/fakes/tls.h"
#include "trellis/tls.h"
#include "trellis/trellis.h"

namespace trellis {
namespace {

std::span<const std::byte> b(std::string_view text) {
  return std::as_bytes(std::span(text.data(), text.size()));
}

struct Outcome {
  std::string client_error;  // "" if the client's handshake succeeded
  std::string server_error;
};

// Handshakes client and server over a memory stream pair; a side that fails closes its
// stream (as a handler would), so the other side sees the end of file, never a hang.
Outcome handshake(SslContext& client_context, SslContext& server_context,
                  const std::string& server_hostname) {
  Outcome outcome;
  run_autojump([&] {
    auto [a, b_side] = fakes::memory_stream_pair();
    SslStream client(std::make_unique<StapledStream>(std::move(a)), client_context,
                     {.server_hostname = server_hostname});
    SslStream server(std::make_unique<StapledStream>(std::move(b_side)), server_context,
                     {.server_side = true});
    auto side = [](SslStream& stream, std::string& error) {
      try {
        stream.do_handshake();
        // TLS 1.3: the server learns about a refused client certificate only when it reads.
        std::array<std::byte, 1> buffer;
        if (stream.options().server_side) stream.receive_some(buffer);
      } catch (const BrokenResourceError& e) {
        error = e.what();
      }
      stream.close();
    };
    open_nursery([&](Nursery& nursery) {
      nursery.start_soon([&] { side(client, outcome.client_error); });
      nursery.start_soon([&] { side(server, outcome.server_error); });
    });
  });
  return outcome;
}

struct Peers {
  fakes::TestCertificateAuthority ca;
  SslContext client = SslContext::client();
  SslContext server = SslContext::server();
};

TEST(SslErrors, WrongHostNameNamesTheMismatch) {
  Peers s;
  s.ca.issue_server_certificate({"localhost", "127.0.0.1"}).configure(s.server);
  s.ca.configure_trust(s.client);
  EXPECT_EQ(handshake(s.client, s.server, "localhost").client_error, "");
  EXPECT_EQ(handshake(s.client, s.server, "127.0.0.1").client_error, "");  // an IP SAN
  const Outcome wrong = handshake(s.client, s.server, "example.com");
  EXPECT_NE(wrong.client_error.find("certificate verify failed"), std::string::npos)
      << wrong.client_error;
  EXPECT_NE(wrong.client_error.find("hostname mismatch"), std::string::npos) << wrong.client_error;
  EXPECT_NE(wrong.server_error, "");  // the server saw the client go, did not hang
  const Outcome wrong_ip = handshake(s.client, s.server, "127.0.0.2");
  EXPECT_NE(wrong_ip.client_error.find("IP address mismatch"), std::string::npos)
      << wrong_ip.client_error;
}

TEST(SslErrors, UnknownCaIsRefused) {
  Peers s;
  fakes::TestCertificateAuthority other;
  s.ca.issue_server_certificate({"localhost"}).configure(s.server);
  other.configure_trust(s.client);
  const Outcome outcome = handshake(s.client, s.server, "localhost");
  EXPECT_NE(outcome.client_error.find("unable to get local issuer certificate"), std::string::npos)
      << outcome.client_error;
}

TEST(SslErrors, ExpiredCertificateIsRefused) {
  Peers s;
  s.ca.issue_server_certificate({"localhost"}, {.not_before = 946684800, .not_after = 946771200})
      .configure(s.server);
  s.ca.configure_trust(s.client);
  const Outcome outcome = handshake(s.client, s.server, "localhost");
  EXPECT_NE(outcome.client_error.find("certificate has expired"), std::string::npos)
      << outcome.client_error;
}

TEST(SslErrors, NoCommonProtocolVersionIsRefusedOnBothSides) {
  Peers s;
  s.ca.issue_server_certificate({"localhost"}).configure(s.server);
  s.ca.configure_trust(s.client);
  s.client.set_maximum_version(TlsVersion::kTls12);
  s.server.set_minimum_version(TlsVersion::kTls13);
  const Outcome outcome = handshake(s.client, s.server, "localhost");
  EXPECT_NE(outcome.server_error.find("unsupported protocol"), std::string::npos)
      << outcome.server_error;
  EXPECT_NE(outcome.client_error, "");
}

TEST(SslErrors, MutualTlsNeedsAClientCertificate) {
  Peers s;
  s.ca.issue_server_certificate({"localhost"}).configure(s.server);
  s.ca.configure_trust(s.client);
  s.ca.configure_trust(s.server);
  s.server.set_verify_peer(true);
  const Outcome without = handshake(s.client, s.server, "localhost");
  EXPECT_NE(without.server_error.find("peer did not return a certificate"), std::string::npos)
      << without.server_error;
  s.ca.issue_client_certificate({"client.example"}).configure(s.client);
  const Outcome with = handshake(s.client, s.server, "localhost");
  EXPECT_EQ(with.client_error, "");
  EXPECT_EQ(with.server_error.find("handshake"), std::string::npos) << with.server_error;
}

TEST(SslErrors, BadPemIsAClearErrorAndTheErrorQueueIsLeftEmpty) {
  SslContext context = SslContext::server();
  fakes::TestCertificateAuthority ca;
  const fakes::IssuedCertificate good = ca.issue_server_certificate({"localhost"});
  const fakes::IssuedCertificate other = ca.issue_server_certificate({"localhost"});
  EXPECT_THROW(context.load_certificate_chain("not pem", good.private_key_pem), SslError);
  EXPECT_THROW(context.load_certificate_chain(good.certificate_chain_pem, "not a key"), SslError);
  try {
    context.load_certificate_chain(good.certificate_chain_pem, other.private_key_pem);
    ADD_FAILURE() << "a key that does not match was accepted";
  } catch (const SslError& error) {
    EXPECT_NE(error.reason().find("values mismatch"), std::string::npos) << error.reason();
  }
  EXPECT_THROW(context.load_verify_locations("nothing here"), SslError);
  EXPECT_THROW(context.set_alpn_protocols({""}), std::invalid_argument);
  EXPECT_EQ(ERR_peek_error(), 0u);
  context.load_certificate_chain(good.certificate_chain_pem, good.private_key_pem);
}

// A Stream that records everything sent through it (into a string shared by both sides).
class RecordingStream final : public Stream {
 public:
  RecordingStream(std::unique_ptr<Stream> inner, std::string& wire, char tag)
      : inner_(std::move(inner)), wire_(wire), tag_(tag) {}
  void send_all(std::span<const std::byte> data) override {
    wire_ += tag_;
    wire_.append(reinterpret_cast<const char*>(data.data()), data.size());
    inner_->send_all(data);
  }
  void wait_send_all_might_not_block() override { inner_->wait_send_all_might_not_block(); }
  std::size_t receive_some(std::span<std::byte> buffer) override {
    return inner_->receive_some(buffer);
  }
  void close() override { inner_->close(); }

 private:
  std::unique_ptr<Stream> inner_;
  std::string& wire_;
  char tag_;
};

// The bytes both sides put on the wire for a CA, a handshake and one record, all made under
// DeterministicOpenSslRandom(seed).
std::string transcript(std::uint64_t seed) {
  DeterministicOpenSslRandom random(seed);
  fakes::TestCertificateAuthority ca;
  SslContext client = SslContext::client();
  SslContext server = SslContext::server();
  ca.issue_server_certificate({"localhost"}).configure(server);
  ca.configure_trust(client);
  std::string wire;
  run_autojump([&] {
    auto [a, b_side] = fakes::memory_stream_pair();
    SslStream c(
        std::make_unique<RecordingStream>(std::make_unique<StapledStream>(std::move(a)), wire, 'C'),
        client, {.server_hostname = "localhost"});
    SslStream s(std::make_unique<RecordingStream>(
                    std::make_unique<StapledStream>(std::move(b_side)), wire, 'S'),
                server, {.server_side = true});
    open_nursery([&](Nursery& nursery) {
      nursery.start_soon([&] { c.send_all(b("ping")); });
      nursery.start_soon([&] {
        std::array<std::byte, 4> buffer;
        s.receive_some(buffer);
        s.send_all(b("pong"));
      });
    });
  });
  EXPECT_GT(random.bytes_drawn(), 0u);
  EXPECT_GT(wire.size(), 1000u);
  return wire;
}

TEST(SslDeterminism, OneSeedMakesTheSameBytesOnTheWire) {
  const std::string first = transcript(7);
  // A second later on the wall clock: session tickets carry a creation time, which the
  // deterministic mode pins (else the two runs differ whenever a second ticks between them).
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  EXPECT_EQ(transcript(7), first);
  EXPECT_NE(transcript(8), first);
}

}  // namespace
}  // namespace trellis
