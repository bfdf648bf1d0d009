// two_children — Trio's tutorial example: a parent starts two children in a nursery and
// the nursery waits for both. The children sleep 1 s and 2 s concurrently, so the whole
// program takes ~2 s of virtual time, not 3. A MockClock with autojump makes it instant.
#include <cstdio>

#include <trellis/fakes.h>
#include <trellis/trellis.h>

namespace {

using namespace std::chrono_literals;

double seconds_now() {
  return std::chrono::duration<double>(trellis::current_time().time_since_epoch()).count();
}

void child(const char* name, trellis::Duration nap) {
  std::printf("  %s: started at t=%.1fs, sleeping %.0f s\n", name, seconds_now(),
              std::chrono::duration<double>(nap).count());
  trellis::sleep(nap);
  std::printf("  %s: exiting at t=%.1fs\n", name, seconds_now());
}

}  // namespace

int main() {
  trellis::fakes::MockClock clock;
  clock.set_autojump_threshold(trellis::Duration::zero());
  const double finished = trellis::run(
      [] {
        std::printf("parent: started at t=%.1fs\n", seconds_now());
        trellis::open_nursery([](trellis::Nursery& nursery) {
          nursery.start_soon(child, "child1", trellis::Duration(1s));
          nursery.start_soon(child, "child2", trellis::Duration(2s));
          std::printf("parent: waiting for children to finish...\n");
        });
        std::printf("parent: all done at t=%.1fs\n", seconds_now());
        return seconds_now();
      },
      {.clock = &clock});
  return finished == 2.0 ? 0 : 1;
}
