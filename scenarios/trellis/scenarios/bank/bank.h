// trellis/scenarios/bank/bank.h — a bank: accounts each guarded by a Lock, transfers between
// them from many concurrent tasks, and a load generator of such tasks with timeouts.
// Production code: only the runtime API (Lock, CancelScope, nurseries, sleep).
//
//   Bank bank({.balances = {100, 100, 100}});
//   bool moved = bank.transfer(0, 2, 40);        // false: not enough money in account 0
//   std::int64_t total = bank.audit();           // a consistent snapshot of every balance
//   LoadReport report = run_transfer_load(bank, {.clients = 4, .seed = 7});
//
// A transfer locks both accounts in account order (never in argument order, which would
// deadlock two opposite transfers), checks the funds under the locks, writes its journal
// entry (a checkpoint: the bank's I/O), then moves the money with no checkpoint in between,
// so a cancelled transfer moved nothing and a finished one moved everything.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "trellis/core/time.h"
#include "trellis/sync/lock.h"

namespace trellis::scenarios {

class Bank {
 public:
  struct Options {
    std::vector<std::int64_t> balances;  // initial balance of each account (>= 0)
    // How long writing one transfer to the journal takes (under the accounts' locks).
    Duration journal_latency = std::chrono::microseconds(200);
    // The planted bug: check the funds before taking the locks and not again after, so two
    // transfers from one account can both pass the check (an overdraft). Off by default.
    bool check_funds_before_locking = false;
    // Another planted bug: take the two accounts' locks in argument order (from, then to),
    // so two opposite transfers can each hold one lock and wait for the other forever — a
    // lock-order inversion. Off by default.
    bool lock_in_argument_order = false;
  };

  // Throws std::invalid_argument for no accounts or a negative balance.
  explicit Bank(Options options);

  // Moves `amount` from account `from` to account `to` if `from` holds at least that much;
  // returns false (nothing moved) if not. Blocks (locks, journal): a checkpoint. Throws
  // Cancelled with nothing moved; std::invalid_argument for from == to, an unknown account
  // or amount <= 0.
  bool transfer(std::size_t from, std::size_t to, std::int64_t amount);

  // The sum of every balance, read with every lock held (taken in account order): a
  // quiescent point. Blocks: a checkpoint; throws Cancelled.
  std::int64_t audit();

  // The balance now, read without locking (never mid-transfer: a transfer moves the money
  // without a checkpoint in between). Not a checkpoint.
  std::int64_t balance(std::size_t account) const { return accounts_.at(account)->balance; }
  std::size_t accounts() const noexcept { return accounts_.size(); }
  std::uint64_t journal_entries() const noexcept { return journal_entries_; }

 private:
  struct Account {
    Lock lock;
    // Invariant: only changed by a transfer holding `lock`; >= 0 (never overdrawn).
    std::int64_t balance = 0;
  };

  void write_journal();

  Options options_;
  std::vector<std::unique_ptr<Account>> accounts_;  // Lock is not movable
  std::uint64_t journal_entries_ = 0;
};

struct LoadOptions {
  std::size_t clients = 4;  // concurrent client tasks
  std::size_t transfers_per_client = 20;
  std::int64_t amount_max = 60;                              // each transfer moves 1..amount_max
  Duration think_time_max = std::chrono::microseconds(500);  // pause between transfers
  // move_on_after per transfer; nullopt: no timeout (a settlement batch that must finish).
  std::optional<Duration> transfer_timeout = std::chrono::milliseconds(5);
  std::uint64_t seed = 1;  // the clients' choices of accounts and amounts
};

struct LoadReport {
  std::uint64_t transfers_done = 0;       // money moved
  std::uint64_t transfers_refused = 0;    // not enough money
  std::uint64_t transfers_timed_out = 0;  // cancelled by their timeout: nothing moved
};

// Runs `clients` tasks, each making `transfers_per_client` transfers between random
// accounts, each under its own timeout (if any); returns when every client is done. Blocks: a
// checkpoint; throws Cancelled (the clients are cancelled with it).
LoadReport run_transfer_load(Bank& bank, const LoadOptions& options);

}  // namespace trellis::scenarios
