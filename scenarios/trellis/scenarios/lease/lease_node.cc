#include "trellis/scenarios/lease/lease_node.h"

#include <algorithm>
#include <optional>
#include <stdexcept>
#include <utility>

#include "trellis/core/cancel_scope.h"
#include "trellis/core/errors.h"
#include "trellis/core/os_error.h"
#include "trellis/core/run.h"
#include "trellis/io/tcp.h"
#include "trellis/scenarios/kv/kv_protocol.h"
#include "trellis/scenarios/lease/lease_server.h"

namespace trellis::scenarios::lease {
namespace {

constexpr std::int64_t kMillion = 1'000'000;

}  // namespace

LeaseNode::LeaseNode(Options options) : options_(std::move(options)) {
  if (options_.server.empty()) throw std::invalid_argument("LeaseNode: no server");
  check_node_name(options_.name);
  if (options_.clock_drift_ppm_max >= kMillion) {
    throw std::invalid_argument("LeaseNode: clock_drift_ppm_max must be < 1'000'000");
  }
  const std::int64_t r = options_.clock_drift_ppm_max;
  trusted_lease_ = Duration(options_.lease.count() * (kMillion - r) / (kMillion + r));
  if (trusted_lease_ <= Duration::zero() || options_.renew_interval >= trusted_lease_) {
    throw std::invalid_argument("LeaseNode: the lease, shortened for drift, must outlast " +
                                std::string("renew_interval"));
  }
}

Time LeaseNode::now() const {
  return options_.clock ? options_.clock() : current_time();
}

void LeaseNode::run(const std::function<void(Time)>& on_grant) {
  for (;;) {
    std::optional<SocketStream> stream;
    move_on_after(options_.request_timeout, [&] {
      try {
        stream.emplace(open_tcp_stream(options_.server, options_.port));
      } catch (const OSError&) {
        // Refused (the server is restarting), unreachable: try again.
      }
    });
    if (stream) {
      session(*stream, on_grant);
      stream->close();
    } else {
      ++statistics_.timeouts;
    }
    sleep(options_.reconnect_backoff);
  }
}

void LeaseNode::session(SocketStream& stream, const std::function<void(Time)>& on_grant) {
  kv::LineReader reader(stream);
  try {
    for (;;) {
      const Time sent = now();
      kv::send_line(stream, "A " + options_.name);
      ++statistics_.requests;
      std::optional<std::string> answer;
      move_on_after(options_.request_timeout, [&] { answer = reader.read_line(); });
      if (!answer) {
        ++statistics_.timeouts;
        return;  // no answer in time (or the server closed): a fresh connection
      }
      if (*answer == "G") {
        const Time expiry =
            options_.trust_local_clock ? now() + options_.lease : sent + trusted_lease_;
        expiry_ = std::max(expiry_, expiry);
        ++statistics_.grants;
        if (on_grant) on_grant(expiry_);
      } else if (*answer != "W" && answer->rfind("H ", 0) != 0) {
        return;  // "E ...": the server did not understand us
      }
      sleep(is_leader() ? options_.renew_interval : options_.poll_interval);
    }
  } catch (const BrokenResourceError&) {
  } catch (const ClosedResourceError&) {
  } catch (const kv::ProtocolError&) {
  }
}

}  // namespace trellis::scenarios::lease
