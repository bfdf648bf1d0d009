// The downstream project's program: three tasks sleep 1, 2 and 3 virtual seconds in a
// nursery under an autojumping MockClock and the simulator's seeded random schedule policy;
// the main task returns the sum.
#include <cstdio>

#include <trellis/fakes.h>
#include <trellis/sim.h>
#include <trellis/trellis.h>

int main() {
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
  std::printf("downstream ok: %d\n", total);
  return total == 6 ? 0 : 1;
}
