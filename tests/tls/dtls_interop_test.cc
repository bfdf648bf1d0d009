// DTLS against a peer no one here wrote: `openssl s_server -dtls1_2` and `openssl s_client
// -dtls1_2` on loopback with the real backend (Python's ssl module has no DTLS). Both
// directions: a Trellis DtlsEndpoint client against s_server, and s_client against a Trellis
// DtlsEndpoint::serve (so through our cookie exchange); each handshakes verifying the other's
// certificate (a TestCertificateAuthority's, written to a temporary directory for the
// CLI), exchanges several datagrams with exact contents, and closes with close_notify, which
// the other side sees. Each test is bounded by fail_after, and the openssl process is killed
// and reaped whatever happens (~Process). Skipped, saying why, when there is no `openssl`.
//
// The CLI peers are interactive: each line on their stdin is sent as one record (one
// datagram), each record received is written to their stdout, so the test relays for them.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "dtls_world.h"
#include "trellis/fakes/tls.h"
#include "trellis/tls.h"
#include "trellis/trellis.h"

namespace trellis {
namespace {

using namespace std::chrono_literals;

constexpr int kDatagrams = 5;
// Every wait on the openssl process or the network; loopback needs milliseconds.
constexpr Duration kStepTimeout = 30s;

std::span<const std::byte> b(std::string_view text) {
  return std::as_bytes(std::span(text.data(), text.size()));
}

using dtls_testing::text;

// The openssl binary, if PATH has one.
std::optional<std::string> find_openssl() {
  const char* path = std::getenv("PATH");
  std::string_view rest = path == nullptr ? "/usr/bin:/bin" : path;
  while (!rest.empty()) {
    const std::size_t colon = rest.find(':');
    const std::string dir(rest.substr(0, colon));
    rest = colon == std::string_view::npos ? std::string_view() : rest.substr(colon + 1);
    const std::string candidate = (dir.empty() ? "." : dir) + "/openssl";
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return std::nullopt;
}

// A temporary directory with the PEM files the CLI reads; removed with everything in it.
class PemDirectory {
 public:
  PemDirectory() {
    char name[] = "/tmp/trellis-dtls-XXXXXX";
    if (::mkdtemp(name) == nullptr) throw std::system_error(errno, std::generic_category());
    path_ = name;
  }
  ~PemDirectory() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  PemDirectory(const PemDirectory&) = delete;
  PemDirectory& operator=(const PemDirectory&) = delete;

  // Writes text to file `name` in the directory; returns its path.
  std::string write(const std::string& name, const std::string& text) const {
    const std::string file = path_ + "/" + name;
    std::ofstream(file) << text;
    return file;
  }

 private:
  std::string path_;
};

struct DtlsPki {
  fakes::TestCertificateAuthority ca;
  SslContext server = SslContext::dtls_server();
  SslContext client = SslContext::dtls_client();
  explicit DtlsPki(const std::string& server_identity = "127.0.0.1") {
    certificate = ca.issue_server_certificate({server_identity});
    certificate.configure(server);
    ca.configure_trust(client);
  }
  fakes::IssuedCertificate certificate;
};

// Reads the process's stdout into `output` until it holds `needle` after position `from`;
// returns where the needle starts. Fails the test if the stream ends first.
std::size_t read_until(PipeReceiveStream& stdout_stream, std::string& output,
                       std::string_view needle, std::size_t from = 0) {
  std::vector<std::byte> buffer(4096);
  for (;;) {
    const std::size_t at = output.find(needle, from);
    if (at != std::string::npos) return at;
    const std::size_t n = stdout_stream.receive_some(buffer);
    if (n == 0) {
      ADD_FAILURE() << "openssl's output ended before \"" << needle << "\":\n" << output;
      throw BrokenResourceError("openssl's output ended");
    }
    output.append(reinterpret_cast<const char*>(buffer.data()), n);
  }
}

#define TRELLIS_REQUIRE_OPENSSL(binary)                                           \
  const std::optional<std::string> binary = find_openssl();                       \
  if (!binary) {                                                                  \
    GTEST_SKIP() << "no `openssl` program in PATH (Debian: the openssl package)"; \
  }

// `openssl s_server -dtls1_2` on 127.0.0.1 (any port) for one client, with pki's certificate
// and `extra` options, once it listens (it prints "ACCEPT 127.0.0.1:<port>").
struct SServer {
  Process process;
  std::string output;  // what it printed so far
  std::uint16_t port = 0;
};

SServer start_s_server(const std::string& openssl, const DtlsPki& pki, const PemDirectory& dir,
                       const std::vector<std::string>& extra = {}) {
  std::vector<std::string> argv = {openssl,
                                   "s_server",
                                   "-dtls1_2",
                                   "-accept",
                                   "127.0.0.1:0",
                                   "-naccept",
                                   "1",
                                   "-cert",
                                   dir.write("cert.pem", pki.certificate.certificate_chain_pem),
                                   "-key",
                                   dir.write("key.pem", pki.certificate.private_key_pem)};
  argv.insert(argv.end(), extra.begin(), extra.end());
  SServer server{open_process(argv, {.stdin_mode = Stdio::kPipe,
                                     .stdout_mode = Stdio::kPipe,
                                     .stderr_mode = Stdio::kDevNull}),
                 {},
                 0};
  std::size_t accept = 0;
  fail_after(kStepTimeout, [&] {
    accept = read_until(*server.process.stdout_stream(), server.output, "ACCEPT ");
    read_until(*server.process.stdout_stream(), server.output, "\n", accept);
  });
  const std::size_t colon = server.output.find(':', accept);
  server.port = static_cast<std::uint16_t>(std::stoi(server.output.substr(colon + 1)));
  return server;
}

// A Trellis client (ciphertext MTU `mtu`) handshakes with s_server (verifying its certificate
// for 127.0.0.1), sends datagrams that s_server prints, receives the replies the test types
// into s_server, and closes: s_server sees close_notify ("DONE") and, with -naccept 1, exits 0.
void exchange_with_s_server(SServer& server, SslContext& client_ctx, std::size_t mtu) {
  PipeReceiveStream& out = *server.process.stdout_stream();
  DtlsEndpoint client(UdpSocket(AF_INET));
  DtlsChannel channel = client.connect(*SocketAddress::parse("127.0.0.1", server.port), client_ctx);
  channel.set_ciphertext_mtu(mtu);
  fail_after(kStepTimeout, [&] { channel.do_handshake(); });
  std::size_t seen = 0;
  for (int i = 0; i < kDatagrams; ++i) {
    const std::string request = "trellis datagram " + std::to_string(i) + "\n";
    const std::string reply = "s_server reply " + std::to_string(i) + "\n";
    fail_after(kStepTimeout, [&] {
      channel.send(b(request));
      seen = read_until(out, server.output, request, seen) + request.size();
      server.process.stdin_stream()->send_all(b(reply));  // one line: one record
      EXPECT_EQ(text(channel.receive()), reply);
    });
  }
  EXPECT_EQ(channel.statistics().handshake_retransmissions, 0u);  // loopback loses nothing
  channel.close();
  fail_after(kStepTimeout, [&] {
    read_until(out, server.output, "DONE", seen);  // s_server read our close_notify
    EXPECT_EQ(server.process.wait(), 0) << server.output;
  });
}

TEST(DtlsInterop, TrellisClientAgainstOpensslSServer) {
  TRELLIS_REQUIRE_OPENSSL(openssl);
  DtlsPki pki;
  PemDirectory dir;
  run([&] {
    SServer server = start_s_server(*openssl, pki, dir);
    exchange_with_s_server(server, pki.client, 1200);
  });
}

// Both sides fragment their handshake flights to fit a 300-byte MTU (ours:
// set_ciphertext_mtu; s_server's: -mtu), so each reassembles the other's fragments.
TEST(DtlsInterop, FragmentedHandshakeWithOpensslSServerAtA300ByteMtu) {
  TRELLIS_REQUIRE_OPENSSL(openssl);
  DtlsPki pki;
  PemDirectory dir;
  run([&] {
    SServer server = start_s_server(*openssl, pki, dir, {"-mtu", "300"});
    exchange_with_s_server(server, pki.client, 300);
  });
}

// A certificate that names another address: the Trellis client refuses s_server, with
// OpenSSL's reason in the SslError.
TEST(DtlsInterop, TrellisClientRefusesOpensslSServerWithAnotherAddressesCertificate) {
  TRELLIS_REQUIRE_OPENSSL(openssl);
  DtlsPki pki("10.9.9.9");
  PemDirectory dir;
  run([&] {
    SServer server = start_s_server(*openssl, pki, dir);
    DtlsEndpoint client(UdpSocket(AF_INET));
    DtlsChannel channel =
        client.connect(*SocketAddress::parse("127.0.0.1", server.port), pki.client);
    try {
      fail_after(kStepTimeout, [&] { channel.do_handshake(); });
      ADD_FAILURE() << "the handshake succeeded";
    } catch (const SslError& error) {
      EXPECT_NE(error.reason().find("IP address mismatch"), std::string::npos) << error.reason();
    }
    EXPECT_THROW(channel.send(b("x")), BrokenResourceError);
    server.process.kill();
    fail_after(kStepTimeout, [&] { server.process.wait(); });
  });
}

// s_client (verifying our certificate for 127.0.0.1 against the test CA) through our cookie
// exchange: each line the test types into it comes back upper-cased from a Trellis echo
// handler; after the last one the handler returns, the channel sends close_notify, and
// s_client exits 0.
TEST(DtlsInterop, OpensslSClientAgainstTrellisServer) {
  TRELLIS_REQUIRE_OPENSSL(openssl);
  DtlsPki pki;
  PemDirectory dir;
  const std::string ca_file = dir.write("ca.pem", pki.ca.ca_certificate_pem());
  int echoed = 0;
  bool handler_saw_close = false;
  auto echo_upper = [&](DtlsChannel& channel) {
    for (int i = 0; i < kDatagrams; ++i) {
      std::string datagram = text(channel.receive());
      for (char& c : datagram) {
        if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
      }
      channel.send(b(datagram));
      ++echoed;
    }
    handler_saw_close = true;  // returning closes the channel: close_notify
  };
  run([&] {
    DtlsEndpoint server(UdpSocket::bind(*SocketAddress::parse("127.0.0.1", 0)));
    const std::uint16_t port = server.socket().local_address().port();
    open_nursery([&](Nursery& nursery) {
      nursery.start_soon([&] { server.serve(pki.server, echo_upper); });
      Process client = open_process(
          {*openssl, "s_client", "-dtls1_2", "-connect", "127.0.0.1:" + std::to_string(port),
           "-CAfile", ca_file, "-verify_ip", "127.0.0.1", "-verify_return_error", "-quiet"},
          {.stdin_mode = Stdio::kPipe,
           .stdout_mode = Stdio::kPipe,
           .stderr_mode = Stdio::kDevNull});
      std::string output;
      std::size_t seen = 0;
      for (int i = 0; i < kDatagrams; ++i) {
        const std::string line = "datagram from s_client " + std::to_string(i) + "\n";
        const std::string upper = "DATAGRAM FROM S_CLIENT " + std::to_string(i) + "\n";
        fail_after(kStepTimeout, [&] {
          client.stdin_stream()->send_all(b(line));
          seen = read_until(*client.stdout_stream(), output, upper, seen) + upper.size();
        });
      }
      fail_after(kStepTimeout, [&] { EXPECT_EQ(client.wait(), 0) << output; });
      EXPECT_EQ(output.size(), seen) << "s_client printed more than the echoes:\n" << output;
      EXPECT_EQ(echoed, kDatagrams);
      EXPECT_TRUE(handler_saw_close);
      EXPECT_EQ(server.statistics().hello_verify_requests_sent, 1u);  // our cookie exchange
      EXPECT_EQ(server.statistics().channels_accepted, 1u);
      nursery.cancel_scope().cancel();
    });
  });
}

}  // namespace
}  // namespace trellis
