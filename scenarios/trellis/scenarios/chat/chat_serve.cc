#include "trellis/scenarios/chat/chat_serve.h"

#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <vector>

#include "trellis/fakes/tls.h"
#include "trellis/scenarios/chat/chat_server.h"
#include "trellis/scenarios/scenario.h"
#include "trellis/scenarios/serve_until_sigint.h"
#include "trellis/tls/ssl_context.h"
#include "trellis/tls/ssl_error.h"

namespace trellis::scenarios::chat {
namespace {

constexpr const char* kWhat = "chat serve";

std::string read_pem_file(const std::string& key, const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) throw std::invalid_argument(std::string(kWhat) + ": cannot read " + key + "=" + path);
  std::ostringstream text;
  text << file.rdbuf();
  return text.str();
}

// The server context of tls=on: the given certificate and key, or a test CA's certificate
// (the CA's own certificate written to ca_out, else to out before the banner).
SslContext tls_server_context(const std::map<std::string, std::string>& options,
                              const std::string& host, std::FILE* out) {
  const std::string cert = string_option(options, "cert", "");
  const std::string key = string_option(options, "key", "");
  const std::string ca_out = string_option(options, "ca_out", "");
  SslContext context = SslContext::server();
  if (!cert.empty() || !key.empty()) {
    if (cert.empty() || key.empty()) {
      throw std::invalid_argument(std::string(kWhat) + ": cert and key go together");
    }
    if (!ca_out.empty()) {
      throw std::invalid_argument(std::string(kWhat) + ": ca_out is for the generated test CA " +
                                  "(without cert and key)");
    }
    try {
      context.load_certificate_chain(read_pem_file("cert", cert), read_pem_file("key", key));
    } catch (const SslError& error) {
      throw std::invalid_argument(std::string(kWhat) + ": cannot use cert=" + cert +
                                  " and key=" + key + ": " + error.what());
    }
    return context;
  }
  fakes::TestCertificateAuthority ca("Trellis chat test CA");
  std::vector<std::string> identities = {"localhost", "127.0.0.1"};
  if (host != "localhost" && host != "127.0.0.1" && !host.empty()) identities.push_back(host);
  ca.issue_server_certificate(identities).configure(context);
  if (ca_out.empty()) {
    write_line(out, "test CA certificate (trust it to connect):");
    std::fputs(ca.ca_certificate_pem().c_str(), out);
    std::fflush(out);
  } else {
    std::ofstream file(ca_out, std::ios::binary | std::ios::trunc);
    file << ca.ca_certificate_pem();
    file.close();
    if (!file) throw std::invalid_argument(std::string(kWhat) + ": cannot write ca_out=" + ca_out);
    write_line(out, "test CA certificate written to " + ca_out);
  }
  return context;
}

}  // namespace

std::map<std::string, std::string> serve_chat_option_help() {
  return {{"port", "0: TCP port to listen on (0: any free port)"},
          {"host", "127.0.0.1: address to listen on"},
          {"tls", "off: on = serve TLS (trellis serve chat --tls)"},
          {"cert", "(none): with tls=on, the server's certificate chain, a PEM file (--tls_cert)"},
          {"key", "(none): with tls=on, the server's private key, a PEM file (--tls_key)"},
          {"ca_out",
           "(none): with tls=on and no cert, write the generated test CA's certificate (what "
           "clients trust) to this file instead of printing it (--tls_ca_out)"}};
}

int serve_chat(const std::map<std::string, std::string>& options, std::FILE* out) {
  check_serve_options(kWhat, options, serve_chat_option_help());
  const auto port = static_cast<std::uint16_t>(integer_option(kWhat, options, "port", 0, 0, 65535));
  const std::string host = string_option(options, "host", "127.0.0.1");
  const bool tls = option_on(options, "tls");
  if (!tls &&
      (options.count("cert") != 0 || options.count("key") != 0 || options.count("ca_out") != 0)) {
    throw std::invalid_argument(std::string(kWhat) + ": cert, key and ca_out need tls=on");
  }
  std::optional<SslContext> context;
  if (tls) context.emplace(tls_server_context(options, host, out));
  SslContext* server_tls = context ? &*context : nullptr;

  return serve_until_sigint(
      out, port, host, [server_tls] { return ChatServer({.tls = server_tls}); },
      [server_tls](const ChatServer&, const SocketAddress& address) {
        return std::string(server_tls != nullptr ? "serving chat over TLS on "
                                                 : "serving chat on ") +
               address.to_string();
      });
}

}  // namespace trellis::scenarios::chat
