// timeout — cancellation with deadlines: move_on_after gives up quietly, fail_after throws
// TooSlowError, and a shielded scope finishes its cleanup even inside a cancelled scope.
#include <cstdio>

#include <trellis/fakes.h>
#include <trellis/trellis.h>

namespace {

using namespace std::chrono_literals;

double seconds_now() {
  return std::chrono::duration<double>(trellis::current_time().time_since_epoch()).count();
}

}  // namespace

int main() {
  trellis::fakes::MockClock clock;
  clock.set_autojump_threshold(trellis::Duration::zero());
  const bool ok = trellis::run(
      [] {
        const bool completed = trellis::move_on_after(5s, [] { trellis::sleep(1h); });
        std::printf("move_on_after(5s) around sleep(1h): completed=%s at t=%.0fs\n",
                    completed ? "true" : "false", seconds_now());

        bool timed_out = false;
        try {
          trellis::fail_after(2s, [] { trellis::sleep(10s); });
        } catch (const trellis::TooSlowError& error) {
          timed_out = true;
          std::printf("fail_after(2s): %s at t=%.0fs\n", error.what(), seconds_now());
        }

        bool cleanup_done = false;
        trellis::move_on_after(1s, [&] {
          try {
            trellis::sleep_forever();
          } catch (const trellis::Cancelled&) {
            // Cleanup that must block: shield it from the cancellation that got us here.
            trellis::CancelScope shield;
            shield.set_shield(true);
            shield.run([&] {
              trellis::sleep(3s);
              cleanup_done = true;
            });
            throw;
          }
        });
        std::printf("shielded cleanup finished=%s at t=%.0fs\n", cleanup_done ? "true" : "false",
                    seconds_now());
        return !completed && timed_out && cleanup_done && seconds_now() == 11.0;
      },
      {.clock = &clock});
  return ok ? 0 : 1;
}
