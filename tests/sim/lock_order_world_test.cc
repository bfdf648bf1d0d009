// Lock order and lock deadlocks in a World: a two-lock deadlock among host tasks under the
// README's driver idiom (`world.run([&] { sleep(1s); })`) is reported in every seed, either as
// the LockOrderError of the inversion (the default) or, with Config::lock_order_errors off,
// as a DeadlockError when the driver returns, naming the locks and their holders. Waits that
// something could still end (a server in accept, a sleeper) are not reported. Tasks are named
// readably: the driver "driver", a host's main "<host> main".
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "trellis/sim.h"
#include "trellis/trellis.h"

namespace trellis::sim {
namespace {

using namespace std::chrono_literals;

constexpr std::uint64_t kSeeds = 50;

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// Every leaf's message of an exception (hosts' errors come nested in ExceptionGroups).
std::string leaves(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const ExceptionGroup& group) {
    std::string out;
    for (const std::exception_ptr& e : group.exceptions()) out += leaves(e) + "\n";
    return out;
  } catch (const std::exception& e) {
    return e.what();
  }
}

// Two hosts sharing two locks (hosts of one World share the process's memory), taking them
// in opposite orders; the driver only sleeps. Returns what world.run() threw ("" if nothing).
std::string run_two_lock_deadlock(std::uint64_t seed, bool lock_order_errors) {
  Config config{.seed = seed};
  config.lock_order_errors = lock_order_errors;
  World world(config);
  Lock accounts("accounts");
  Lock journal("journal");
  world.add_host("teller", "10.0.0.1").start([&] {
    std::lock_guard first(accounts);
    trellis::sleep(10ms);
    std::lock_guard second(journal);
  });
  world.add_host("auditor", "10.0.0.2").start([&] {
    std::lock_guard first(journal);
    trellis::sleep(10ms);
    std::lock_guard second(accounts);
  });
  try {
    world.run([&] { trellis::sleep(1s); });
  } catch (...) {
    return leaves(std::current_exception());
  }
  return "";
}

TEST(LockOrderWorld, TwoLockInversionAmongHostsFailsEverySeed) {
  for (std::uint64_t seed = 1; seed <= kSeeds; ++seed) {
    const std::string what = run_two_lock_deadlock(seed, /*lock_order_errors=*/true);
    ASSERT_TRUE(contains(what, "lock order inversion")) << "seed " << seed << ": " << what;
    EXPECT_TRUE(contains(what, "Lock 'accounts'")) << what;
    EXPECT_TRUE(contains(what, "Lock 'journal'")) << what;
  }
}

TEST(LockOrderWorld, TwoLockDeadlockReportedWhenTheDriverReturnsEverySeed) {
  for (std::uint64_t seed = 1; seed <= kSeeds; ++seed) {
    const std::string what = run_two_lock_deadlock(seed, /*lock_order_errors=*/false);
    ASSERT_TRUE(contains(what, "tasks wait for locks in a cycle"))
        << "seed " << seed << ": " << what;
    EXPECT_TRUE(contains(what, "waits for Lock 'journal', held by task 'auditor main'")) << what;
    EXPECT_TRUE(contains(what, "waits for Lock 'accounts', held by task 'teller main'")) << what;
    EXPECT_TRUE(contains(what, "when the world's driver returned")) << what;
  }
}

TEST(LockOrderWorld, DeadlockErrorTypeAtDriverReturn) {
  Config config{.seed = 7};
  config.lock_order_errors = false;
  World world(config);
  Lock a("a"), b("b");
  world.add_host("one", "10.0.0.1").start([&] {
    std::lock_guard first(a);
    trellis::sleep(10ms);
    std::lock_guard second(b);
  });
  world.add_host("two", "10.0.0.2").start([&] {
    std::lock_guard first(b);
    trellis::sleep(10ms);
    std::lock_guard second(a);
  });
  EXPECT_THROW(world.run([&] { trellis::sleep(1s); }), DeadlockError);
}

TEST(LockOrderWorld, WaitsThatCouldEndAreNotReported) {
  for (std::uint64_t seed = 1; seed <= 5; ++seed) {
    World world(Config{.seed = seed});
    Lock store("store");
    Event never;
    world.add_host("server", "10.0.0.1").start([&] {
      std::unique_ptr<SocketListener> listener = std::move(open_tcp_listeners(80).front());
      open_nursery([&](Nursery& n) {
        n.start_soon([&] { listener->accept(); });  // fine: a client may come
        n.start_soon([&] {
          std::lock_guard held(store);
          never.wait();  // an Event: not judged
        });
        n.start_soon([&] {
          trellis::sleep(5ms);
          std::lock_guard held(store);  // waits on a task that waits on an Event
        });
      });
    });
    EXPECT_NO_THROW(world.run([&] { trellis::sleep(1s); })) << "seed " << seed;
  }
}

TEST(LockOrderWorld, DriverAndHostMainsHaveReadableNames) {
  World world(Config{.seed = 1});
  std::string host_main;
  world.add_host("server", "10.0.0.1").start([&] { host_main = lowlevel::current_task().name(); });
  std::string driver;
  world.run([&] {
    driver = lowlevel::current_task().name();
    trellis::sleep(1s);
  });
  EXPECT_EQ(driver, "driver");
  EXPECT_EQ(host_main, "server main");
}

TEST(LockOrderWorld, WholeRunDeadlockReportNamesTheDriverAndHolders) {
  World world(Config{.seed = 1});
  Lock store("store");
  Event never;
  world.add_host("server", "10.0.0.1").start([&] {
    std::lock_guard held(store);
    never.wait();
  });
  std::string what;
  try {
    world.run([&] {
      trellis::sleep(1s);
      std::lock_guard held(store);  // the driver blocks behind the server forever
    });
  } catch (const DeadlockError& e) {
    what = e.what();
  }
  EXPECT_TRUE(contains(what, "task 'driver'")) << what;
  EXPECT_TRUE(contains(what, "for Lock 'store', held by task 'server main'")) << what;
}

}  // namespace
}  // namespace trellis::sim
