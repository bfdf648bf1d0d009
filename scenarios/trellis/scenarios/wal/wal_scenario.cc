#include "trellis/scenarios/wal/wal_scenario.h"

#include <chrono>
#include <optional>
#include <string>

#include "trellis/core/run.h"
#include "trellis/scenarios/wal/write_ahead_log.h"
#include "trellis/sim/liveness.h"

namespace trellis::scenarios {
namespace {

using namespace std::chrono_literals;

constexpr int kCrashes = 3;

struct Oracle {
  std::uint64_t acknowledged = 0;  // records 0..acknowledged-1 were acknowledged
  std::optional<std::string> violation;
  // The host incarnation whose recovery last completed its check.
  std::optional<std::uint64_t> recovered_incarnation;
};

void db_main(Oracle& oracle, bool planted_bug, sim::World& world, const sim::Host& host) {
  WriteAheadLog log =
      WriteAheadLog::open({.directory = "/var/wal", .ack_before_fsync = planted_bug});
  const std::vector<std::string>& records = log.records();
  for (std::size_t i = 0; i < records.size(); ++i) {
    if (records[i] != "record-" + std::to_string(i)) {
      oracle.violation = "recovered record " + std::to_string(i) + " is '" +
                         records[i].substr(0, 40) + "', expected 'record-" + std::to_string(i) +
                         "'";
      return;
    }
  }
  if (records.size() < oracle.acknowledged) {
    oracle.violation = "only " + std::to_string(records.size()) +
                       " records recovered after a crash, but " +
                       std::to_string(oracle.acknowledged) + " had been acknowledged as durable";
    return;
  }
  oracle.recovered_incarnation = host.incarnation();
  for (std::uint64_t next = records.size();; ++next) {
    log.append("record-" + std::to_string(next));
    oracle.acknowledged = std::max(oracle.acknowledged, next + 1);
    if (world.prng().chance(1, 4)) sleep(std::chrono::microseconds(world.prng().below(2000)));
  }
}

void simulate(sim::World& world, const Options& options) {
  const bool planted_bug = option_on(options, "planted_bug");
  Oracle oracle;
  sim::Host& db = world.add_host("db", "10.0.0.1");
  db.start([&] { db_main(oracle, planted_bug, world, db); });
  world.run([&] {
    for (int crash = 0; crash < kCrashes && !oracle.violation; ++crash) {
      sleep(std::chrono::microseconds(500 + world.prng().below(20'000)));
      db.crash();
      sleep(std::chrono::microseconds(world.prng().below(5'000)));
      db.restart();
    }
    // Liveness: the last incarnation recovers (and so checks the invariant) within 1 s.
    sim::require_progress(1s, "the db host recovering after its last restart", [&] {
      return oracle.violation.has_value() || oracle.recovered_incarnation == db.incarnation();
    });
  });
  if (oracle.violation) throw InvariantViolation(*oracle.violation);
}

}  // namespace

Scenario wal_scenario() {
  Scenario s;
  s.name = "wal";
  s.description =
      "write-ahead log on a simulated disk; the host crashes and restarts 3 times; every "
      "acknowledged record must survive and torn records must never be read as valid";
  s.option_help = {{"planted_bug", "off: on = acknowledge appends before fsync"}};
  s.configure = [](sim::Config& config, const Options&) {
    config.disk.torn_write_ppm = 1'000'000;  // every crash may tear what was not synced
  };
  s.simulate = simulate;
  return s;
}

}  // namespace trellis::scenarios
