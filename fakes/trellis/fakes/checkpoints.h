// trellis/fakes/checkpoints.h — assert that a block of code does (or does not) pass a
// checkpoint (Trio's trio.testing.assert_checkpoints / assert_no_checkpoints).
//
//   trellis::fakes::assert_checkpoints([] { trellis::sleep(Duration::zero()); });
//   trellis::fakes::assert_no_checkpoints([&] { send_channel.send_nowait(1); });
//
// "Passed a checkpoint" means: the task passed at least one cancel point AND one schedule
// point (a full checkpoint, as Trio counts them). Both return body's result. If the body
// throws, assert_checkpoints lets the exception through unchecked, while
// assert_no_checkpoints still checks (a checkpoint before the throw is still a failure).
// Both must be called from inside a task.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "trellis/core/lowlevel.h"

namespace trellis::fakes {

// The assertion failed: the block did not checkpoint (or did when it must not).
class CheckpointAssertionError : public std::logic_error {
 public:
  explicit CheckpointAssertionError(const char* what) : std::logic_error(what) {}
};

namespace internal {

class CheckpointCounter {
 public:
  CheckpointCounter()
      : task_(lowlevel::current_task()),
        cancel_points_(task_.cancel_points()),
        schedule_points_(task_.schedule_points()) {}
  bool yielded() const noexcept {
    return task_.cancel_points() != cancel_points_ && task_.schedule_points() != schedule_points_;
  }
  bool any_checkpoint() const noexcept {
    return task_.cancel_points() != cancel_points_ || task_.schedule_points() != schedule_points_;
  }

 private:
  const lowlevel::Task& task_;
  std::uint64_t cancel_points_;
  std::uint64_t schedule_points_;
};

}  // namespace internal

// Runs body; throws CheckpointAssertionError if it returned without a checkpoint.
template <class F>
decltype(auto) assert_checkpoints(F&& body) {
  internal::CheckpointCounter counter;
  auto check = [&] {
    if (!counter.yielded()) {
      throw CheckpointAssertionError("assert_checkpoints block did not yield!");
    }
  };
  if constexpr (std::is_void_v<std::invoke_result_t<F>>) {
    std::forward<F>(body)();
    check();
  } else {
    decltype(auto) result = std::forward<F>(body)();
    check();
    return result;
  }
}

// Runs body; throws CheckpointAssertionError if it passed any cancel or schedule point,
// replacing the body's own exception if it threw after one.
template <class F>
decltype(auto) assert_no_checkpoints(F&& body) {
  internal::CheckpointCounter counter;
  auto check = [&] {
    if (counter.any_checkpoint()) {
      throw CheckpointAssertionError("assert_no_checkpoints block yielded!");
    }
  };
  try {
    if constexpr (std::is_void_v<std::invoke_result_t<F>>) {
      std::forward<F>(body)();
      check();
    } else {
      decltype(auto) result = std::forward<F>(body)();
      check();
      return result;
    }
  } catch (const CheckpointAssertionError&) {
    throw;
  } catch (...) {
    check();
    throw;
  }
}

}  // namespace trellis::fakes
