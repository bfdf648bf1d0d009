// hello_sleep — the smallest Trellis program: run a main task that sleeps and returns a value.
//
// Runs on the real clock: it really sleeps for 100 ms, and prints how long that took on the
// run's clock.
#include <cstdio>

#include <trellis/trellis.h>

int main() {
  using namespace std::chrono_literals;
  const double slept_ms = trellis::run([] {
    const trellis::Time start = trellis::current_time();
    std::printf("hello from the main task; sleeping 100 ms...\n");
    trellis::sleep(100ms);
    return std::chrono::duration<double, std::milli>(trellis::current_time() - start).count();
  });
  std::printf("woke up after %.1f ms\n", slept_ms);
  return slept_ms >= 100.0 ? 0 : 1;
}
