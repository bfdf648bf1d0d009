// One open_signal_receiver test body run against real POSIX signals (raise(3) in a plain
// run: the process-wide hub) and simulated ones (Host::send_signal to the host the body runs
// on: the simulator's SignalFacet), proving they agree: a signal sent several times before
// being received is received once, blocks nest (innermost wins, other signals go to the
// outer block), a signal left pending when a block exits reaches the outer block, and a
// signal ignored by default does nothing without a receiver.
//
// Not covered here: the default action of a terminating signal (it would end the test
// process; the simulator's is tested in tests/sim/sim_signals_test.cc), and arrival order
// across different signals sent at once (the real hub hands out one batch in signal-number
// order; the simulator delivers each at once, in the order sent).
#include <signal.h>

#include <gtest/gtest.h>

#include <chrono>
#include <functional>

#include "trellis/sim.h"
#include "trellis/trellis.h"

namespace trellis {
namespace {

using namespace std::chrono_literals;

// Whether receiver has nothing more to hand out within a short while.
bool nothing_more(SignalReceiver& receiver) {
  int got = 0;
  move_on_after(50ms, [&] { got = receiver.receive(); });
  return got == 0;
}

// The shared body: `send(signo)` sends signo to the process (host) the body runs in.
void signals_body(const std::function<void(int)>& send) {
  open_signal_receiver({SIGUSR1, SIGUSR2}, [&](SignalReceiver& outer) {
    // Sent three times before being received: received once.
    send(SIGUSR1);
    send(SIGUSR1);
    send(SIGUSR1);
    EXPECT_EQ(outer.receive(), SIGUSR1);
    EXPECT_TRUE(nothing_more(outer));

    // Nesting: the innermost block listening for a signal gets it; the others still reach
    // the outer block.
    open_signal_receiver({SIGUSR1}, [&](SignalReceiver& inner) {
      send(SIGUSR1);
      EXPECT_EQ(inner.receive(), SIGUSR1);
      send(SIGUSR2);
      EXPECT_EQ(outer.receive(), SIGUSR2);
      EXPECT_TRUE(nothing_more(inner));
    });

    // A block that exits with a signal pending: it is raised again, the outer block gets it.
    open_signal_receiver({SIGUSR1}, [&](SignalReceiver& inner) {
      send(SIGUSR1);
      checkpoint();
      (void)inner;
    });
    EXPECT_EQ(outer.receive(), SIGUSR1);
    EXPECT_TRUE(nothing_more(outer));
  });
  // No receiver: SIGWINCH's default action is to ignore it.
  send(SIGWINCH);
  checkpoint();
}

TEST(SignalsConformance, Posix) {
  run([] { signals_body([](int signo) { ASSERT_EQ(::raise(signo), 0); }); });
}

TEST(SignalsConformance, Sim) {
  sim::World world(sim::Config{.seed = 7});
  sim::Host& host = world.add_host("h", "10.0.0.1");
  bool done = false;
  host.start([&] {
    signals_body([](int signo) { sim::current_host()->send_signal(signo); });
    done = true;
  });
  world.run([&] {
    while (!done) sleep(1ms);
  });
  EXPECT_TRUE(done);
  EXPECT_TRUE(host.alive());
  EXPECT_EQ(host.incarnation(), 0u);
}

}  // namespace
}  // namespace trellis
