// trellis/scenarios/actor_tree/actor_tree_scenario.cc — see actor_tree_scenario.h.

#include "trellis/scenarios/actor_tree/actor_tree_scenario.h"

#include <charconv>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>

#include "trellis/scenarios/actor_tree/actor_tree.h"
#include "trellis/scenarios/serve_until_sigint.h"
#include "trellis/sim/harness.h"
#include "trellis/sim/liveness.h"
#include "trellis/to_process/worker.h"
#include "trellis/trellis.h"

namespace trellis::scenarios {
namespace {

using namespace std::chrono_literals;

constexpr Duration kDoneWithin = 60s;
constexpr int kItems = 40;

struct Oracle {
  std::optional<std::string> violation;
  bool done = false;
};

void install_actors(sim::Host& host) {
  host.install_program(std::string(to_process::kSelfExecutable),
                       [](sim::ProgramIo& io) { return actor::serve_actor_program(io.argv); });
}

void simulate(sim::World& world, const Options& options) {
  const bool remote = option_on(options, "remote_workers");
  actor_tree::SupervisorConfig config{.items = kItems,
                                      .planted_bug = option_on(options, "planted_bug"),
                                      .worker_host = remote ? "workers" : ""};
  Oracle oracle;
  sim::Host& supervisor = world.add_host("supervisor", "10.0.0.1");
  install_actors(supervisor);
  if (remote) install_actors(world.add_host("workers", "10.0.0.2"));
  supervisor.start([&] {
    std::map<int, int> delivered;
    try {
      actor::open_actor_nursery(
          {.cancel_grace = 1s, .address = "10.0.0.1"},
          [&](actor::ActorNursery& an) { (void)actor_tree::supervise(an, config, delivered); });
      for (int item = 0; item < kItems; ++item) {
        if (delivered[item] != 1) {
          oracle.violation = "item " + std::to_string(item) + " delivered " +
                             std::to_string(delivered[item]) + " times";
          break;
        }
      }
    } catch (const std::logic_error& e) {
      oracle.violation = e.what();
    }
    oracle.done = true;
  });
  world.run([&] {
    sim::require_progress(kDoneWithin, "every item squared by the actor tree",
                          [&] { return oracle.done; });
  });
  if (oracle.violation) throw InvariantViolation(*oracle.violation);
}

// A whole line of decimal digits with an optional sign (and a trailing \r), within range.
std::optional<long long> parse_integer(const std::string& line) {
  std::string_view text(line);
  if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
  long long value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  if (value > 3'037'000'499 || value < -3'037'000'499) return std::nullopt;  // n * n fits
  return value;
}

// `trellis serve actor-tree`: a root actor with one worker actor; each line a TCP client
// sends is an integer, answered with its square computed in the worker (a remote call per
// line), or "error: ..." for a line that is not one.
int serve_actor_tree(const Options& options, std::FILE* out) {
  check_serve_options("actor-tree", options, {{"port", ""}, {"host", ""}});
  const auto port =
      static_cast<std::uint16_t>(integer_option("actor-tree", options, "port", 0, 0, 65535));
  const std::string host = string_option(options, "host", "127.0.0.1");
  return run_until_sigint(out, [&] {
    actor::open_actor_nursery([&](actor::ActorNursery& an) {
      actor::Portal& worker = an.start_actor("squarer");
      std::vector<std::unique_ptr<SocketListener>> listeners = open_tcp_listeners(port, host);
      write_line(out, "serving actor-tree on " + listeners.front()->local_address().to_string() +
                          " (worker actor pid " + std::to_string(worker.pid()) + ")");
      serve_listeners<SocketListener>(
          [&](SocketStream& stream) {
            std::string buffer;
            std::vector<std::byte> chunk(4096);
            for (;;) {
              const std::size_t got = stream.receive_some(chunk);
              if (got == 0) return;
              buffer.append(reinterpret_cast<const char*>(chunk.data()), got);
              if (buffer.size() > 65536) return;  // a bound on a line
              for (std::size_t newline; (newline = buffer.find('\n')) != std::string::npos;) {
                const std::string line = buffer.substr(0, newline);
                buffer.erase(0, newline + 1);
                std::string answer;
                if (const std::optional<long long> n = parse_integer(line)) {
                  try {
                    answer = std::to_string(worker.run<long long>(actor_tree::kSquare, *n));
                  } catch (const actor::RemoteActorError& e) {
                    answer = std::string("error: ") + e.what();
                  }
                } else {
                  answer = "error: not an integer: '" + line.substr(0, 80) + "'";
                }
                answer += "\n";
                stream.send_all(std::as_bytes(std::span(answer)));
              }
            }
          },
          std::move(listeners));
    });
  });
}

}  // namespace

Scenario actor_tree_scenario() {
  Scenario s;
  s.name = "actor-tree";
  s.description =
      "a supervisor actor streams 40 items to worker actors (on another host) through "
      "contexts; workers fail at random and are replaced; every item squared exactly once";
  s.option_help = {
      {"planted_bug", "off: on = a replacement worker is re-sent an item already answered"},
      {"remote_workers", "on: off = the workers run on the supervisor's host"}};
  s.configure = [](sim::Config&, const Options&) {};
  s.simulate = [](sim::World& world, const Options& options) {
    Options with_defaults = options;
    with_defaults.emplace("remote_workers", "on");
    simulate(world, with_defaults);
  };
  s.serve = serve_actor_tree;
  s.serve_option_help = {{"port", "TCP port (default 0: any free port)"},
                         {"host", "address to listen on (default 127.0.0.1)"}};
  return s;
}

}  // namespace trellis::scenarios
