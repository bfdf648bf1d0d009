// The downstream project's program: three tasks sleep 1, 2 and 3 virtual seconds in a
// nursery under an autojumping MockClock and the simulator's seeded random schedule policy;
// the main task returns the sum. Then a worker process (trellis::to_process) doubles it.
#include <cstdio>

#include <trellis/fakes.h>
#include <trellis/sim.h>
#include <trellis/to_process.h>
#include <trellis/trellis.h>

namespace {
int twice(int x) {
  return 2 * x;
}
}  // namespace
TRELLIS_WORKER_FUNCTION("twice", twice);

int main(int argc, char** argv) {
  trellis::to_process::maybe_run_worker(argc, argv);
  trellis::fakes::MockClock clock;
  clock.set_autojump_threshold(trellis::Duration::zero());
  trellis::sim::RandomPolicy policy(42);
  const int total = trellis::run(
      [] {
        int sum = 0;
        trellis::open_nursery([&](trellis::Nursery& nursery) {
          for (int i = 1; i <= 3; ++i) {
            nursery.start_soon([&sum, i] {
              trellis::sleep(std::chrono::seconds(i));
              sum += i;
            });
          }
        });
        return sum;
      },
      {.clock = &clock, .policy = &policy});
  const int doubled =
      trellis::run([&] { return trellis::to_process::run_sync<int>("twice", total); });
  std::printf("downstream ok: %d %d\n", total, doubled);
  return total == 6 && doubled == 12 ? 0 : 1;
}
