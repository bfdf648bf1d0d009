#include "trellis/scenarios/kv/kv_client.h"

#include <stdexcept>
#include <utility>

#include "trellis/core/cancel_scope.h"
#include "trellis/core/errors.h"
#include "trellis/core/nursery.h"
#include "trellis/core/os_error.h"
#include "trellis/core/time.h"
#include "trellis/io/tcp.h"

namespace trellis::scenarios::kv {

KvClient::KvClient(Options options)
    : options_(std::move(options)), majority_(options_.replicas.size() / 2 + 1) {
  if (options_.replicas.empty()) throw std::invalid_argument("KvClient: no replicas");
  if (options_.client_id == 0) throw std::invalid_argument("KvClient: client_id must be >= 1");
  for (const std::string& replica : options_.replicas) {
    Endpoint endpoint{replica, options_.port};
    const std::size_t colon = replica.rfind(':');
    const bool bracketed = !replica.empty() && replica.front() == '[';
    if (colon != std::string::npos && (bracketed || replica.find(':') == colon)) {
      const std::string port = replica.substr(colon + 1);
      std::string host = replica.substr(0, colon);
      if (bracketed) {
        if (host.size() < 2 || host.back() != ']') {
          throw std::invalid_argument("KvClient: bad replica '" + replica + "'");
        }
        host = host.substr(1, host.size() - 2);
      }
      unsigned long value = 0;
      std::size_t used = 0;
      try {
        value = std::stoul(port, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (host.empty() || port.empty() || used != port.size() || value == 0 || value > 65535) {
        throw std::invalid_argument("KvClient: bad replica '" + replica + "' (want host:port)");
      }
      endpoint = {host, static_cast<std::uint16_t>(value)};
    }
    endpoints_.push_back(std::move(endpoint));
  }
}

std::vector<std::string> KvClient::quorum_call(const std::string& line) {
  for (;;) {
    std::vector<std::string> answers;
    move_on_after(options_.attempt_timeout, [&] {
      open_nursery([&](Nursery& nursery) {
        for (const Endpoint& replica : endpoints_) {
          nursery.start_soon([&, replica] {
            try {
              SocketStream stream = open_tcp_stream(replica.host, replica.port);
              send_line(stream, line);
              LineReader reader(stream);
              std::optional<std::string> answer = reader.read_line();
              if (!answer) return;
              answers.push_back(std::move(*answer));
              if (answers.size() >= majority_) nursery.cancel_scope().cancel();
            } catch (const OSError&) {
              // Refused, unreachable: this replica does not count.
            } catch (const BrokenResourceError&) {
            } catch (const ProtocolError&) {
            }
          });
        }
      });
    });
    if (answers.size() >= majority_) {
      ++statistics_.phases;
      answers.resize(majority_);
      return answers;
    }
    ++statistics_.attempts_failed;
    sleep(options_.retry_backoff);
  }
}

Versioned KvClient::newest(const std::string& key) {
  Versioned best;
  for (const std::string& answer : quorum_call(encode_query(key))) {
    Versioned v = parse_versioned(answer);
    if (v.timestamp > best.timestamp) best = std::move(v);
  }
  return best;
}

void KvClient::store(const std::string& key, const Versioned& versioned) {
  for (const std::string& answer : quorum_call(encode_store(key, versioned))) {
    if (answer != "A") throw ProtocolError("store refused: '" + answer.substr(0, 80) + "'");
  }
}

std::string KvClient::read(const std::string& key) {
  check_key(key);
  Versioned best = newest(key);
  if (!options_.read_skips_write_back) store(key, best);
  return best.value;
}

void KvClient::write(const std::string& key, const std::string& value) {
  check_key(key);
  check_value(value);
  const Versioned seen = newest(key);
  store(key, Versioned{{seen.timestamp.counter + 1, options_.client_id}, value});
}

}  // namespace trellis::scenarios::kv
