// Signals delivered by the simulated world: Host::send_signal reaches the host's unchanged
// open_signal_receiver code (innermost block wins, coalesced, re-raised at exit), or takes
// the default action (ignored, or the host crashes); a crash closes the host's receivers;
// other hosts and the real process's signal dispositions are untouched; deterministic (the
// same seed gives the same trace hash, in this process and in another one).
#include <signal.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "child_process.h"
#include "trellis/sim.h"
#include "trellis/trellis.h"

namespace trellis::sim {
namespace {

using namespace std::chrono_literals;

std::size_t count_events(World& world, std::string_view text) {
  std::size_t n = 0;
  for (const TraceEvent& event : world.trace().recent()) {
    if (event.kind == TraceEventKind::kUser && event.text == text) ++n;
  }
  return n;
}

// Sleeps in 1 ms steps until done() (at most a virtual minute).
template <class F>
void wait_until(F done) {
  for (int i = 0; i < 60'000 && !done(); ++i) sleep(1ms);
  ASSERT_TRUE(done());
}

void echo(SocketStream& stream) {
  std::array<std::byte, 256> buffer;
  while (std::size_t n = stream.receive_some(buffer)) stream.send_all({buffer.data(), n});
}

TEST(SimSignals, SigtermShutsAServerDownGracefully) {
  World world(Config{.seed = 5});
  Host& server = world.add_host("server", "10.0.0.1");
  Host& client = world.add_host("client", "10.0.0.2");
  bool stopped_cleanly = false;
  std::string reply;
  server.start([&] {
    open_signal_receiver({SIGTERM, SIGHUP}, [&](SignalReceiver& signals) {
      open_nursery([&](Nursery& n) {
        n.start_soon([] { serve_tcp(echo, 7, {.host = "0.0.0.0"}); });
        for (int signo : signals) {
          if (signo != SIGTERM) continue;
          n.cancel_scope().cancel();  // stop serving, leave the block
          break;
        }
      });
    });
    stopped_cleanly = true;
  });
  client.start([&] {
    sleep(10ms);
    SocketStream stream = open_tcp_stream("server", 7);
    const std::string hello = "hello";
    stream.send_all(std::as_bytes(std::span(hello)));
    std::array<std::byte, 16> buffer;
    while (reply.size() < hello.size()) {
      const std::size_t n = stream.receive_some(buffer);
      ASSERT_GT(n, 0u);
      reply.append(reinterpret_cast<const char*>(buffer.data()), n);
    }
  });
  world.run([&] {
    wait_until([&] { return reply == "hello"; });
    server.send_signal(SIGHUP);  // caught, not the one it stops on
    sleep(10ms);
    EXPECT_FALSE(stopped_cleanly);
    server.send_signal(SIGTERM);
    wait_until([&] { return stopped_cleanly; });
    // A graceful exit, not a crash: main returned, the host idles.
    EXPECT_TRUE(server.alive());
    EXPECT_EQ(server.incarnation(), 0u);
  });
  EXPECT_EQ(count_events(world, "signal delivered"), 2u);
  EXPECT_EQ(count_events(world, "signal terminates host"), 0u);
}

TEST(SimSignals, ASignalSentSeveralTimesBeforeReceivedIsReceivedOnce) {
  World world(Config{.seed = 2});
  Host& host = world.add_host("h", "10.0.0.1");
  bool ready = false;
  bool sent = false;
  std::vector<int> received;
  host.start([&] {
    open_signal_receiver({SIGHUP, SIGUSR1}, [&](SignalReceiver& signals) {
      ready = true;
      wait_until([&] { return sent; });
      EXPECT_EQ(signals.pending_count(), 2u);
      received.push_back(signals.receive());
      received.push_back(signals.receive());
      EXPECT_EQ(signals.pending_count(), 0u);
      // Nothing more: a third receive() waits.
      move_on_after(1s, [&] { received.push_back(signals.receive()); });
    });
  });
  world.run([&] {
    wait_until([&] { return ready; });
    host.send_signal(SIGHUP);
    host.send_signal(SIGHUP);
    host.send_signal(SIGUSR1);
    host.send_signal(SIGHUP);
    sent = true;
    sleep(2s);
  });
  EXPECT_EQ(received, (std::vector<int>{SIGHUP, SIGUSR1}));  // arrival order, once each
  EXPECT_EQ(count_events(world, "signal delivered"), 4u);
}

TEST(SimSignals, DefaultActionCrashesTheHostAndRestartWorks) {
  World world(Config{.seed = 3});
  Host& host = world.add_host("h", "10.0.0.1");
  int runs = 0;
  bool unwound = false;
  host.start([&] {
    ++runs;
    try {
      sleep_forever();
    } catch (const Cancelled&) {
      unwound = true;
      throw;
    }
  });
  world.run([&] {
    sleep(10ms);
    host.send_signal(SIGTERM);  // no receiver: terminates the process
    EXPECT_FALSE(host.alive());
    EXPECT_EQ(host.incarnation(), 1u);
    sleep(10ms);
    EXPECT_TRUE(unwound);
    host.send_signal(SIGTERM);  // to a crashed host: dropped
    host.restart();
    sleep(10ms);
    EXPECT_TRUE(host.alive());
    EXPECT_EQ(runs, 2);
    host.send_signal(SIGUSR2);
    EXPECT_FALSE(host.alive());
    EXPECT_EQ(host.incarnation(), 2u);
  });
  EXPECT_EQ(count_events(world, "signal terminates host"), 2u);
  EXPECT_EQ(count_events(world, "signal dropped (host down)"), 1u);
  EXPECT_EQ(count_events(world, "host crash"), 2u);
}

// The default action is a crash: what was not fsynced is gone after the restart.
TEST(SimSignals, DefaultActionLosesUnsyncedDataLikeACrash) {
  World world(Config{.seed = 15});
  Host& host = world.add_host("db", "10.0.0.1");
  int runs = 0;
  bool written = false;
  bool checked = false;
  host.start([&] {
    if (runs++ == 0) {
      Path("/durable.txt").write_text("kept");
      open_file("/durable.txt", "r+").fsync();
      Path("/").fsync_directory();
      Path("/volatile.txt").write_text("lost");
      written = true;
      sleep_forever();
    }
    EXPECT_EQ(Path("/durable.txt").read_text(), "kept");
    EXPECT_FALSE(Path("/volatile.txt").exists());
    checked = true;
  });
  world.run([&] {
    wait_until([&] { return written; });
    host.send_signal(SIGINT);  // no receiver: the process dies
    EXPECT_FALSE(host.alive());
    host.restart();
    wait_until([&] { return checked; });
  });
  EXPECT_EQ(runs, 2);
}

TEST(SimSignals, IgnoredSignalsAreIgnored) {
  World world(Config{.seed = 4});
  Host& host = world.add_host("h", "10.0.0.1");
  host.start([] { sleep_forever(); });
  world.run([&] {
    sleep(1ms);
    for (int signo : {SIGCHLD, SIGURG, SIGWINCH, SIGCONT, SIGSTOP, SIGTSTP}) {
      host.send_signal(signo);
    }
    sleep(1ms);
    EXPECT_TRUE(host.alive());
    EXPECT_EQ(host.incarnation(), 0u);
  });
  EXPECT_EQ(count_events(world, "signal ignored"), 4u);
  EXPECT_EQ(count_events(world, "signal ignored (stop)"), 2u);
}

TEST(SimSignals, NestedReceiversTheInnermostWins) {
  World world(Config{.seed = 6});
  Host& host = world.add_host("h", "10.0.0.1");
  int phase = 0;
  std::vector<std::string> got;
  host.start([&] {
    open_signal_receiver({SIGHUP, SIGTERM}, [&](SignalReceiver& outer) {
      open_signal_receiver({SIGHUP}, [&](SignalReceiver& inner) {
        phase = 1;
        got.push_back("inner " + std::to_string(inner.receive()));
        got.push_back("outer " + std::to_string(outer.receive()));
      });
      phase = 2;
      got.push_back("outer " + std::to_string(outer.receive()));
    });
  });
  world.run([&] {
    wait_until([&] { return phase == 1; });
    host.send_signal(SIGHUP);   // inner
    host.send_signal(SIGTERM);  // only the outer listens
    wait_until([&] { return phase == 2; });
    host.send_signal(SIGHUP);  // the inner block is gone: outer
    sleep(10ms);
  });
  EXPECT_EQ(got, (std::vector<std::string>{"inner " + std::to_string(SIGHUP),
                                           "outer " + std::to_string(SIGTERM),
                                           "outer " + std::to_string(SIGHUP)}));
  EXPECT_TRUE(world.host("h").alive());
}

TEST(SimSignals, PendingAtExitGoesToTheOuterReceiverElseTheDefaultAction) {
  World world(Config{.seed = 7});
  Host& host = world.add_host("h", "10.0.0.1");
  int phase = 0;
  bool outer_got = false;
  bool ran_past_the_crash = false;
  host.start([&] {
    open_signal_receiver({SIGHUP}, [&](SignalReceiver& outer) {
      open_signal_receiver({SIGHUP}, [&](SignalReceiver& inner) {
        phase = 1;
        wait_until([&] { return inner.pending_count() == 1; });
      });  // exits with SIGHUP not received: raised again
      EXPECT_EQ(outer.pending_count(), 1u);
      EXPECT_EQ(outer.receive(), SIGHUP);
      outer_got = true;
    });
    open_signal_receiver({SIGTERM}, [&](SignalReceiver& signals) {
      phase = 2;
      wait_until([&] { return signals.pending_count() == 1; });
    });  // exits with SIGTERM pending and nobody else listening: the host crashes
    sleep(1ms);
    ran_past_the_crash = true;
  });
  world.run([&] {
    wait_until([&] { return phase == 1; });
    host.send_signal(SIGHUP);
    wait_until([&] { return outer_got; });
    wait_until([&] { return phase == 2; });
    EXPECT_TRUE(host.alive());
    host.send_signal(SIGTERM);
    wait_until([&] { return !host.alive(); });
    sleep(10ms);
  });
  EXPECT_FALSE(ran_past_the_crash);
  EXPECT_EQ(count_events(world, "signal raised again"), 2u);
  EXPECT_EQ(count_events(world, "signal terminates host"), 1u);
}

TEST(SimSignals, ACrashClosesTheHostsReceivers) {
  World world(Config{.seed = 8});
  Host& host = world.add_host("h", "10.0.0.1");
  int runs = 0;
  bool ready = false;
  bool shielded_waiter_woken = false;
  bool second_ready = false;
  int second_got = 0;
  host.start([&] {
    const int run = ++runs;
    open_signal_receiver({SIGHUP}, [&](SignalReceiver& signals) {
      if (run == 1) {
        open_nursery([&](Nursery& n) {
          // A waiter the crash's cancellation cannot reach: the closing wakes it.
          n.start_soon([&] {
            CancelScope shield(kNoDeadline, true);
            shield.run([&] {
              try {
                signals.receive();
              } catch (const UsageError& error) {
                shielded_waiter_woken =
                    std::string(error.what()).find("crashed") != std::string::npos;
              }
            });
          });
          ready = true;
          sleep_forever();
        });
      }
      // The restarted incarnation starts afresh: nothing pending from the last one.
      EXPECT_EQ(signals.pending_count(), 0u);
      second_ready = true;
      second_got = signals.receive();
    });
  });
  world.run([&] {
    wait_until([&] { return ready; });
    sleep(1ms);
    host.crash();
    host.send_signal(SIGHUP);  // down: dropped
    sleep(10ms);
    EXPECT_TRUE(shielded_waiter_woken);
    host.restart();
    wait_until([&] { return second_ready; });
    host.send_signal(SIGHUP);
    wait_until([&] { return second_got != 0; });
    EXPECT_TRUE(host.alive());
    EXPECT_EQ(host.incarnation(), 1u);
  });
  EXPECT_EQ(second_got, SIGHUP);
  EXPECT_EQ(count_events(world, "signal receivers closed by crash"), 1u);
  EXPECT_EQ(count_events(world, "signal dropped (host down)"), 1u);
}

TEST(SimSignals, ASignalPendingAtACrashDiesWithTheProcess) {
  World world(Config{.seed = 9});
  Host& host = world.add_host("h", "10.0.0.1");
  int runs = 0;
  host.start([&] {
    ++runs;
    open_signal_receiver({SIGTERM}, [&](SignalReceiver&) { sleep_forever(); });
  });
  world.run([&] {
    sleep(1ms);
    host.send_signal(SIGTERM);  // caught, pending
    host.crash();               // not raised again at the block's exit: the process is gone
    host.restart();
    sleep(10ms);
    EXPECT_TRUE(host.alive());
    EXPECT_EQ(host.incarnation(), 1u);
    EXPECT_EQ(runs, 2);
  });
  EXPECT_EQ(count_events(world, "signal raised again"), 0u);
  EXPECT_EQ(count_events(world, "signal terminates host"), 0u);
}

TEST(SimSignals, OtherHostsAreUnaffected) {
  World world(Config{.seed = 10});
  Host& a = world.add_host("a", "10.0.0.1");
  Host& b = world.add_host("b", "10.0.0.2");
  std::size_t a_pending = 0;
  std::size_t b_pending = 0;
  bool stop = false;
  auto make_main = [&](std::size_t& pending) {
    return [&] {
      open_signal_receiver({SIGHUP}, [&](SignalReceiver& signals) {
        while (!stop) {
          pending = signals.pending_count();
          sleep(1ms);
        }
      });
    };
  };
  a.start(make_main(a_pending));
  b.start(make_main(b_pending));
  world.run([&] {
    sleep(5ms);
    a.send_signal(SIGHUP);
    sleep(5ms);
    EXPECT_EQ(a_pending, 1u);
    EXPECT_EQ(b_pending, 0u);
    a.send_signal(SIGTERM);  // a has no SIGTERM receiver: a crashes, b does not
    sleep(5ms);
    EXPECT_FALSE(a.alive());
    EXPECT_TRUE(b.alive());
    EXPECT_EQ(b.incarnation(), 0u);
    EXPECT_EQ(b_pending, 0u);
    stop = true;
  });
}

TEST(SimSignals, AHostCanSignalItself) {
  World world(Config{.seed = 11});
  Host& host = world.add_host("h", "10.0.0.1");
  int got = 0;
  host.start([&] {
    open_signal_receiver({SIGUSR1}, [&](SignalReceiver& signals) {
      current_host()->send_signal(SIGUSR1);
      got = signals.receive();
    });
  });
  world.run([&] { wait_until([&] { return got != 0; }); });
  EXPECT_EQ(got, SIGUSR1);
}

TEST(SimSignals, BadUseIsRefused) {
  World world(Config{.seed = 12});
  Host& host = world.add_host("h", "10.0.0.1");
  EXPECT_THROW(host.send_signal(SIGHUP), UsageError);  // the world is not running
  bool checked = false;
  host.start([&] {
    EXPECT_THROW(open_signal_receiver({SIGKILL}, [](SignalReceiver&) {}), std::invalid_argument);
    EXPECT_THROW(open_signal_receiver({}, [](SignalReceiver&) {}), std::invalid_argument);
    checked = true;
  });
  world.run([&] {
    for (int signo : {0, -1, 65, 1000}) {
      EXPECT_THROW(host.send_signal(signo), std::invalid_argument) << signo;
    }
    // The driver runs on no host: it sends signals, it does not catch them.
    EXPECT_THROW(open_signal_receiver({SIGHUP}, [](SignalReceiver&) {}), UsageError);
    wait_until([&] { return checked; });
  });
  EXPECT_TRUE(host.alive());
}

// A host whose only hope is a signal nobody can send any more is deadlocked, and said so.
TEST(SimSignals, AHostWaitingOnlyForASignalIsADeadlock) {
  World world(Config{.seed = 13});
  Host& host = world.add_host("h", "10.0.0.1");
  host.start([] { open_signal_receiver({SIGHUP}, [](SignalReceiver& s) { s.receive(); }); });
  try {
    world.run([] { sleep_forever(); });
    ADD_FAILURE() << "no DeadlockError";
  } catch (const DeadlockError& error) {
    EXPECT_NE(std::string(error.what()).find("signal"), std::string::npos) << error.what();
  }
}

void* handler_of(int signo) {
  struct sigaction action {};
  EXPECT_EQ(::sigaction(signo, nullptr, &action), 0);
  return reinterpret_cast<void*>(action.sa_handler);
}

TEST(SimSignals, TheRealProcessSignalDispositionsAreUntouched) {
  ASSERT_EQ(handler_of(SIGTERM), reinterpret_cast<void*>(SIG_DFL));
  void* const hup_before = handler_of(SIGHUP);
  World world(Config{.seed = 14});
  Host& host = world.add_host("h", "10.0.0.1");
  bool checked = false;
  host.start([&] {
    open_signal_receiver({SIGTERM, SIGHUP}, [&](SignalReceiver& signals) {
      EXPECT_EQ(handler_of(SIGTERM), reinterpret_cast<void*>(SIG_DFL));
      EXPECT_EQ(handler_of(SIGHUP), hup_before);
      EXPECT_EQ(signals.receive(), SIGTERM);
      checked = true;
    });
  });
  world.run([&] {
    sleep(1ms);
    host.send_signal(SIGTERM);
    wait_until([&] { return checked; });
  });
  EXPECT_EQ(handler_of(SIGTERM), reinterpret_cast<void*>(SIG_DFL));
  EXPECT_EQ(handler_of(SIGHUP), hup_before);
}

// No real disposition changes while a World runs, for every signal the runtime ever
// installs a handler for (SIGINT, for KeyboardInterrupt) and those a host's receivers catch:
// the world's signals are simulated, and a real SIGINT must keep its default action (the
// test runner's own Ctrl-C), not be swallowed by a simulated run.
TEST(SimSignals, NoRealHandlerIsInstalledDuringAWorldsRun) {
  const std::vector<int> signals = {SIGINT,  SIGTERM, SIGHUP,  SIGUSR1, SIGUSR2,
                                    SIGQUIT, SIGALRM, SIGCHLD, SIGPIPE, SIGWINCH};
  std::vector<void*> before;
  for (int signo : signals) before.push_back(handler_of(signo));
  World world(Config{.seed = 15});
  Host& host = world.add_host("h", "10.0.0.1");
  bool checked = false;
  host.start([&] {
    open_signal_receiver({SIGINT, SIGUSR1, SIGQUIT}, [&](SignalReceiver& receiver) {
      for (std::size_t i = 0; i < signals.size(); ++i) {
        EXPECT_EQ(handler_of(signals[i]), before[i]) << "signal " << signals[i] << " in a host";
      }
      EXPECT_EQ(receiver.receive(), SIGUSR1);
      checked = true;
    });
  });
  world.run([&] {
    for (std::size_t i = 0; i < signals.size(); ++i) {
      EXPECT_EQ(handler_of(signals[i]), before[i]) << "signal " << signals[i] << " in the driver";
    }
    sleep(1ms);
    host.send_signal(SIGUSR1);
    wait_until([&] { return checked; });
  });
  EXPECT_TRUE(checked);
  for (std::size_t i = 0; i < signals.size(); ++i) {
    EXPECT_EQ(handler_of(signals[i]), before[i]) << "signal " << signals[i] << " after the run";
  }
}

// Three hosts with receivers; the driver sends random signals (some crash a host, which it
// restarts) at random times. Returns the trace hash; *delivered counts deliveries.
std::uint64_t signal_workload(std::uint64_t seed, std::size_t* delivered) {
  World world(Config{.seed = seed});
  std::vector<Host*> hosts;
  std::array<int, 3> received{};
  for (int i = 0; i < 3; ++i) {
    Host& host = world.add_host("h" + std::to_string(i), "10.0.0." + std::to_string(i + 1));
    hosts.push_back(&host);
    host.start([&received, i] {
      open_signal_receiver({SIGHUP, SIGUSR1}, [&](SignalReceiver& signals) {
        for (int signo : signals) {
          ++received[static_cast<std::size_t>(i)];
          sleep(std::chrono::milliseconds(signo));
        }
      });
    });
  }
  world.run([&] {
    const std::array<int, 5> choices = {SIGHUP, SIGUSR1, SIGWINCH, SIGTERM, SIGHUP};
    for (int step = 0; step < 60; ++step) {
      sleep(std::chrono::milliseconds(1 + world.prng().below(20)));
      Host& host = *hosts[world.prng().below(hosts.size())];
      if (!host.alive()) {
        host.restart();
        continue;
      }
      host.send_signal(choices[world.prng().below(choices.size())]);
    }
  });
  *delivered = count_events(world, "signal delivered");
  return world.trace().hash();
}

TEST(SimSignals, SameSeedSameTraceHash) {
  std::set<std::uint64_t> hashes;
  for (std::uint64_t seed = 1; seed <= 50; ++seed) {
    std::size_t delivered1 = 0;
    std::size_t delivered2 = 0;
    const std::uint64_t first = signal_workload(seed, &delivered1);
    ASSERT_EQ(signal_workload(seed, &delivered2), first) << "seed " << seed;
    ASSERT_EQ(delivered1, delivered2) << "seed " << seed;
    ASSERT_GT(delivered1, 5u) << "seed " << seed;
    hashes.insert(first);
  }
  EXPECT_EQ(hashes.size(), 50u);  // and the seeds explore different runs
}

// The child half of the cross-process check (child_process.h).
TEST(SimSignals, ChildPrintsHashes) {
  const std::uint64_t seeds = testing::child_seed_count("TRELLIS_SIM_SIGNALS_CHILD_SEEDS");
  if (seeds == 0) GTEST_SKIP() << "runs only as the child of SameHashInAnotherProcess";
  std::size_t delivered = 0;
  for (std::uint64_t seed = 1; seed <= seeds; ++seed) {
    testing::print_seed_hash(seed, signal_workload(seed, &delivered));
  }
}

TEST(SimSignals, SameHashInAnotherProcess) {
  constexpr std::uint64_t kChildSeeds = 20;
  const std::map<std::uint64_t, std::uint64_t> theirs = testing::hashes_from_child(
      "SimSignals.ChildPrintsHashes", "TRELLIS_SIM_SIGNALS_CHILD_SEEDS", kChildSeeds);
  ASSERT_EQ(theirs.size(), kChildSeeds);
  std::size_t delivered = 0;
  for (const auto& [seed, hash] : theirs) {
    EXPECT_EQ(signal_workload(seed, &delivered), hash) << "seed " << seed;
  }
}

}  // namespace
}  // namespace trellis::sim
