// The downstream project's program: three tasks sleep 1, 2 and 3 virtual seconds in a
// nursery under an autojumping MockClock and the simulator's seeded random schedule policy;
// the main task returns the sum; then a pipeline (trellis::pipeline) doubles 1..4 and sums them,
// and a worker process (trellis::to_process) doubles the first sum.
#include <cstdio>
#include <utility>

#include <trellis/fakes.h>
#include <trellis/pipeline.h>
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
  const int doubled = trellis::run(
      [] {
        int sum = 0;
        trellis::open_nursery([&](trellis::Nursery& nursery) {
          auto [tx, rx] = trellis::open_memory_channel<int>(0);
          nursery.start_soon([tx = std::move(tx)]() mutable {
            for (int i = 1; i <= 4; ++i) tx.send(i);
          });
          namespace pl = trellis::pipeline;
          pl::Pipeline p =
              pl::create(nursery, pl::Chain(std::move(rx)), pl::Map([](int v) { return 2 * v; }));
          for (int v : p.tap<int>()) sum += v;
        });
        return sum;
      },
      {.clock = &clock, .policy = &policy});
  const int in_worker =
      trellis::run([&] { return trellis::to_process::run_sync<int>("twice", total); });
  std::printf("downstream ok: %d %d %d\n", total, doubled, in_worker);
  return total == 6 && doubled == 20 && in_worker == 12 ? 0 : 1;
}
