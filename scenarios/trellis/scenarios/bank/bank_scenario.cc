#include "trellis/scenarios/bank/bank_scenario.h"

#include <chrono>
#include <numeric>
#include <optional>
#include <string>
#include <vector>

#include "trellis/core/cancel_scope.h"
#include "trellis/core/nursery.h"
#include "trellis/core/run.h"
#include "trellis/scenarios/bank/bank.h"
#include "trellis/sim/liveness.h"

namespace trellis::scenarios {
namespace {

using namespace std::chrono_literals;

constexpr std::size_t kAccounts = 4;
constexpr std::int64_t kInitialBalance = 100;
constexpr std::size_t kSettlementTransfersPerClient = 10;
constexpr Duration kAuditTimeout = 2ms;
constexpr Duration kClientsDoneWithin = 2s;

struct Oracle {
  std::optional<std::string> violation;
  bool done = false;
  std::uint64_t audits = 0;
};

// The books at a quiescent point: the total is conserved and no account is overdrawn.
void check_books(Oracle& oracle, const Bank& bank, std::int64_t total, std::int64_t expected,
                 const std::string& when) {
  if (oracle.violation) return;
  if (total != expected) {
    oracle.violation = "total is " + std::to_string(total) + " " + when + ", expected " +
                       std::to_string(expected) + " (money created or lost)";
    return;
  }
  for (std::size_t a = 0; a < bank.accounts(); ++a) {
    if (bank.balance(a) < 0) {
      oracle.violation = "account " + std::to_string(a) + " is overdrawn (" +
                         std::to_string(bank.balance(a)) + ") " + when;
      return;
    }
  }
}

struct Bugs {
  bool check_then_act = false;  // option planted_bug
  bool lock_order = false;      // option lock_order_bug
};

void bank_main(Oracle& oracle, Bugs bugs, sim::World& world) {
  Bank bank({.balances = std::vector<std::int64_t>(kAccounts, kInitialBalance),
             .journal_latency = std::chrono::microseconds(20 + world.prng().below(400)),
             .check_funds_before_locking = bugs.check_then_act,
             .lock_in_argument_order = bugs.lock_order});
  const std::int64_t expected = kInitialBalance * static_cast<std::int64_t>(kAccounts);
  const LoadOptions load{
      .clients = 3 + world.prng().below(3),
      .transfers_per_client = 20,
      .amount_max = 20 + static_cast<std::int64_t>(world.prng().below(100)),
      .think_time_max = std::chrono::microseconds(world.prng().below(1000)),
      .transfer_timeout = std::chrono::microseconds(200 + world.prng().below(5000)),
      .seed = world.prng().next()};
  // Then a settlement batch without timeouts: it must finish on its own (no deadlock).
  LoadOptions settlement = load;
  settlement.transfers_per_client = kSettlementTransfersPerClient;
  settlement.transfer_timeout = std::nullopt;
  settlement.seed = world.prng().next();
  LoadReport report;
  LoadReport settled;
  open_nursery([&](Nursery& nursery) {
    nursery.start_soon([&] {  // the auditor, until the load is done
      for (;;) {
        const std::optional<std::int64_t> total =
            move_on_after(kAuditTimeout, [&] { return bank.audit(); });
        if (total) {
          ++oracle.audits;
          check_books(oracle, bank, *total, expected, "at audit " + std::to_string(oracle.audits));
        }
        sleep(std::chrono::microseconds(world.prng().below(800)));
      }
    });
    report = run_transfer_load(bank, load);
    settled = run_transfer_load(bank, settlement);
    nursery.cancel_scope().cancel();
  });
  check_books(oracle, bank, bank.audit(), expected, "at the end");
  const std::uint64_t moved = report.transfers_done + settled.transfers_done;
  if (!oracle.violation && bank.journal_entries() != moved) {
    oracle.violation = std::to_string(bank.journal_entries()) + " journal entries but " +
                       std::to_string(moved) + " transfers moved money";
  }
  oracle.done = true;
}

void simulate(sim::World& world, const Options& options) {
  const Bugs bugs{.check_then_act = option_on(options, "planted_bug"),
                  .lock_order = option_on(options, "lock_order_bug")};
  Oracle oracle;
  sim::Host& host = world.add_host("bank", "10.0.0.1");
  host.start([&] { bank_main(oracle, bugs, world); });
  world.run([&] {
    // Liveness: a lock-order deadlock (or a lost wake-up) keeps the settlement batch, which
    // has no timeouts, from ever finishing.
    sim::require_progress(kClientsDoneWithin, "every transfer client finishing (no deadlock)",
                          [&] { return oracle.done; });
  });
  if (oracle.violation) throw InvariantViolation(*oracle.violation);
}

}  // namespace

Scenario bank_scenario() {
  Scenario s;
  s.name = "bank";
  s.description =
      "transfers between 4 Lock-guarded accounts from 3-5 concurrent clients with timeouts and "
      "an auditor; the total must be conserved, no account overdrawn, nothing deadlocked";
  s.option_help = {
      {"planted_bug", "off: on = check the funds before taking the locks (check-then-act)"},
      {"lock_order_bug", "off: on = take the two locks in argument order (lock-order deadlock)"}};
  s.configure = [](sim::Config& config, const Options&) {
    config.cancel_faults.enable_ppm = 500'000;  // half the seeds cancel timeouts early
    config.cancel_faults.faults_max = 5;
    config.cancel_faults.step_window = 1'000;
  };
  s.simulate = simulate;
  return s;
}

}  // namespace trellis::scenarios
