#include "trellis/scenarios/lease/lease_server.h"

#include <stdexcept>
#include <utility>

#include "trellis/core/errors.h"
#include "trellis/core/run.h"
#include "trellis/io/tcp.h"
#include "trellis/scenarios/kv/kv_protocol.h"

namespace trellis::scenarios::lease {

void check_node_name(std::string_view name) {
  bool ok = !name.empty() && name.size() <= kNodeNameBytesMax;
  for (const char c : name) {
    ok = ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '.' || c == '_' || c == '-');
  }
  if (!ok) {
    throw std::invalid_argument("lease: a node name is 1.." + std::to_string(kNodeNameBytesMax) +
                                " bytes of [A-Za-z0-9._-]");
  }
}

LeaseServer::LeaseServer(Options options) : options_(std::move(options)) {
  if (options_.lease <= Duration::zero()) {
    throw std::invalid_argument("LeaseServer: lease must be > 0");
  }
  grace_until_ = now() + options_.lease;
}

Time LeaseServer::now() const {
  return options_.clock ? options_.clock() : current_time();
}

std::string LeaseServer::handle(std::string_view request) {
  if (request.size() < 3 || request.substr(0, 2) != "A ") return "E expected 'A <node>'";
  const std::string node(request.substr(2));
  try {
    check_node_name(node);
  } catch (const std::invalid_argument& e) {
    return std::string("E ") + e.what();
  }
  const Time now = this->now();
  if (now < grace_until_) {
    ++statistics_.refusals;
    return "W";
  }
  if (!holder_.empty() && holder_ != node && now < expiry_) {
    ++statistics_.refusals;
    return "H " + holder_;
  }
  holder_ = node;
  expiry_ = now + options_.lease;
  ++statistics_.grants;
  return "G";
}

void LeaseServer::handle_connection(SocketStream& stream) {
  kv::LineReader reader(stream);
  try {
    while (std::optional<std::string> line = reader.read_line()) {
      const std::string answer = handle(*line);
      kv::send_line(stream, answer);
      if (answer[0] == 'E') return;
    }
  } catch (const BrokenResourceError&) {
    // The node went away (or crashed).
  } catch (const kv::ProtocolError&) {
    // An over-long line or a truncated request: drop the connection.
  }
}

void LeaseServer::serve(std::uint16_t port, std::string host,
                        TaskStatus<std::vector<SocketListener*>>* task_status) {
  serve_tcp([this](SocketStream& stream) { handle_connection(stream); }, port,
            {.host = std::move(host), .task_status = task_status});
}

}  // namespace trellis::scenarios::lease
