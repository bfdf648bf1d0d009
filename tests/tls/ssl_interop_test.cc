// TLS against peers no one here wrote, on loopback with the real backend: Python's ssl module
// and `openssl s_client` against a Trellis server (serve_ssl_over_tcp), and a Trellis client
// (open_ssl_over_tcp_stream) against `openssl s_server`. Also Trellis to Trellis over TCP,
// both protocol versions. The peers read the test CA (and s_server its key) from temporary
// files, since they cannot take PEM text any other way.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "trellis/fakes/tls.h"
#include "trellis/tls.h"
#include "trellis/trellis.h"

namespace trellis {
namespace {

using namespace std::chrono_literals;
using Listeners = std::vector<SocketListener*>;

std::span<const std::byte> b(std::string_view text) {
  return std::as_bytes(std::span(text.data(), text.size()));
}

// A temporary file holding text, removed when this goes.
class TempFile {
 public:
  explicit TempFile(const std::string& text) {
    char name[] = "/tmp/trellis-tls-XXXXXX";
    const int fd = ::mkstemp(name);
    EXPECT_GE(fd, 0);
    ::close(fd);
    path_ = name;
    std::ofstream(path_) << text;
  }
  ~TempFile() { ::unlink(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

struct Pki {
  fakes::TestCertificateAuthority ca;
  fakes::IssuedCertificate server_certificate =
      ca.issue_server_certificate({"localhost", "127.0.0.1"});
  SslContext server = SslContext::server();
  SslContext client = SslContext::client();
  Pki() {
    server_certificate.configure(server);
    ca.configure_trust(client);
  }
};

// Echoes in upper case until end of file. Python closes its socket without close_notify (a
// ragged EOF, which is an SslError without https_compatible): that ends the echo too.
void echo_upper(SslStream& stream) {
  std::vector<std::byte> buffer(4096);
  try {
    while (std::size_t n = stream.receive_some(buffer)) {
      for (std::size_t i = 0; i < n; ++i) {
        const auto c = static_cast<unsigned char>(buffer[i]);
        if (c >= 'a' && c <= 'z') buffer[i] = static_cast<std::byte>(c - 'a' + 'A');
      }
      stream.send_all(std::span(buffer).first(n));
    }
  } catch (const SslError& error) {
    if (!error.unexpected_eof()) throw;
  }
}

// Runs server(task_status) in a nursery, then client(port), then cancels the server.
template <class Client>
void with_trellis_server(Pki& pki, std::function<void(SslStream&)> handler, Client client) {
  run([&] {
    open_nursery([&](Nursery& nursery) {
      Listeners listeners = nursery.start<Listeners>([&](TaskStatus<Listeners>& status) {
        serve_ssl_over_tcp(handler, 0, pki.server, {.host = "127.0.0.1", .task_status = &status});
      });
      client(listeners.at(0)->local_address().port());
      nursery.cancel_scope().cancel();
    });
  });
}

constexpr const char* kPythonClient = R"(
import socket, ssl, sys
port = int(sys.argv[1])
context = ssl.create_default_context(cadata=sys.stdin.read())
with socket.create_connection(("127.0.0.1", port)) as raw:
    with context.wrap_socket(raw, server_hostname="localhost") as tls:
        tls.sendall(b"hello from python")
        data = b""
        while len(data) < 17:
            data += tls.recv(100)
        print(data.decode(), tls.version())
)";

TEST(SslInterop, PythonClientAgainstTrellisServer) {
  Pki pki;
  with_trellis_server(pki, echo_upper, [&](std::uint16_t port) {
    const CompletedProcess done =
        run_process({"python3", "-c", kPythonClient, std::to_string(port)},
                    {.input = pki.ca.ca_certificate_pem(), .capture_stdout = true});
    EXPECT_EQ(done.stdout_data, "HELLO FROM PYTHON TLSv1.3\n");
  });
}

TEST(SslInterop, OpensslSClientAgainstTrellisServer) {
  Pki pki;
  TempFile ca_file(pki.ca.ca_certificate_pem());
  auto greet = [](SslStream& stream) {
    stream.send_all(b("greetings from trellis\n"));
    stream.close();  // close_notify: s_client sees the end and exits
  };
  with_trellis_server(pki, greet, [&](std::uint16_t port) {
    const CompletedProcess done =
        run_process({"openssl", "s_client", "-connect", "127.0.0.1:" + std::to_string(port),
                     "-servername", "localhost", "-verify_hostname", "localhost", "-CAfile",
                     ca_file.path(), "-verify_return_error", "-quiet", "-tls1_2"},
                    {.capture_stdout = true, .capture_stderr = true});
    EXPECT_EQ(done.stdout_data, "greetings from trellis\n") << done.stderr_data;
  });
}

TEST(SslInterop, TrellisClientAgainstOpensslSServer) {
  Pki pki;
  TempFile certificate(pki.server_certificate.certificate_chain_pem);
  TempFile key(pki.server_certificate.private_key_pem);
  run([&] {
    Process server = open_process({"openssl", "s_server", "-accept", "127.0.0.1:0", "-naccept", "1",
                                   "-rev", "-cert", certificate.path(), "-key", key.path()},
                                  {.stdin_mode = Stdio::kDevNull,
                                   .stdout_mode = Stdio::kPipe,
                                   .stderr_mode = Stdio::kDevNull});
    // s_server prints "ACCEPT 127.0.0.1:<port>" once it listens.
    std::string output;
    std::vector<std::byte> buffer(1024);
    fail_after(30s, [&] {
      while (output.find('\n', output.find("ACCEPT")) == std::string::npos) {
        const std::size_t n = server.stdout_stream()->receive_some(buffer);
        ASSERT_GT(n, 0u) << output;
        output.append(reinterpret_cast<const char*>(buffer.data()), n);
      }
    });
    const std::size_t colon = output.find(':', output.find("ACCEPT"));
    const auto port = static_cast<std::uint16_t>(std::stoi(output.substr(colon + 1)));
    SslStream stream = open_ssl_over_tcp_stream("localhost", port, pki.client);
    stream.do_handshake();
    EXPECT_EQ(stream.version(), "TLSv1.3");
    std::string reply;
    fail_after(30s, [&] {
      stream.send_all(b("stressed\n"));  // -rev: each line comes back reversed
      while (reply.find("desserts") == std::string::npos) {
        const std::size_t n = stream.receive_some(buffer);
        ASSERT_GT(n, 0u) << reply;
        reply.append(reinterpret_cast<const char*>(buffer.data()), n);
      }
    });
    stream.close();
    server.kill();
    server.wait();
  });
}

TEST(SslInterop, TrellisToTrellisOverTcpBothVersions) {
  for (TlsVersion version : {TlsVersion::kTls12, TlsVersion::kTls13}) {
    Pki pki;
    pki.client.set_maximum_version(version);
    with_trellis_server(pki, echo_upper, [&](std::uint16_t port) {
      SslStream stream = open_ssl_over_tcp_stream("127.0.0.1", port, pki.client);
      stream.send_all(b("abc"));
      std::vector<std::byte> buffer(16);
      std::string reply;
      while (reply.size() < 3) {
        const std::size_t n = stream.receive_some(buffer);
        ASSERT_GT(n, 0u);
        reply.append(reinterpret_cast<const char*>(buffer.data()), n);
      }
      EXPECT_EQ(reply, "ABC");
      EXPECT_EQ(stream.version(), version == TlsVersion::kTls12 ? "TLSv1.2" : "TLSv1.3");
      stream.close();
    });
  }
}

}  // namespace
}  // namespace trellis
