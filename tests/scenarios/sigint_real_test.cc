// Real mode stopped by Ctrl-C: the bank and pipeline scenarios' production code runs on the
// epoll backend with no end of its own until SIGINT arrives (from another thread, as from a
// terminal); trellis::run must cancel everything, unwind cleanly and throw
// KeyboardInterrupt, with the scenario's invariant intact at the moment of the stop.
#include <signal.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "trellis/scenarios/bank/bank.h"
#include "trellis/scenarios/pipeline/pipeline.h"
#include "trellis/trellis.h"

namespace trellis::scenarios {
namespace {

using namespace std::chrono_literals;

// Sends SIGINT to the process once `ready` is set (the run's handler is in place then) and
// `delay` has passed.
class Interrupter {
 public:
  Interrupter(std::atomic<bool>& ready, std::chrono::milliseconds delay)
      : thread_([&ready, delay] {
          while (!ready.load()) std::this_thread::sleep_for(1ms);
          std::this_thread::sleep_for(delay);
          ::kill(::getpid(), SIGINT);
        }) {}
  ~Interrupter() { thread_.join(); }

 private:
  std::thread thread_;
};

TEST(BankReal, SigintStopsAnEndlessLoadWithTheTotalConserved) {
  std::atomic<bool> ready{false};
  std::int64_t total_at_stop = -1;
  std::uint64_t journal_at_stop = 0;
  bool unwound = false;
  {
    Interrupter interrupter(ready, 50ms);
    EXPECT_THROW(trellis::run([&] {
                   Bank bank({.balances = {100, 100, 100, 100}, .journal_latency = 50us});
                   ready = true;
                   try {
                     run_transfer_load(bank, {.clients = 4,
                                              .transfers_per_client = 100'000'000,
                                              .amount_max = 80,
                                              .think_time_max = 100us,
                                              .transfer_timeout = 100ms,
                                              .seed = 5});
                   } catch (...) {
                     // Cancelled (in a group: the load's nursery had several tasks).
                     unwound = true;
                     // Every lock is free again and no transfer is half done.
                     CancelScope shield(kNoDeadline, true);
                     shield.run([&] {
                       total_at_stop = bank.audit();
                       journal_at_stop = bank.journal_entries();
                     });
                     throw;
                   }
                 }),
                 KeyboardInterrupt);
  }
  EXPECT_TRUE(unwound);
  EXPECT_EQ(total_at_stop, 400);
  EXPECT_GT(journal_at_stop, 0u);
  EXPECT_EQ(::signal(SIGINT, SIG_DFL), SIG_DFL);  // the run put the default action back
}

TEST(PipelineReal, SigintStopsAnEndlessPipelineCleanly) {
  std::atomic<bool> ready{false};
  std::uint64_t processed = 0;
  {
    Interrupter interrupter(ready, 30ms);
    EXPECT_THROW(trellis::run([&] {
                   Pipeline pipeline({.workers = 3, .buffer_size = 2}, [&](std::uint64_t item) {
                     sleep(20us);
                     ++processed;
                     return item;
                   });
                   ready = true;
                   pipeline.run(1'000'000'000, current_time() + std::chrono::hours(1));
                 }),
                 KeyboardInterrupt);
  }
  EXPECT_GT(processed, 0u);
}

}  // namespace
}  // namespace trellis::scenarios
