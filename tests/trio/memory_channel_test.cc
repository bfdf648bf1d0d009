// Ports of the semantics of Trio's src/trio/_tests/test_channel.py (memory channels), plus the
// misuse, cancellation and C++-specific cases Trio's tests do not need (move-only values,
// moved-from handles, RAII close, range-for). Each TEST names the Trio test it follows, or says
// it is ours. The channel-based locks of Trio's test_sync.py (ChannelLock1/2/3 under the generic
// lock tests) are ported here too.
//
// Differences in the port: Trio's `await x.aclose()` is close() followed by checkpoint() here
// (Trellis has no aclose); `async with handle:` is a handle owned by a scope or a task (the
// destructor closes it); `async for` is range-for. Type and value checks on max_buffer_size
// (float, negative) are compile-time in C++ and are not ported; math.inf is kUnbounded.
// as_safe_channel is not part of Trellis and its tests are not ported.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "trellis/fakes.h"
#include "trellis/trellis.h"

namespace trellis {
namespace {

using namespace std::chrono_literals;
using fakes::assert_checkpoints;
using fakes::assert_no_checkpoints;
using fakes::wait_all_tasks_blocked;

template <class F>
decltype(auto) run_autojump(F&& main, std::uint64_t seed = 1) {
  fakes::MockClock clock;
  clock.set_autojump_threshold(Duration::zero());
  return run(std::forward<F>(main), RunOptions{.clock = &clock, .schedule_seed = seed});
}

// Trio's `await channel.aclose()`.
template <class Channel>
void aclose(Channel& channel) {
  channel.close();
  checkpoint();
}

// A value that counts its live instances, so a test sees a value destroyed (or leaked, or
// destroyed twice: ASan) rather than delivered.
struct Counted {
  static inline int live = 0;
  explicit Counted(int v) : value(v) { ++live; }
  Counted(Counted&& other) noexcept : value(std::exchange(other.value, -1)) { ++live; }
  Counted& operator=(Counted&&) = delete;
  ~Counted() { --live; }
  int value;
};

// ---- Ports of test_channel.py --------------------------------------------------------------

// test_channel
TEST(TrioMemoryChannel, Channel) {
  run_autojump([] {
    auto [s, r] = open_memory_channel<std::string>(2);
    s.send_nowait("1");
    assert_checkpoints([&] { s.send("2"); });
    EXPECT_THROW(s.send_nowait("none"), WouldBlock);

    EXPECT_EQ(assert_checkpoints([&] { return r.receive(); }), "1");
    EXPECT_EQ(r.receive_nowait(), "2");
    EXPECT_THROW(r.receive_nowait(), WouldBlock);

    s.send_nowait("last");
    aclose(s);
    EXPECT_THROW(s.send("too late"), ClosedResourceError);
    EXPECT_THROW(s.send_nowait("too late"), ClosedResourceError);
    EXPECT_THROW(s.clone(), ClosedResourceError);
    aclose(s);  // closing twice is fine

    EXPECT_EQ(r.receive_nowait(), "last");
    EXPECT_THROW(r.receive(), EndOfChannel);
    aclose(r);
    EXPECT_THROW(r.receive(), ClosedResourceError);
    EXPECT_THROW(r.receive_nowait(), ClosedResourceError);
    aclose(r);
  });
}

// test_553: a receive cancelled by a timeout leaves no trace; a later send buffers normally.
TEST(TrioMemoryChannel, CancelledReceiveLeavesTheChannelUsable) {
  run_autojump([] {
    auto [s, r] = open_memory_channel<std::string>(1);
    CancelScope timeout_scope;
    timeout_scope.set_deadline(current_time() + 10s);
    timeout_scope.run([&] { r.receive(); });
    EXPECT_TRUE(timeout_scope.cancelled_caught());
    EXPECT_EQ(r.statistics().tasks_waiting_receive, 0u);
    s.send("Test for PR #553");
    EXPECT_EQ(r.statistics().current_buffer_used, 1u);
  });
}

// test_channel_multiple_producers
TEST(TrioMemoryChannel, MultipleProducers) {
  run_autojump([] {
    auto producer = [](MemorySendChannel<int> send_channel, int i) {
      // The task owns its clone and closes it on exit.
      for (int j = 3 * i; j < 3 * (i + 1); ++j) send_channel.send(j);
    };
    auto [send_channel, receive_channel] = open_memory_channel<int>(0);
    std::vector<int> got;
    open_nursery([&](Nursery& nursery) {
      {
        // We hand out clones to all the new producers, and then close the original.
        MemorySendChannel<int> original = std::move(send_channel);
        for (int i = 0; i < 10; ++i) nursery.start_soon(producer, original.clone(), i);
      }
      for (int value : receive_channel) got.push_back(value);
    });
    std::sort(got.begin(), got.end());
    std::vector<int> expected(30);
    for (int i = 0; i < 30; ++i) expected[static_cast<std::size_t>(i)] = i;
    EXPECT_EQ(got, expected);
  });
}

// test_channel_multiple_consumers
TEST(TrioMemoryChannel, MultipleConsumers) {
  run_autojump([] {
    std::set<int> successful_receivers;
    std::vector<int> received;
    auto [send_channel, receive_channel] = open_memory_channel<int>(1);
    open_nursery([&](Nursery& nursery) {
      for (int i = 0; i < 5; ++i) {
        nursery.start_soon([&, i] {
          for (int value : receive_channel) {
            successful_receivers.insert(i);
            received.push_back(value);
          }
        });
      }
      wait_all_tasks_blocked();
      for (int i = 0; i < 10; ++i) send_channel.send(i);
      send_channel.close();  // Trio: leaving `async with send_channel`
    });
    EXPECT_EQ(successful_receivers, (std::set<int>{0, 1, 2, 3, 4}));
    EXPECT_EQ(received.size(), 10u);
    EXPECT_EQ(std::set<int>(received.begin(), received.end()),
              (std::set<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  });
}

// The three scenarios of test_close_basics / test_close_sync, closing with `close_fn`.
template <class CloseFn>
void check_close_wakes_blocked_tasks(CloseFn close_fn) {
  // Closing send -> a blocked send through it gets ClosedResourceError...
  {
    auto [s, r] = open_memory_channel<int>(0);
    open_nursery([&](Nursery& nursery) {
      nursery.start_soon([&] { EXPECT_THROW(s.send(0), ClosedResourceError); });
      wait_all_tasks_blocked();
      close_fn(s);
    });
    // ...and it's persistent,
    EXPECT_THROW(s.send_nowait(0), ClosedResourceError);
    EXPECT_THROW(s.send(0), ClosedResourceError);
    // and receive gets EndOfChannel.
    EXPECT_THROW(r.receive_nowait(), EndOfChannel);
    EXPECT_THROW(r.receive(), EndOfChannel);
  }
  // Closing receive -> a blocked send gets BrokenResourceError, persistently.
  {
    auto [s, r] = open_memory_channel<int>(0);
    open_nursery([&](Nursery& nursery) {
      nursery.start_soon([&] { EXPECT_THROW(s.send(0), BrokenResourceError); });
      wait_all_tasks_blocked();
      close_fn(r);
    });
    EXPECT_THROW(s.send_nowait(0), BrokenResourceError);
    EXPECT_THROW(s.send(0), BrokenResourceError);
  }
  // Closing receive -> a blocked receive through it gets ClosedResourceError, persistently.
  {
    auto [s2, r2] = open_memory_channel<int>(0);
    open_nursery([&](Nursery& nursery) {
      nursery.start_soon([&] { EXPECT_THROW(r2.receive(), ClosedResourceError); });
      wait_all_tasks_blocked();
      close_fn(r2);
    });
    EXPECT_THROW(r2.receive_nowait(), ClosedResourceError);
    EXPECT_THROW(r2.receive(), ClosedResourceError);
  }
}

// test_close_basics
TEST(TrioMemoryChannel, CloseBasics) {
  run_autojump([] { check_close_wakes_blocked_tasks([](auto& channel) { aclose(channel); }); });
}

// test_close_sync
TEST(TrioMemoryChannel, CloseSync) {
  run_autojump([] {
    check_close_wakes_blocked_tasks(
        [](auto& channel) { assert_no_checkpoints([&] { channel.close(); }); });
  });
}

// test_receive_channel_clone_and_close
TEST(TrioMemoryChannel, ReceiveChannelCloneAndClose) {
  run_autojump([] {
    auto [s, r] = open_memory_channel<int>(10);
    MemoryReceiveChannel<int> r2 = r.clone();
    MemoryReceiveChannel<int> r3 = r.clone();

    s.send_nowait(0);
    aclose(r);
    { MemoryReceiveChannel<int> scoped = std::move(r2); }  // `with r2: pass`

    EXPECT_THROW(r.clone(), ClosedResourceError);
    EXPECT_THROW(r2.clone(), ClosedResourceError);  // moved from: inert, behaves as closed

    // Can still send, r3 is still open.
    s.send_nowait(0);
    aclose(r3);
    // But now the receiver is really closed.
    EXPECT_THROW(s.send_nowait(0), BrokenResourceError);
  });
}

// test_close_multiple_send_handles
TEST(TrioMemoryChannel, CloseMultipleSendHandles) {
  run_autojump([] {
    // With multiple send handles, closing one handle only wakes senders on that handle, but
    // others can continue just fine.
    auto [s1, r] = open_memory_channel<std::string>(0);
    MemorySendChannel<std::string> s2 = s1.clone();
    open_nursery([&](Nursery& nursery) {
      nursery.start_soon([&] { EXPECT_THROW(s1.send("nope"), ClosedResourceError); });
      nursery.start_soon([&] { s2.send("ok"); });
      wait_all_tasks_blocked();
      aclose(s1);
      EXPECT_EQ(r.receive(), "ok");
    });
  });
}

// test_close_multiple_receive_handles
TEST(TrioMemoryChannel, CloseMultipleReceiveHandles) {
  run_autojump([] {
    auto [s, r1] = open_memory_channel<std::string>(0);
    MemoryReceiveChannel<std::string> r2 = r1.clone();
    open_nursery([&](Nursery& nursery) {
      nursery.start_soon([&] { EXPECT_THROW(r1.receive(), ClosedResourceError); });
      nursery.start_soon([&] { EXPECT_EQ(r2.receive(), "ok"); });
      wait_all_tasks_blocked();
      aclose(r1);
      s.send("ok");
    });
  });
}

// test_inf_capacity
TEST(TrioMemoryChannel, InfCapacity) {
  run_autojump([] {
    auto [send, receive] = open_memory_channel<int>(kUnbounded);
    {
      // It's accepted, and we can send all day without blocking.
      MemorySendChannel<int> scoped = std::move(send);
      for (int i = 0; i < 10; ++i) scoped.send_nowait(i);
    }
    std::vector<int> got;
    for (int i : receive) got.push_back(i);
    EXPECT_EQ(got, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
    EXPECT_EQ(receive.statistics().max_buffer_size, kUnbounded);
  });
}

// test_statistics
TEST(TrioMemoryChannel, Statistics) {
  run_autojump([] {
    auto [s, r] = open_memory_channel<int>(2);

    EXPECT_EQ(s.statistics(), r.statistics());
    MemoryChannelStatistics stats = s.statistics();
    EXPECT_EQ(stats.current_buffer_used, 0u);
    EXPECT_EQ(stats.max_buffer_size, 2u);
    EXPECT_EQ(stats.open_send_channels, 1u);
    EXPECT_EQ(stats.open_receive_channels, 1u);
    EXPECT_EQ(stats.tasks_waiting_send, 0u);
    EXPECT_EQ(stats.tasks_waiting_receive, 0u);
    EXPECT_EQ(stats.peak_buffer_used, 0u);

    s.send_nowait(0);
    EXPECT_EQ(s.statistics().current_buffer_used, 1u);
    EXPECT_EQ(s.statistics().peak_buffer_used, 1u);

    MemorySendChannel<int> s2 = s.clone();
    EXPECT_EQ(s.statistics().open_send_channels, 2u);
    aclose(s);
    EXPECT_EQ(s2.statistics().open_send_channels, 1u);

    {
      MemoryReceiveChannel<int> r2 = r.clone();
      EXPECT_EQ(s2.statistics().open_receive_channels, 2u);
      aclose(r2);
      EXPECT_EQ(s2.statistics().open_receive_channels, 1u);
    }

    open_nursery([&](Nursery& nursery) {
      s2.send_nowait(0);  // fill up the buffer
      EXPECT_EQ(s.statistics().current_buffer_used, 2u);
      EXPECT_EQ(s.statistics().peak_buffer_used, 2u);
      nursery.start_soon([&] { s2.send(0); });
      nursery.start_soon([&] { s2.send(0); });
      wait_all_tasks_blocked();
      EXPECT_EQ(s.statistics().tasks_waiting_send, 2u);
      nursery.cancel_scope().cancel();
    });
    EXPECT_EQ(s.statistics().tasks_waiting_send, 0u);

    // Empty out the buffer again.
    try {
      for (;;) r.receive_nowait();
    } catch (const WouldBlock&) {
    }

    // Draining the buffer doesn't reset the high-water mark.
    EXPECT_EQ(s.statistics().current_buffer_used, 0u);
    EXPECT_EQ(s.statistics().peak_buffer_used, 2u);

    open_nursery([&](Nursery& nursery) {
      nursery.start_soon([&] { r.receive(); });
      wait_all_tasks_blocked();
      EXPECT_EQ(s.statistics().tasks_waiting_receive, 1u);
      nursery.cancel_scope().cancel();
    });
    EXPECT_EQ(s.statistics().tasks_waiting_receive, 0u);
  });
}

// test_channel_fairness
TEST(TrioMemoryChannel, ChannelFairness) {
  run_autojump([] {
    {
      // We can remove an item we just sent, and send an item back in after, if no-one else
      // is waiting.
      auto [s, r] = open_memory_channel<int>(1);
      s.send_nowait(1);
      EXPECT_EQ(r.receive_nowait(), 1);
      s.send_nowait(2);
      EXPECT_EQ(r.receive_nowait(), 2);

      // But if someone else is waiting to receive, then they "own" the item we send, so we
      // can't receive it (even though we run first).
      int result = 0;
      open_nursery([&](Nursery& nursery) {
        nursery.start_soon([&] { result = r.receive(); });
        wait_all_tasks_blocked();
        s.send_nowait(2);
        EXPECT_THROW(r.receive_nowait(), WouldBlock);
      });
      EXPECT_EQ(result, 2);
    }
    {
      // And the analogous situation for send: if we free up a space, we can't immediately
      // send something in it if someone is already waiting to do that.
      auto [s, r] = open_memory_channel<int>(1);
      s.send_nowait(1);
      EXPECT_THROW(s.send_nowait(0), WouldBlock);
      open_nursery([&](Nursery& nursery) {
        nursery.start_soon([&] { s.send(2); });
        wait_all_tasks_blocked();
        EXPECT_EQ(r.receive_nowait(), 1);
        EXPECT_THROW(s.send_nowait(3), WouldBlock);
        EXPECT_EQ(r.receive(), 2);
      });
    }
  });
}

// test_unbuffered
TEST(TrioMemoryChannel, Unbuffered) {
  run_autojump([] {
    auto [s, r] = open_memory_channel<int>(0);
    EXPECT_THROW(r.receive_nowait(), WouldBlock);
    EXPECT_THROW(s.send_nowait(1), WouldBlock);
    open_nursery([&](Nursery& nursery) {
      nursery.start_soon([&] { assert_checkpoints([&] { s.send(1); }); });
      EXPECT_EQ(assert_checkpoints([&] { return r.receive(); }), 1);
    });
    EXPECT_THROW(r.receive_nowait(), WouldBlock);
  });
}

// ---- Ours: misuse --------------------------------------------------------------------------

// Ours (Trio's WouldBlock / BrokenResourceError / ClosedResourceError contract, every handle
// operation after close).
TEST(TrioMemoryChannel, MisuseRaisesTheDocumentedErrors) {
  run_autojump([] {
    auto [s, r] = open_memory_channel<int>(1);
    EXPECT_THROW(r.receive_nowait(), WouldBlock);  // empty, a sender is open
    { MemoryReceiveChannel<int> gone = std::move(r); }
    EXPECT_THROW(s.send_nowait(1), BrokenResourceError);  // every receiver closed
    EXPECT_THROW(s.send(1), BrokenResourceError);
    MemorySendChannel<int> s2 = s.clone();  // cloning still works: this handle is open
    s.close();
    s.close();  // idempotent
    EXPECT_THROW(s.send(1), ClosedResourceError);
    EXPECT_THROW(s.send_nowait(1), ClosedResourceError);
    EXPECT_THROW(s.clone(), ClosedResourceError);
    EXPECT_EQ(s.statistics().open_send_channels, 1u);  // statistics work after close
    // Moved-from handles are inert: everything throws ClosedResourceError, close is a no-op.
    EXPECT_THROW(r.receive(), ClosedResourceError);
    EXPECT_THROW(r.receive_nowait(), ClosedResourceError);
    EXPECT_THROW(r.clone(), ClosedResourceError);
    EXPECT_THROW(r.statistics(), ClosedResourceError);
    r.close();
    EXPECT_EQ(s2.statistics().open_receive_channels, 0u);
  });
}

// Ours: Trio's send/receive call checkpoint_if_cancelled() before anything else, so in a
// cancelled scope they raise Cancelled even when they could complete, and change nothing.
TEST(TrioMemoryChannel, SendAndReceiveInACancelledScopeRaiseCancelledAndChangeNothing) {
  run_autojump([] {
    auto [s, r] = open_memory_channel<int>(1);
    s.send_nowait(7);
    CancelScope scope;
    scope.cancel();
    EXPECT_FALSE(scope.run([&] { r.receive(); }));
    EXPECT_EQ(r.statistics().current_buffer_used, 1u);
    CancelScope scope2;
    scope2.cancel();
    EXPECT_FALSE(scope2.run([&] {
      s.close();
      s.send(8);
    }));  // Cancelled before Closed
    EXPECT_EQ(r.receive_nowait(), 7);
    EXPECT_THROW(r.receive_nowait(), EndOfChannel);
  });
}

// Ours (trio-api.md: *_nowait, clone and close are synchronous, never checkpoints).
TEST(TrioMemoryChannel, NowaitCloneAndCloseAreNotCheckpoints) {
  run_autojump([] {
    auto [s, r] = open_memory_channel<int>(1);
    assert_no_checkpoints([&] {
      s.send_nowait(1);
      EXPECT_EQ(r.receive_nowait(), 1);
      MemorySendChannel<int> s2 = s.clone();
      MemoryReceiveChannel<int> r2 = r.clone();
      s2.close();
      r2.close();
      (void)s.statistics();
    });
  });
}

// ---- Ours: cancellation is atomic ----------------------------------------------------------

// A blocked send cancelled before any receiver took its value: the value is not delivered
// (and is destroyed exactly once, with the send's argument); the channel stays usable.
TEST(TrioMemoryChannel, CancelledSendValueIsNeitherDeliveredNorLeaked) {
  Counted::live = 0;
  run_autojump([] {
    auto [s, r] = open_memory_channel<Counted>(0);
    bool cancelled = false;
    open_nursery([&](Nursery& nursery) {
      nursery.start_soon([&] {
        CancelScope scope;
        scope.set_deadline(current_time() + 1s);
        const bool completed = scope.run([&] { s.send(Counted(1)); });
        cancelled = !completed && scope.cancelled_caught();
      });
    });
    EXPECT_TRUE(cancelled);
    EXPECT_EQ(Counted::live, 0);
    EXPECT_EQ(s.statistics().tasks_waiting_send, 0u);
    EXPECT_THROW(r.receive_nowait(), WouldBlock);  // value 1 is not in the channel
    open_nursery([&](Nursery& nursery) {
      nursery.start_soon([&] { s.send(Counted(2)); });
      EXPECT_EQ(r.receive().value, 2);
    });
  });
  EXPECT_EQ(Counted::live, 0);
}

// Once a receiver has taken a blocked sender's value, the send completes even if the sender
// is cancelled before it runs again (Trio: the abort function is never called after
// reschedule) — the value is delivered exactly once, and the send does not raise.
TEST(TrioMemoryChannel, SendCancelledAfterHandoffCompletes) {
  Counted::live = 0;
  run_autojump([] {
    auto [s, r] = open_memory_channel<Counted>(0);
    bool send_returned = false;
    std::vector<int> received;
    CancelScope* sender_scope = nullptr;  // outlives the nursery block: the child resets it
    open_nursery([&](Nursery& nursery) {
      nursery.start_soon([&] {
        CancelScope scope;
        sender_scope = &scope;
        scope.run([&] {
          s.send(Counted(1));
          send_returned = true;
        });
        sender_scope = nullptr;
      });
      wait_all_tasks_blocked();
      received.push_back(r.receive_nowait().value);  // takes the value, wakes the sender
      sender_scope->cancel();                        // before the sender runs again
    });
    EXPECT_TRUE(send_returned);
    EXPECT_EQ(received, std::vector<int>{1});
    EXPECT_THROW(r.receive_nowait(), WouldBlock);
  });
  EXPECT_EQ(Counted::live, 0);
}

// The receiving twin: a value handed to a blocked receiver is returned even if the receiver
// is cancelled before it runs again; a receive cancelled before any handoff takes nothing.
TEST(TrioMemoryChannel, ReceiveCancelledAfterHandoffReturnsTheValue) {
  run_autojump([] {
    auto [s, r] = open_memory_channel<std::unique_ptr<int>>(0);
    std::vector<int> got;
    CancelScope* receiver_scope = nullptr;  // outlives the nursery block: the child resets it
    open_nursery([&](Nursery& nursery) {
      nursery.start_soon([&] {
        CancelScope scope;
        receiver_scope = &scope;
        scope.run([&] { got.push_back(*r.receive()); });
        receiver_scope = nullptr;
      });
      wait_all_tasks_blocked();
      s.send_nowait(std::make_unique<int>(5));
      receiver_scope->cancel();
    });
    EXPECT_EQ(got, std::vector<int>{5});
    open_nursery([&](Nursery& nursery) {
      nursery.start_soon([&] { got.push_back(*r.receive()); });
      wait_all_tasks_blocked();
      nursery.cancel_scope().cancel();
    });
    EXPECT_EQ(got, std::vector<int>{5});
    EXPECT_EQ(s.statistics().tasks_waiting_receive, 0u);
  });
}

// ---- Ours: C++ specifics -------------------------------------------------------------------

struct NoDefault {
  explicit NoDefault(int v) : value(v) {}
  NoDefault(NoDefault&&) = default;
  NoDefault& operator=(NoDefault&&) = default;
  int value;
};

// Move-only and non-default-constructible values, through every path (buffer, handoff to a
// receiver, taken from a blocked sender, ring growth).
TEST(TrioMemoryChannel, MoveOnlyAndNonDefaultConstructibleValues) {
  run_autojump([] {
    {
      auto [s, r] = open_memory_channel<std::unique_ptr<int>>(kUnbounded);
      for (int i = 0; i < 100; ++i) s.send_nowait(std::make_unique<int>(i));  // grows the ring
      for (int i = 0; i < 50; ++i) EXPECT_EQ(*r.receive(), i);
      for (int i = 100; i < 150; ++i) s.send(std::make_unique<int>(i));  // wraps around
      s.close();
      int expected = 50;
      for (std::unique_ptr<int>& p : r) EXPECT_EQ(*p, expected++);
      EXPECT_EQ(expected, 150);
    }
    {
      auto [s, r] = open_memory_channel<NoDefault>(0);
      open_nursery([&](Nursery& nursery) {
        nursery.start_soon([&] {
          for (int i = 0; i < 3; ++i) s.send(NoDefault(i));
          s.close();
        });
        int expected = 0;
        for (NoDefault& v : r) EXPECT_EQ(v.value, expected++);
        EXPECT_EQ(expected, 3);
      });
    }
  });
}

// A buffered channel with blocked senders: a receive takes the buffer's front and pulls the
// oldest blocked sender's value into the back, so the order is the order of send() calls.
TEST(TrioMemoryChannel, BlockedSendersJoinTheBufferInOrder) {
  run_autojump([] {
    auto [s, r] = open_memory_channel<int>(2);
    s.send_nowait(1);
    s.send_nowait(2);
    open_nursery([&](Nursery& nursery) {
      nursery.start_soon([&] { s.send(3); });
      wait_all_tasks_blocked();
      nursery.start_soon([&] { s.send(4); });
      wait_all_tasks_blocked();
      EXPECT_EQ(r.statistics().tasks_waiting_send, 2u);
      std::vector<int> got;
      for (int i = 0; i < 4; ++i) got.push_back(r.receive());
      EXPECT_EQ(got, (std::vector<int>{1, 2, 3, 4}));
      EXPECT_EQ(r.statistics().peak_buffer_used, 2u);
    });
  });
}

// Blocked receivers are served first come, first served.
TEST(TrioMemoryChannel, BlockedReceiversAreServedFifo) {
  run_autojump([] {
    auto [s, r] = open_memory_channel<int>(0);
    std::vector<std::pair<int, int>> got;  // (receiver, value)
    open_nursery([&](Nursery& nursery) {
      for (int i = 0; i < 3; ++i) {
        nursery.start_soon([&, i] { got.emplace_back(i, r.receive()); });
        wait_all_tasks_blocked();
      }
      for (int v = 10; v < 13; ++v) s.send_nowait(v);
    });
    std::sort(got.begin(), got.end());
    EXPECT_EQ(got, (std::vector<std::pair<int, int>>{{0, 10}, {1, 11}, {2, 12}}));
  });
}

// RAII: a task that owns the last send handle closes it by exiting, which ends the receivers'
// loop; blocked receivers are woken with EndOfChannel.
TEST(TrioMemoryChannel, DestructorClosesTheHandle) {
  run_autojump([] {
    auto [s, r] = open_memory_channel<int>(0);
    int ends = 0;
    open_nursery([&](Nursery& nursery) {
      for (int i = 0; i < 2; ++i) {
        nursery.start_soon([&] {
          EXPECT_THROW(r.receive(), EndOfChannel);
          ++ends;
        });
      }
      wait_all_tasks_blocked();
      EXPECT_EQ(r.statistics().tasks_waiting_receive, 2u);
      nursery.start_soon([]([[maybe_unused]] MemorySendChannel<int> owned) { sleep(1s); },
                         std::move(s));
    });
    EXPECT_EQ(ends, 2);
    EXPECT_EQ(r.statistics().open_send_channels, 0u);
  });
}

// Closing the last receive handle drops the buffered values (Trio clears its deque).
TEST(TrioMemoryChannel, ClosingTheLastReceiverDropsTheBuffer) {
  Counted::live = 0;
  {
    auto [s, r] = open_memory_channel<Counted>(4);  // outside a run: synchronous calls only
    s.send_nowait(Counted(1));
    s.send_nowait(Counted(2));
    EXPECT_EQ(Counted::live, 2);
    r.close();
    EXPECT_EQ(Counted::live, 0);
    EXPECT_EQ(s.statistics().current_buffer_used, 0u);
    EXPECT_THROW(s.send_nowait(Counted(3)), BrokenResourceError);
  }
  EXPECT_EQ(Counted::live, 0);
}

// Move assignment closes the handle assigned over.
TEST(TrioMemoryChannel, MoveAssignmentClosesTheOverwrittenHandle) {
  auto [s, r] = open_memory_channel<int>(1);
  auto [s2, r2] = open_memory_channel<int>(1);
  s2 = std::move(s);
  EXPECT_THROW(r2.receive_nowait(), EndOfChannel);  // s2's own channel lost its sender
  s2.send_nowait(3);
  EXPECT_EQ(r.receive_nowait(), 3);
  EXPECT_EQ(r.statistics().open_send_channels, 1u);
}

// ---- Ports of test_sync.py's channel-based locks --------------------------------------------
//
// Trio's test_sync.py also runs its generic lock tests over three locks built from memory
// channels (ChannelLock1/2/3), which exercise the channels' FIFO fairness. They live here.

// ChannelLock1(capacity): holding the lock = one of `capacity` slots filled by send().
template <std::size_t kCapacity>
class ChannelLock1 {
 public:
  ChannelLock1() {
    for (std::size_t i = 0; i + 1 < kCapacity; ++i) channels_.first.send_nowait(0);
  }
  void acquire_nowait() { channels_.first.send_nowait(0); }
  void acquire() { channels_.first.send(0); }
  void release() { channels_.second.receive_nowait(); }

 private:
  std::pair<MemorySendChannel<int>, MemoryReceiveChannel<int>> channels_ =
      open_memory_channel<int>(kCapacity);
};

// ChannelLock2: the lock is a token in the buffer; acquire() receives it.
class ChannelLock2 {
 public:
  ChannelLock2() { channels_.first.send_nowait(0); }
  void acquire_nowait() { channels_.second.receive_nowait(); }
  void acquire() { channels_.second.receive(); }
  void release() { channels_.first.send_nowait(0); }

 private:
  std::pair<MemorySendChannel<int>, MemoryReceiveChannel<int>> channels_ =
      open_memory_channel<int>(10);
};

// ChannelLock3: a flag, and a rendezvous channel where waiters queue in send().
class ChannelLock3 {
 public:
  void acquire_nowait() {
    ASSERT_FALSE(acquired_);
    acquired_ = true;
  }
  void acquire() {
    if (acquired_) {
      channels_.first.send(0);
    } else {
      acquired_ = true;
      checkpoint();
    }
  }
  void release() {
    try {
      channels_.second.receive_nowait();  // hands the lock to the longest-waiting sender
    } catch (const WouldBlock&) {
      ASSERT_TRUE(acquired_);
      acquired_ = false;
    }
  }

 private:
  // Invariant: true from an acquire until a release finds no task waiting to acquire.
  bool acquired_ = false;
  std::pair<MemorySendChannel<int>, MemoryReceiveChannel<int>> channels_ =
      open_memory_channel<int>(0);
};

template <class Lock>
class TrioChannelLock : public ::testing::Test {};
using ChannelLockTypes =
    ::testing::Types<ChannelLock1<10>, ChannelLock1<1>, ChannelLock2, ChannelLock3>;
TYPED_TEST_SUITE(TrioChannelLock, ChannelLockTypes);

// test_sync.py::test_generic_lock_exclusion
TYPED_TEST(TrioChannelLock, Exclusion) {
  for (std::uint64_t seed = 1; seed <= 4; ++seed) {
    run_autojump(
        [] {
          constexpr int kLoops = 10;
          constexpr int kWorkers = 5;
          bool in_critical_section = false;
          int acquires = 0;
          TypeParam lock_like;
          open_nursery([&](Nursery& nursery) {
            for (int w = 0; w < kWorkers; ++w) {
              nursery.start_soon([&] {
                for (int i = 0; i < kLoops; ++i) {
                  lock_like.acquire();
                  ++acquires;
                  EXPECT_FALSE(in_critical_section);
                  in_critical_section = true;
                  checkpoint();
                  checkpoint();
                  EXPECT_TRUE(in_critical_section);
                  in_critical_section = false;
                  lock_like.release();
                }
              });
            }
          });
          EXPECT_FALSE(in_critical_section);
          EXPECT_EQ(acquires, kLoops * kWorkers);
        },
        seed);
  }
}

// test_sync.py::test_generic_lock_fifo_fairness
TYPED_TEST(TrioChannelLock, FifoFairness) {
  for (std::uint64_t seed = 1; seed <= 4; ++seed) {
    run_autojump(
        [] {
          constexpr int kLoops = 5;
          std::vector<int> initial_order;
          std::vector<int> record;
          TypeParam lock_like;
          open_nursery([&](Nursery& nursery) {
            for (int name = 1; name <= 3; ++name) {
              nursery.start_soon([&, name] {
                initial_order.push_back(name);
                for (int i = 0; i < kLoops; ++i) {
                  lock_like.acquire();
                  record.push_back(name);
                  lock_like.release();
                }
              });
            }
          });
          // The first three could be in any order, but after that they repeat in that order.
          ASSERT_EQ(record.size(), 3u * kLoops);
          for (std::size_t i = 0; i < kLoops; ++i) {
            EXPECT_EQ(std::vector<int>(record.begin() + static_cast<std::ptrdiff_t>(3 * i),
                                       record.begin() + static_cast<std::ptrdiff_t>(3 * i + 3)),
                      initial_order);
          }
        },
        seed);
  }
}

// test_sync.py::test_generic_lock_acquire_nowait_blocks_acquire
TYPED_TEST(TrioChannelLock, AcquireNowaitBlocksAcquire) {
  run_autojump([] {
    TypeParam lock_like;
    std::vector<std::string> record;
    open_nursery([&](Nursery& nursery) {
      lock_like.acquire_nowait();
      nursery.start_soon([&] {
        record.push_back("started");
        lock_like.acquire();
        lock_like.release();
        record.push_back("finished");
      });
      wait_all_tasks_blocked();
      EXPECT_EQ(record, std::vector<std::string>{"started"});
      lock_like.release();
    });
    EXPECT_EQ(record, (std::vector<std::string>{"started", "finished"}));
  });
}

}  // namespace
}  // namespace trellis
