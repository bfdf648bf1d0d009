// Tests of the fiber layer seen through tasks: stacks, guard pages, exception state.
//
// Goal: a task is a real C++ execution context. Method: run tasks that recurse deeply, that
// overflow on purpose (in a death test, which must name the task), and that suspend in the
// middle of exception handling while other tasks throw and catch their own exceptions — the
// C++ runtime keeps that state per thread, and the fiber switch must keep it per task.
#include <gtest/gtest.h>

#include <exception>
#include <stdexcept>
#include <string>

#include "trellis/fakes.h"
#include "trellis/trellis.h"

namespace trellis {
namespace {

using namespace std::chrono_literals;

// Keeps the compiler from turning the recursion into a loop or dropping the frame.
int recurse(int depth, volatile char* sink) {
  volatile char frame[1024];
  frame[0] = static_cast<char>(depth);
  *sink = frame[0];
  if (depth == 0) return frame[0];
  return recurse(depth - 1, sink) + frame[depth % 1024 == 0 ? 0 : 0];
}

TEST(Fiber, DeepRecursionFitsInARequestedStackSize) {
  volatile char sink = 0;
  run([&] {
    open_nursery([&](Nursery& n) {
      // ~1.5 MiB of frames needs more than the 256 KiB default.
      n.start_soon(SpawnOptions{.name = "deep", .stack_size = 4 << 20},
                   [&] { recurse(1500, &sink); });
    });
  });
  SUCCEED();
}

TEST(Fiber, RunOptionsStackSizeAppliesToEveryTask) {
  volatile char sink = 0;
  run([&] { recurse(1500, &sink); }, {.stack_size = 4 << 20});
  SUCCEED();
}

// Recurses until the stack runs out (the volatile keeps it from being provably infinite).
void overflow_forever(volatile char* sink) {
  volatile char frame[4096];
  frame[0] = 1;
  *sink = frame[0];
  if (*sink != 0) overflow_forever(sink);
  *sink = frame[1];
}

TEST(FiberDeathTest, StackOverflowIsReportedWithTheTaskName) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        volatile char sink = 0;
        run([&] {
          open_nursery([&](Nursery& n) {
            n.start_soon(SpawnOptions{.name = "runaway-recursion", .stack_size = 64 << 10},
                         [&] { overflow_forever(&sink); });
          });
        });
      },
      "stack overflow in task 'runaway-recursion'|stack-overflow");
}

// Recurses with frames of kFrameBytes, larger than the guard page between task stacks.
template <std::size_t kFrameBytes>
void overflow_with_big_frames(volatile char* sink) {
  volatile char frame[kFrameBytes];
  frame[0] = 1;
  frame[kFrameBytes - 1] = 1;
  *sink = frame[0];
  if (*sink != 0) overflow_with_big_frames<kFrameBytes>(sink);
  *sink = frame[kFrameBytes - 1];
}

// Frames larger than the guard page must not jump it into a sibling's stack: the overflow is
// reported with the task's name, never a silent corruption or a bare SIGSEGV (stack-clash
// protection, which trellis::runtime passes on to its users, probes every page of a frame).
template <std::size_t kFrameBytes>
void expect_big_frame_overflow_reported() {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        volatile char sink = 0;
        run([&] {
          open_nursery([&](Nursery& n) {
            // Siblings on either side, with canaries a jump would destroy.
            for (int i = 0; i < 2; ++i) {
              n.start_soon(SpawnOptions{.stack_size = 64 << 10}, [] {
                volatile char canary[1024];
                for (std::size_t j = 0; j < sizeof canary; ++j) canary[j] = 0x5a;
                sleep(std::chrono::milliseconds(50));
                for (std::size_t j = 0; j < sizeof canary; ++j) {
                  if (canary[j] != 0x5a) std::abort();
                }
              });
            }
            n.start_soon(SpawnOptions{.name = "big-frames", .stack_size = 64 << 10},
                         [&] { overflow_with_big_frames<kFrameBytes>(&sink); });
            for (int i = 0; i < 2; ++i) {
              n.start_soon(SpawnOptions{.stack_size = 64 << 10},
                           [] { sleep(std::chrono::milliseconds(50)); });
            }
          });
        });
        std::exit(0);  // the overflow went unnoticed: the death test fails
      },
      "stack overflow in task 'big-frames'|stack-overflow");
}

TEST(FiberDeathTest, TwelveKibFramesCannotJumpTheGuard) {
  expect_big_frame_overflow_reported<12 << 10>();
}

TEST(FiberDeathTest, FortyKibFramesCannotJumpTheGuard) {
  expect_big_frame_overflow_reported<40 << 10>();
}

TEST(Fiber, ExceptionBeingHandledSurvivesASwitchToAnotherTaskThatThrows) {
  std::string first_seen;
  std::string second_seen;
  run([&] {
    open_nursery([&](Nursery& n) {
      n.start_soon([&] {
        try {
          throw std::runtime_error("first");
        } catch (const std::runtime_error&) {
          checkpoint();  // suspended inside the handler while the other task throws
          checkpoint();
          try {
            throw;  // rethrows *this* task's exception
          } catch (const std::runtime_error& again) {
            first_seen = again.what();
          }
        }
      });
      n.start_soon([&] {
        try {
          throw std::logic_error("second");
        } catch (const std::logic_error& error) {
          checkpoint();
          second_seen = error.what();
          EXPECT_NE(std::current_exception(), nullptr);
        }
        EXPECT_EQ(std::current_exception(), nullptr);
      });
    });
  });
  EXPECT_EQ(first_seen, "first");
  EXPECT_EQ(second_seen, "second");
}

TEST(Fiber, UncaughtExceptionCountIsPerTask) {
  int seen_in_unwinding_task = -1;
  int seen_in_other_task = -1;
  run([&] {
    open_nursery([&](Nursery& n) {
      n.start_soon([&] {
        struct BlocksWhileUnwinding {
          int& seen;
          ~BlocksWhileUnwinding() {
            CancelScope shield;
            shield.set_shield(true);
            shield.run([] { checkpoint(); });
            seen = std::uncaught_exceptions();
          }
        };
        try {
          BlocksWhileUnwinding guard{seen_in_unwinding_task};
          throw std::runtime_error("unwinding");
        } catch (const std::runtime_error&) {
        }
      });
      n.start_soon([&] {
        checkpoint();
        seen_in_other_task = std::uncaught_exceptions();
      });
    });
  });
  EXPECT_EQ(seen_in_unwinding_task, 1);
  EXPECT_EQ(seen_in_other_task, 0);
}

TEST(Fiber, ManySequentialTasksReuseStacks) {
  // 20k tasks one after another would need 5 GiB of stacks without reuse; with the pool,
  // only a handful are ever mapped.
  int finished = 0;
  run([&] {
    open_nursery([&](Nursery& n) {
      for (int i = 0; i < 20000; ++i) n.start_soon([&] { ++finished; });
    });
  });
  EXPECT_EQ(finished, 20000);
}

TEST(Fiber, TenThousandConcurrentlyBlockedTasks) {
  fakes::MockClock clock;
  clock.set_autojump_threshold(Duration::zero());
  int finished = 0;
  run(
      [&] {
        open_nursery([&](Nursery& n) {
          for (int i = 0; i < 10000; ++i) {
            n.start_soon([&, i] {
              sleep(std::chrono::seconds(1 + i % 7));
              ++finished;
            });
          }
        });
        EXPECT_EQ(current_time(), Time(7s));
      },
      {.clock = &clock});
  EXPECT_EQ(finished, 10000);
}

}  // namespace
}  // namespace trellis
