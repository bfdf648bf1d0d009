// Races whose window takes no virtual time, reachable under the default configuration
// (issue: "Races that take no virtual time must be reachable").
//
// Three same-host races, each a handler whose check and act are separated only by
// checkpoints, driven by clients on other hosts over simulated TCP with the default random
// latencies. Without virtual CPU time the first request's handler always finishes its window
// before the second request arrives (two messages almost never arrive at the same virtual
// instant), so no schedule interleaves them; with it (CpuConfig's defaults), a step of a
// host's task may take virtual time, and requests arriving close together interleave as on a
// real server. Each race must be found within 100 seeds; its fixed version must pass them.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "trellis/sim.h"
#include "trellis/trellis.h"

namespace trellis::sim {
namespace {

using namespace std::chrono_literals;

constexpr std::uint16_t kPort = 7000;
constexpr std::uint64_t kSeedsMax = 100;

// One request line, one reply line, over a fresh connection.
std::string call(const std::string& host, const std::string& request) {
  SocketStream stream = open_tcp_stream(host, kPort);
  const std::string line = request + "\n";
  stream.send_all(std::as_bytes(std::span(line.data(), line.size())));
  std::string reply;
  std::byte buffer[256];
  while (reply.empty() || reply.back() != '\n') {
    const std::size_t n = stream.receive_some(buffer);
    if (n == 0) throw BrokenResourceError("server closed before replying");
    reply.append(reinterpret_cast<const char*>(buffer), n);
  }
  reply.pop_back();
  return reply;
}

// Serves one request line per connection with handle(request) -> reply.
void serve_lines(const std::function<std::string(const std::string&)>& handle) {
  serve_tcp(
      [&](SocketStream& stream) {
        std::string request;
        std::byte buffer[256];
        while (request.empty() || request.back() != '\n') {
          const std::size_t n = stream.receive_some(buffer);
          if (n == 0) return;
          request.append(reinterpret_cast<const char*>(buffer), n);
        }
        request.pop_back();
        const std::string reply = handle(request) + "\n";
        stream.send_all(std::as_bytes(std::span(reply.data(), reply.size())));
      },
      kPort);
}

// A window made only of checkpoints (an async log write, a metrics call, a yield).
void window() {
  checkpoint();
  checkpoint();
}

// Runs `race` for seeds 1..kSeedsMax under `config`; the first seed whose run fails (the
// invariant threw), or nullopt.
std::optional<std::uint64_t> first_failing_seed(const SimBody& race, Config config) {
  for (std::uint64_t seed = 1; seed <= kSeedsMax; ++seed) {
    config.seed = seed;
    if (run_simulation(race, config).failed) return seed;
  }
  return std::nullopt;
}

Config without_cpu_time() {
  Config config;
  config.cpu.step_time_ppm = 0;
  return config;
}

// ---- a username registry's check-then-insert -----------------------------------------------

SimBody registry_race(bool fixed) {
  return [fixed](World& world) {
    Host& registry = world.add_host("registry", "10.0.0.1");
    std::map<std::string, int> owners;
    registry.start([&owners, fixed] {
      serve_lines([&owners, fixed](const std::string& request) {
        const std::string name = request.substr(0, request.find(' '));
        const int owner = std::stoi(request.substr(request.find(' ') + 1));
        if (fixed) {
          if (!owners.emplace(name, owner).second) return std::string("taken");
          window();
          return std::string("ok");
        }
        if (owners.contains(name)) return std::string("taken");
        window();  // the check is stale after this
        owners[name] = owner;
        return std::string("ok");
      });
    });
    int granted = 0;
    int done = 0;
    for (int client = 0; client < 2; ++client) {
      Host& host =
          world.add_host("client" + std::to_string(client), "10.0.1." + std::to_string(client + 1));
      host.start([&, client] {
        if (call("registry", "alice " + std::to_string(client)) == "ok") ++granted;
        ++done;
      });
    }
    world.run([&] {
      while (done < 2) sleep(1ms);
    });
    if (granted != 1) {
      throw std::runtime_error("name granted " + std::to_string(granted) + " times");
    }
  };
}

// ---- a replica's read-modify-write ---------------------------------------------------------

SimBody counter_race(bool fixed) {
  return [fixed](World& world) {
    Host& replica = world.add_host("replica", "10.0.0.1");
    std::int64_t value = 0;
    replica.start([&value, fixed] {
      serve_lines([&value, fixed](const std::string&) {
        if (fixed) {
          const std::int64_t after = ++value;
          window();
          return std::to_string(after);
        }
        const std::int64_t read = value;
        window();  // another increment may land here and be overwritten
        value = read + 1;
        return std::to_string(read + 1);
      });
    });
    constexpr int kClients = 3;
    int acknowledged = 0;
    int done = 0;
    for (int client = 0; client < kClients; ++client) {
      Host& host =
          world.add_host("client" + std::to_string(client), "10.0.1." + std::to_string(client + 1));
      host.start([&] {
        call("replica", "increment");
        ++acknowledged;
        ++done;
      });
    }
    world.run([&] {
      while (done < kClients) sleep(1ms);
    });
    if (value != acknowledged) {
      throw std::runtime_error("lost update: " + std::to_string(acknowledged) +
                               " increments acknowledged, value " + std::to_string(value));
    }
  };
}

// ---- a cache refill racing an invalidation -------------------------------------------------

SimBody cache_race(bool fixed) {
  return [fixed](World& world) {
    Host& server = world.add_host("cache", "10.0.0.1");
    std::map<std::string, std::string> database{{"k", "v1"}};
    std::map<std::string, std::string> cache;
    std::uint64_t version = 0;  // bumped by every invalidation (the fix checks it)
    server.start([&, fixed] {
      serve_lines([&, fixed](const std::string& request) {
        if (request.rfind("put ", 0) == 0) {
          database["k"] = request.substr(4);
          cache.erase("k");
          ++version;
          return std::string("ok");
        }
        if (auto hit = cache.find("k"); hit != cache.end()) return hit->second;
        const std::string read = database["k"];
        const std::uint64_t read_version = version;
        window();  // the refill is in flight: an invalidation may pass it
        if (!fixed || version == read_version) cache["k"] = read;
        return read;
      });
    });
    int done = 0;
    Host& reader = world.add_host("reader", "10.0.1.1");
    Host& writer = world.add_host("writer", "10.0.1.2");
    reader.start([&] {
      call("cache", "get k");
      ++done;
    });
    writer.start([&] {
      call("cache", "put v2");
      ++done;
    });
    world.run([&] {
      while (done < 2) sleep(1ms);
    });
    if (auto cached = cache.find("k"); cached != cache.end() && cached->second != database["k"]) {
      throw std::runtime_error("stale cache: holds " + cached->second + ", database has " +
                               database["k"]);
    }
  };
}

struct Race {
  const char* name;
  SimBody (*make)(bool fixed);
};

constexpr Race kRaces[] = {
    {"registry check-then-insert", registry_race},
    {"replica read-modify-write", counter_race},
    {"cache refill vs invalidation", cache_race},
};

TEST(VirtualCpuTime, RacesWithoutVirtualTimeAreFoundWithinAHundredSeedsByDefault) {
  for (const Race& race : kRaces) {
    const std::optional<std::uint64_t> seed = first_failing_seed(race.make(false), Config{});
    EXPECT_TRUE(seed.has_value()) << race.name << ": not found in " << kSeedsMax << " seeds";
    if (seed)
      std::printf("%s: found at seed %llu\n", race.name, static_cast<unsigned long long>(*seed));
  }
}

TEST(VirtualCpuTime, TheFixedVersionsPassEverySeed) {
  for (const Race& race : kRaces) {
    const std::optional<std::uint64_t> seed = first_failing_seed(race.make(true), Config{});
    EXPECT_FALSE(seed.has_value()) << race.name << ": fixed version failed at seed " << *seed;
  }
}

// The control: with steps taking no virtual time, the same sweep finds none of them (what
// users saw before): the races above are found because of virtual CPU time, not by luck.
TEST(VirtualCpuTime, WithoutCpuTimeTheSameSweepsFindNothing) {
  for (const Race& race : kRaces) {
    const std::optional<std::uint64_t> seed =
        first_failing_seed(race.make(false), without_cpu_time());
    EXPECT_FALSE(seed.has_value()) << race.name << ": found at seed " << *seed;
  }
}

}  // namespace
}  // namespace trellis::sim
