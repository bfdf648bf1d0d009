#include "trellis/scenarios/wal/wal_scenario.h"

#include <signal.h>

#include <cerrno>
#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "trellis/core/os_error.h"
#include "trellis/core/run.h"
#include "trellis/scenarios/nemesis.h"
#include "trellis/scenarios/wal/write_ahead_log.h"
#include "trellis/signal/signal_receiver.h"
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
  // The incarnation a SIGTERM stopped (signals=on), perhaps before it recovered.
  std::optional<std::uint64_t> stopped_incarnation;
};

struct DbOptions {
  bool planted_bug = false;
  bool disk_faults = false;  // an EIO drops the log and recovers it again, as a restart would
  bool signals = false;      // SIGHUP: recover the log again (a reload); SIGTERM: stop
};

// Recovers the log, checks it against the oracle and appends until a violation, a request
// to reopen (then it returns true) or an error.
bool recover_and_append(Oracle& oracle, const DbOptions& options, sim::World& world,
                        const sim::Host& host, bool& reopen, bool after_error) {
  WriteAheadLog log = WriteAheadLog::open({.directory = "/var/wal",
                                           .ack_before_fsync = options.planted_bug,
                                           .resync_after_error = after_error});
  const std::vector<std::string>& records = log.records();
  for (std::size_t i = 0; i < records.size(); ++i) {
    if (records[i] != "record-" + std::to_string(i)) {
      oracle.violation = "recovered record " + std::to_string(i) + " is '" +
                         records[i].substr(0, 40) + "', expected 'record-" + std::to_string(i) +
                         "'";
      return false;
    }
  }
  if (records.size() < oracle.acknowledged) {
    oracle.violation = "only " + std::to_string(records.size()) +
                       " records recovered after a crash, but " +
                       std::to_string(oracle.acknowledged) + " had been acknowledged as durable";
    return false;
  }
  oracle.recovered_incarnation = host.incarnation();
  for (std::uint64_t next = records.size();; ++next) {
    if (std::exchange(reopen, false)) return true;
    log.append("record-" + std::to_string(next));
    oracle.acknowledged = std::max(oracle.acknowledged, next + 1);
    if (world.prng().chance(1, 4)) sleep(std::chrono::microseconds(world.prng().below(2000)));
  }
}

// The db: the log, recovered again after a disk error (disk_faults) or a SIGHUP (signals).
void run_log(Oracle& oracle, const DbOptions& options, sim::World& world, const sim::Host& host,
             bool& reopen) {
  bool after_error = false;
  for (;;) {
    try {
      if (!recover_and_append(oracle, options, world, host, reopen, after_error)) return;
    } catch (const OSError& e) {
      if (!options.disk_faults || e.code().value() != EIO) throw;
      sleep(1ms);  // the disk failed: what was not acknowledged may or may not be there
      after_error = true;
    }
  }
}

void db_main(Oracle& oracle, const DbOptions& options, sim::World& world, const sim::Host& host) {
  bool reopen = false;
  if (!options.signals) {
    run_log(oracle, options, world, host, reopen);
    return;
  }
  open_signal_receiver({SIGHUP, SIGTERM}, [&](SignalReceiver& signals) {
    open_nursery([&](Nursery& n) {
      n.start_soon([&] {
        run_log(oracle, options, world, host, reopen);
        n.cancel_scope().cancel();
      });
      for (int signo : signals) {
        if (signo == SIGTERM) {  // a clean stop: the log is closed, nothing acknowledged is lost
          oracle.stopped_incarnation = host.incarnation();
          n.cancel_scope().cancel();
          break;
        }
        reopen = true;
      }
    });
  });
}

// The wal's planned faults (disk_faults=on, signals=on): 4 rounds on the db (host 0), each a
// wait of 0-20 ms and, from the menu, a window of 1-10 ms in which one class of disk
// operation (or all) fails with EIO, or a SIGHUP or SIGTERM.
sim::FaultPlan draw_wal_faults(std::uint64_t seed, bool disk_faults, bool signals) {
  std::vector<PlannedNemesisFault> menu;
  if (disk_faults) menu.push_back(planned_disk_errors());
  if (signals) menu.push_back(planned_hup_or_term());
  if (menu.empty()) return {};
  return draw_fault_plan(
      seed,
      {.rounds = 4, .wait_min = 0ms, .wait_max = 20ms, .duration_min = 1ms, .duration_max = 10ms},
      {0}, menu);
}

void simulate(sim::World& world, const Options& options) {
  const DbOptions db_options{.planted_bug = option_on(options, "planted_bug"),
                             .disk_faults = option_on(options, "disk_faults"),
                             .signals = option_on(options, "signals")};
  Oracle oracle;
  sim::Host& db = world.add_host("db", "10.0.0.1");
  db.start([&] { db_main(oracle, db_options, world, db); });
  world.run([&] {
    for (int crash = 0; crash < kCrashes && !oracle.violation; ++crash) {
      sleep(std::chrono::microseconds(500 + world.prng().below(20'000)));
      db.crash();
      sleep(std::chrono::microseconds(world.prng().below(5'000)));
      db.restart();
    }
    // Liveness: the last incarnation recovers (and so checks the invariant) within 1 s.
    // A planned SIGTERM may stop it first, or (before its receiver opens) crash it for good.
    sim::require_progress(1s, "the db host recovering after its last restart", [&] {
      return oracle.violation.has_value() || oracle.recovered_incarnation == db.incarnation() ||
             (db_options.signals &&
              (oracle.stopped_incarnation == db.incarnation() || !db.alive()));
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
  s.option_help = {
      {"planted_bug", "off: on = acknowledge appends before fsync"},
      {"disk_faults", "off: on = planned windows of disk EIO (the db recovers the log again)"},
      {"signals", "off: on = planned SIGHUP (recover the log again) and SIGTERM (stop)"}};
  s.configure = [](sim::Config& config, const Options& options) {
    config.disk.torn_write_ppm = 1'000'000;  // every crash may tear what was not synced
    config.fault_plan = draw_wal_faults(config.seed, option_on(options, "disk_faults"),
                                        option_on(options, "signals"));
  };
  s.simulate = simulate;
  return s;
}

}  // namespace trellis::scenarios
