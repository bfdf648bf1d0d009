#include "trellis/scenarios/bank/bank.h"

#include <algorithm>
#include <mutex>
#include <stdexcept>
#include <string>

#include "trellis/base/prng.h"
#include "trellis/core/cancel_scope.h"
#include "trellis/core/nursery.h"
#include "trellis/core/run.h"

namespace trellis::scenarios {

Bank::Bank(Options options) : options_(std::move(options)) {
  if (options_.balances.empty()) throw std::invalid_argument("Bank: no accounts");
  for (const std::int64_t balance : options_.balances) {
    if (balance < 0) throw std::invalid_argument("Bank: negative initial balance");
    auto account = std::make_unique<Account>();
    account->balance = balance;
    accounts_.push_back(std::move(account));
  }
}

void Bank::write_journal() {
  sleep(options_.journal_latency);  // the bank's I/O: a checkpoint
  ++journal_entries_;
}

bool Bank::transfer(std::size_t from, std::size_t to, std::int64_t amount) {
  if (from >= accounts_.size() || to >= accounts_.size()) {
    throw std::invalid_argument("Bank::transfer: unknown account");
  }
  if (from == to) throw std::invalid_argument("Bank::transfer: from == to");
  if (amount <= 0) throw std::invalid_argument("Bank::transfer: amount must be > 0");
  Account& source = *accounts_[from];
  Account& target = *accounts_[to];
  if (options_.check_funds_before_locking && source.balance < amount) return false;
  // Always in account order: two opposite transfers never hold one lock each.
  const bool source_first = options_.lock_in_argument_order || from < to;
  std::lock_guard first(source_first ? source.lock : target.lock);
  std::lock_guard second(source_first ? target.lock : source.lock);
  if (!options_.check_funds_before_locking && source.balance < amount) return false;
  write_journal();
  // No checkpoint from here on: a transfer moves all of the money or none of it.
  source.balance -= amount;
  target.balance += amount;
  return true;
}

std::int64_t Bank::audit() {
  std::vector<std::unique_lock<Lock>> held;
  held.reserve(accounts_.size());
  for (const auto& account : accounts_) held.emplace_back(account->lock);
  std::int64_t total = 0;
  for (const auto& account : accounts_) total += account->balance;
  return total;
}

LoadReport run_transfer_load(Bank& bank, const LoadOptions& options) {
  if (bank.accounts() < 2) throw std::invalid_argument("run_transfer_load: needs 2 accounts");
  LoadReport report;
  Prng prng(options.seed);
  open_nursery([&](Nursery& nursery) {
    for (std::size_t c = 0; c < options.clients; ++c) {
      // Each client draws from its own generator: its choices do not depend on the schedule.
      nursery.start_soon([&, client_seed = prng.next()] {
        Prng choices(client_seed);
        for (std::size_t i = 0; i < options.transfers_per_client; ++i) {
          const std::size_t from = choices.below(bank.accounts());
          const std::size_t to = (from + 1 + choices.below(bank.accounts() - 1)) % bank.accounts();
          const auto amount = static_cast<std::int64_t>(
              1 + choices.below(static_cast<std::uint64_t>(options.amount_max)));
          const auto transfer = [&] { return bank.transfer(from, to, amount); };
          const std::optional<bool> moved = options.transfer_timeout
                                                ? move_on_after(*options.transfer_timeout, transfer)
                                                : std::optional<bool>(transfer());
          if (!moved) {
            ++report.transfers_timed_out;
          } else if (*moved) {
            ++report.transfers_done;
          } else {
            ++report.transfers_refused;
          }
          const auto think_us = static_cast<std::uint64_t>(
              std::chrono::duration_cast<std::chrono::microseconds>(options.think_time_max)
                  .count());
          sleep(std::chrono::microseconds(choices.below(think_us + 1)));
        }
      });
    }
  });
  return report;
}

}  // namespace trellis::scenarios
