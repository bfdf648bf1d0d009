// Ports of the memory-stream tests of Trio's src/trio/_tests/test_testing.py
// (test__UnboundeByteQueue, test_MemorySendStream, test_MemoryReceiveStream,
// test_MemoryRecvStream_closing, test_memory_stream_pump, test_memory_stream_one_way_pair,
// test_memory_stream_pair, test_memory_streams_with_generic_tests,
// test_lockstep_streams_with_generic_tests), plus proof that the conformance checks of
// fakes/check_streams.h fail on streams with deliberate faults.
//
// Method: every run uses a MockClock with autojump threshold 0 (Trio's autojump_clock) and
// the default randomized batch order with a fixed seed; the generic checks run under several
// seeds. Trio's type checks (put("string") -> TypeError, max_bytes=1.5) have no C++
// counterpart; max_bytes=None is kAllAvailable (or a large buffer for receive_some), and
// "max_bytes < 1" is max_bytes == 0 or an empty buffer -> std::invalid_argument. Trio's
// synchronous close() is close_nowait(); its aclose() is close(); aclose_forcefully is
// close_forcefully. Hook identity ("hook is send_all_hook") is checked by calling the hooks.
#include <gtest/gtest.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "trellis/fakes.h"
#include "trellis/trellis.h"

namespace trellis {
namespace {

using fakes::assert_checkpoints;
using fakes::kAllAvailable;
using fakes::lockstep_stream_one_way_pair;
using fakes::lockstep_stream_pair;
using fakes::memory_stream_one_way_pair;
using fakes::memory_stream_pair;
using fakes::memory_stream_pump;
using fakes::MemoryReceiveStream;
using fakes::MemorySendStream;
using fakes::StreamCheckError;
using fakes::wait_all_tasks_blocked;
using fakes::internal::UnboundedByteQueue;

// Trio's autojump_clock fixture; the default (Trio-like random) batch order with `seed`.
template <class F>
void run_test(F&& main, std::uint64_t seed = 1) {
  fakes::MockClock clock;
  clock.set_autojump_threshold(Duration::zero());
  run(std::forward<F>(main), {.clock = &clock, .schedule_seed = seed});
}

std::span<const std::byte> b(std::string_view text) {
  return std::as_bytes(std::span(text.data(), text.size()));
}

std::string str(const std::vector<std::byte>& data) {
  return {reinterpret_cast<const char*>(data.data()), data.size()};
}

// receive_some into a buffer of max_bytes, as a string.
std::string receive(ReceiveStream& stream, std::size_t max_bytes) {
  std::vector<std::byte> buffer(max_bytes);
  buffer.resize(stream.receive_some(buffer));
  return str(buffer);
}

// pytest.RaisesGroup(E): the body throws a group holding exactly one E.
template <class E, class F>
void expect_group_of_one(F&& body) {
  try {
    std::forward<F>(body)();
  } catch (const ExceptionGroup& group) {
    ASSERT_EQ(group.exceptions().size(), 1u) << group.what();
    EXPECT_THROW(std::rethrow_exception(group.exceptions().front()), E);
    return;
  }
  ADD_FAILURE() << "expected an ExceptionGroup";
}

std::pair<std::unique_ptr<StapledStream>, std::unique_ptr<StapledStream>> boxed(
    std::pair<StapledStream, StapledStream> pair) {
  return {std::make_unique<StapledStream>(std::move(pair.first)),
          std::make_unique<StapledStream>(std::move(pair.second))};
}

// Ports test_testing.py::test__UnboundeByteQueue
TEST(TrioMemoryStreams, UnboundedByteQueue) {
  run_test([] {
    UnboundedByteQueue ubq;

    ubq.put(b("123"));
    ubq.put(b("456"));
    EXPECT_EQ(str(ubq.get_nowait(1)), "1");
    EXPECT_EQ(str(ubq.get_nowait(10)), "23456");
    ubq.put(b("789"));
    EXPECT_EQ(str(ubq.get_nowait()), "789");

    EXPECT_THROW(ubq.get_nowait(10), WouldBlock);
    EXPECT_THROW(ubq.get_nowait(), WouldBlock);
    // Trio: put("string") -> TypeError. Here: max_bytes must be >= 1.
    EXPECT_THROW(ubq.get_nowait(0), std::invalid_argument);

    ubq.put(b("abc"));
    EXPECT_EQ(str(assert_checkpoints([&] { return ubq.get(10); })), "abc");
    ubq.put(b("def"));
    ubq.put(b("ghi"));
    EXPECT_EQ(str(assert_checkpoints([&] { return ubq.get(1); })), "d");
    EXPECT_EQ(str(assert_checkpoints([&] { return ubq.get(); })), "efghi");

    auto putter = [&](std::string data) {
      wait_all_tasks_blocked();
      ubq.put(b(data));
    };
    auto getter = [&](std::string expect) {
      EXPECT_EQ(str(assert_checkpoints([&] { return ubq.get(); })), expect);
    };

    open_nursery([&](Nursery& n) {
      n.start_soon(getter, "xyz");
      n.start_soon(putter, "xyz");
    });

    // Two gets at the same time -> BusyResourceError.
    expect_group_of_one<BusyResourceError>([&] {
      open_nursery([&](Nursery& n) {
        n.start_soon(getter, "asdf");
        n.start_soon(getter, "asdf");
      });
    });

    // Closing.
    ubq.close();
    EXPECT_THROW(ubq.put(b("---")), ClosedResourceError);

    EXPECT_EQ(str(ubq.get_nowait(10)), "");
    EXPECT_EQ(str(ubq.get_nowait()), "");
    EXPECT_EQ(str(ubq.get(10)), "");
    EXPECT_EQ(str(ubq.get()), "");

    // close is idempotent.
    ubq.close();

    // close wakes up blocked getters.
    UnboundedByteQueue ubq2;
    open_nursery([&](Nursery& n) {
      n.start_soon([&] { EXPECT_EQ(str(assert_checkpoints([&] { return ubq2.get(); })), ""); });
      n.start_soon([&] {
        wait_all_tasks_blocked();
        ubq2.close();
      });
    });
  });
}

// Beyond Trio: an empty put() (what wait_send_all_might_not_block uses to test for closure)
// wakes a blocked get() without making it return empty-handed (Trio would trip an assert).
TEST(TrioMemoryStreams, UnboundedByteQueueEmptyPutDoesNotEndABlockedGet) {
  run_test([] {
    UnboundedByteQueue ubq;
    open_nursery([&](Nursery& n) {
      n.start_soon([&] { EXPECT_EQ(str(ubq.get()), "late"); });
      wait_all_tasks_blocked();
      ubq.put({});
      wait_all_tasks_blocked();
      ubq.put(b("late"));
    });
  });
}

// Ports test_testing.py::test_MemorySendStream
TEST(TrioMemoryStreams, MemorySendStream) {
  run_test([] {
    MemorySendStream mss;

    auto do_send_all = [&](std::string_view data) {
      assert_checkpoints([&] { mss.send_all(b(data)); });
    };

    do_send_all("123");
    EXPECT_EQ(str(mss.get_data_nowait(1)), "1");
    EXPECT_EQ(str(mss.get_data_nowait()), "23");

    assert_checkpoints([&] { mss.wait_send_all_might_not_block(); });

    EXPECT_THROW(mss.get_data_nowait(), WouldBlock);
    EXPECT_THROW(mss.get_data_nowait(10), WouldBlock);

    do_send_all("456");
    EXPECT_EQ(str(assert_checkpoints([&] { return mss.get_data(); })), "456");

    // Call send_all twice at once; one gets BusyResourceError and one succeeds. The error
    // must not propagate: it could cancel the other before it finished, and we do not know
    // which one gets it.
    int resource_busy_count = 0;
    auto do_send_all_count_resourcebusy = [&] {
      try {
        do_send_all("xxx");
      } catch (const BusyResourceError&) {
        ++resource_busy_count;
      }
    };
    open_nursery([&](Nursery& n) {
      n.start_soon(do_send_all_count_resourcebusy);
      n.start_soon(do_send_all_count_resourcebusy);
    });
    EXPECT_EQ(resource_busy_count, 1);

    assert_checkpoints([&] { mss.close(); });

    EXPECT_EQ(str(mss.get_data()), "xxx");
    EXPECT_EQ(str(mss.get_data()), "");
    EXPECT_THROW(do_send_all("---"), ClosedResourceError);

    // Hooks.
    EXPECT_FALSE(mss.send_all_hook);
    EXPECT_FALSE(mss.wait_send_all_might_not_block_hook);
    EXPECT_FALSE(mss.close_hook);

    std::vector<std::string> record;
    MemorySendStream* mss2_pointer = nullptr;
    auto send_all_hook = [&] {
      // The hook runs after send_all did its work (it can pull the data out).
      EXPECT_EQ(str(mss2_pointer->get_data_nowait()), "abc");
      record.emplace_back("send_all_hook");
    };
    auto wait_send_all_might_not_block_hook = [&] {
      record.emplace_back("wait_send_all_might_not_block_hook");
    };
    auto close_hook = [&] { record.emplace_back("close_hook"); };

    MemorySendStream mss2(send_all_hook, wait_send_all_might_not_block_hook, close_hook);
    mss2_pointer = &mss2;
    EXPECT_TRUE(mss2.send_all_hook);
    EXPECT_TRUE(mss2.wait_send_all_might_not_block_hook);
    EXPECT_TRUE(mss2.close_hook);

    mss2.send_all(b("abc"));
    mss2.wait_send_all_might_not_block();
    close_forcefully(mss2);
    mss2.close_nowait();

    EXPECT_EQ(record,
              (std::vector<std::string>{"send_all_hook", "wait_send_all_might_not_block_hook",
                                        "close_hook", "close_hook"}));
  });
}

// Ports test_testing.py::test_MemoryReceiveStream
TEST(TrioMemoryStreams, MemoryReceiveStream) {
  run_test([] {
    MemoryReceiveStream mrs;

    auto do_receive_some = [&](std::size_t max_bytes) {
      return assert_checkpoints([&] { return receive(mrs, max_bytes); });
    };

    mrs.put_data(b("abc"));
    EXPECT_EQ(do_receive_some(1), "a");
    EXPECT_EQ(do_receive_some(10), "bc");
    mrs.put_data(b("abc"));
    EXPECT_EQ(do_receive_some(65536), "abc");  // Trio: max_bytes=None

    expect_group_of_one<BusyResourceError>([&] {
      open_nursery([&](Nursery& n) {
        n.start_soon([&] { do_receive_some(10); });
        n.start_soon([&] { do_receive_some(10); });
      });
    });

    EXPECT_FALSE(mrs.receive_some_hook);

    mrs.put_data(b("def"));
    mrs.put_eof();
    mrs.put_eof();

    EXPECT_EQ(do_receive_some(10), "def");
    EXPECT_EQ(do_receive_some(10), "");
    EXPECT_EQ(do_receive_some(10), "");

    EXPECT_THROW(mrs.put_data(b("---")), ClosedResourceError);

    MemoryReceiveStream* mrs2_pointer = nullptr;
    auto receive_some_hook = [&] { mrs2_pointer->put_data(b("xxx")); };
    std::vector<std::string> record;
    auto close_hook = [&] { record.emplace_back("closed"); };

    MemoryReceiveStream mrs2(receive_some_hook, close_hook);
    mrs2_pointer = &mrs2;
    EXPECT_TRUE(mrs2.receive_some_hook);
    EXPECT_TRUE(mrs2.close_hook);

    mrs2.put_data(b("yyy"));
    EXPECT_EQ(receive(mrs2, 10), "yyyxxx");
    EXPECT_EQ(receive(mrs2, 10), "xxx");
    EXPECT_EQ(receive(mrs2, 10), "xxx");

    mrs2.put_data(b("zzz"));
    mrs2.receive_some_hook = nullptr;
    EXPECT_EQ(receive(mrs2, 10), "zzz");

    mrs2.put_data(b("lost on close"));
    assert_checkpoints([&] { mrs2.close(); });
    EXPECT_EQ(record, std::vector<std::string>{"closed"});

    EXPECT_THROW(receive(mrs2, 10), ClosedResourceError);
  });
}

// Ports test_testing.py::test_MemoryRecvStream_closing
TEST(TrioMemoryStreams, MemoryReceiveStreamClosing) {
  run_test([] {
    MemoryReceiveStream mrs;
    // Close with no pending data.
    mrs.close_nowait();
    EXPECT_THROW(receive(mrs, 10), ClosedResourceError);
    // Repeated closes are OK.
    mrs.close_nowait();
    // put_data now fails.
    EXPECT_THROW(mrs.put_data(b("123")), ClosedResourceError);

    MemoryReceiveStream mrs2;
    // Close with pending data.
    mrs2.put_data(b("xyz"));
    mrs2.close_nowait();
    EXPECT_THROW(receive(mrs2, 10), ClosedResourceError);
  });
}

// Beyond Trio: a receive_some blocked on an empty stream wakes with ClosedResourceError when
// another task closes the stream; an empty buffer is rejected like max_bytes < 1.
TEST(TrioMemoryStreams, MemoryReceiveStreamBlockedReceiveWakesOnClose) {
  run_test([] {
    MemoryReceiveStream mrs;
    std::array<std::byte, 1> one{};
    EXPECT_THROW(mrs.receive_some(std::span<std::byte>()), std::invalid_argument);
    open_nursery([&](Nursery& n) {
      n.start_soon([&] { EXPECT_THROW(mrs.receive_some(one), ClosedResourceError); });
      wait_all_tasks_blocked();
      mrs.close_nowait();
    });
  });
}

// Ports test_testing.py::test_memory_stream_pump
TEST(TrioMemoryStreams, MemoryStreamPump) {
  run_test([] {
    MemorySendStream mss;
    MemoryReceiveStream mrs;

    // A no-op if no data is present.
    EXPECT_FALSE(memory_stream_pump(mss, mrs));

    mss.send_all(b("123"));
    memory_stream_pump(mss, mrs);
    EXPECT_EQ(receive(mrs, 10), "123");

    mss.send_all(b("456"));
    EXPECT_TRUE(memory_stream_pump(mss, mrs, 1));
    EXPECT_EQ(receive(mrs, 10), "4");
    EXPECT_TRUE(memory_stream_pump(mss, mrs, 1));
    EXPECT_TRUE(memory_stream_pump(mss, mrs, 1));
    EXPECT_FALSE(memory_stream_pump(mss, mrs, 1));
    EXPECT_EQ(receive(mrs, 10), "56");

    mss.close_nowait();
    memory_stream_pump(mss, mrs);
    EXPECT_EQ(receive(mrs, 10), "");
  });
}

// Beyond Trio's test (its documented behaviour): pumping into a closed receive stream is
// BrokenResourceError, and max_bytes must be >= 1.
TEST(TrioMemoryStreams, MemoryStreamPumpIntoAClosedReceiverIsBroken) {
  run_test([] {
    MemorySendStream mss;
    MemoryReceiveStream mrs;
    mss.send_all(b("123"));
    EXPECT_THROW(memory_stream_pump(mss, mrs, 0), std::invalid_argument);
    mrs.close_nowait();
    EXPECT_THROW(memory_stream_pump(mss, mrs), BrokenResourceError);
    EXPECT_FALSE(memory_stream_pump(mss, mrs));  // the bytes were taken (and lost)
  });
}

// Ports test_testing.py::test_memory_stream_one_way_pair
TEST(TrioMemoryStreams, MemoryStreamOneWayPair) {
  run_test([] {
    auto [s, r] = memory_stream_one_way_pair();
    EXPECT_TRUE(s->send_all_hook);
    EXPECT_FALSE(s->wait_send_all_might_not_block_hook);
    EXPECT_TRUE(s->close_hook);
    EXPECT_FALSE(r->receive_some_hook);
    s->send_all(b("123"));
    EXPECT_EQ(receive(*r, 10), "123");

    auto receiver = [&](std::string expected) { EXPECT_EQ(receive(*r, 10), expected); };

    // This fails if we pump on r's receive_some_hook; we need to pump on s's send_all_hook.
    open_nursery([&](Nursery& n) {
      n.start_soon(receiver, "abc");
      wait_all_tasks_blocked();
      s->send_all(b("abc"));
    });

    // And this fails if we don't pump from close_hook.
    open_nursery([&](Nursery& n) {
      n.start_soon(receiver, "");
      wait_all_tasks_blocked();
      s->close();
    });

    std::tie(s, r) = memory_stream_one_way_pair();
    open_nursery([&](Nursery& n) {
      n.start_soon(receiver, "");
      wait_all_tasks_blocked();
      s->close_nowait();
    });

    std::tie(s, r) = memory_stream_one_way_pair();
    fakes::StreamHook old = s->send_all_hook;
    s->send_all_hook = nullptr;
    s->send_all(b("456"));

    open_nursery([&](Nursery& n) {
      n.start_soon([&] {
        wait_all_tasks_blocked();
        n.cancel_scope().cancel();
      });
      n.start_soon([&] {
        // This blocks forever... or until cancelled, even though data was sent.
        EXPECT_THROW(receive(*r, 10), Cancelled);
      });
    });

    s->send_all_hook = old;
    s->send_all(b("789"));
    EXPECT_EQ(receive(*r, 10), "456789");
  });
}

// Beyond Trio: the pump hooks hold the buffers, not the streams, so destroying the receive
// stream first leaves a sender that reports BrokenResourceError, and destroying an open send
// stream delivers end of file.
TEST(TrioMemoryStreams, MemoryStreamOneWayPairSurvivesEitherEndBeingDestroyed) {
  run_test([] {
    {
      auto [s, r] = memory_stream_one_way_pair();
      r.reset();
      EXPECT_THROW(s->send_all(b("x")), BrokenResourceError);
    }
    {
      auto [s, r] = memory_stream_one_way_pair();
      s->send_all(b("bye"));
      s.reset();
      EXPECT_EQ(receive(*r, 10), "bye");
      EXPECT_EQ(receive(*r, 10), "");
    }
  });
}

// Ports test_testing.py::test_memory_stream_pair
TEST(TrioMemoryStreams, MemoryStreamPair) {
  run_test([] {
    auto [a, b_] = memory_stream_pair();
    a.send_all(b("123"));
    b_.send_all(b("abc"));
    EXPECT_EQ(receive(b_, 10), "123");
    EXPECT_EQ(receive(a, 10), "abc");

    a.send_eof();
    EXPECT_EQ(receive(b_, 10), "");

    open_nursery([&](Nursery& n) {
      n.start_soon([&] { EXPECT_EQ(receive(a, 10), "xyz"); });
      n.start_soon([&] {
        wait_all_tasks_blocked();
        b_.send_all(b("xyz"));
      });
    });
  });
}

// The trickle example of memory_stream_pair's documentation (Trio's docstring): data from
// left to right arrives one byte per second.
TEST(TrioMemoryStreams, MemoryStreamPairTrickle) {
  run_test([] {
    auto [left, right] = memory_stream_pair();
    auto& send = left.send_stream_as<MemorySendStream>();
    auto& receive_end = right.receive_stream_as<MemoryReceiveStream>();
    send.send_all_hook = [&] {
      while (memory_stream_pump(send, receive_end, 1)) sleep(std::chrono::seconds(1));
    };
    std::vector<std::pair<std::string, Time>> got;
    open_nursery([&](Nursery& n) {
      n.start_soon([&] {
        left.send_all(b("123"));
        left.send_eof();
      });
      n.start_soon([&] {
        while (true) {
          std::string chunk = receive(right, 10);
          got.emplace_back(chunk, current_time());
          if (chunk.empty()) break;
        }
      });
    });
    ASSERT_EQ(got.size(), 4u);
    EXPECT_EQ(got[0].first, "1");
    EXPECT_EQ(got[1].first, "2");
    EXPECT_EQ(got[2].first, "3");
    EXPECT_EQ(got[3].first, "");
    EXPECT_EQ(got[2].second - got[0].second, std::chrono::seconds(2));
  });
}

constexpr std::uint64_t kGenericSeeds[] = {1, 2, 3};

// Ports test_testing.py::test_memory_streams_with_generic_tests
TEST(TrioMemoryStreams, MemoryStreamsWithGenericTests) {
  for (std::uint64_t seed : kGenericSeeds) {
    SCOPED_TRACE(seed);
    run_test(
        [] {
          fakes::check_one_way_stream([] { return memory_stream_one_way_pair(); }, nullptr);
          fakes::check_half_closeable_stream([] { return boxed(memory_stream_pair()); }, nullptr);
        },
        seed);
  }
}

// Ports test_testing.py::test_lockstep_streams_with_generic_tests
TEST(TrioMemoryStreams, LockstepStreamsWithGenericTests) {
  for (std::uint64_t seed : kGenericSeeds) {
    SCOPED_TRACE(seed);
    run_test(
        [] {
          auto one_way = [] { return lockstep_stream_one_way_pair(); };
          fakes::check_one_way_stream(one_way, one_way);
          auto two_way = [] { return boxed(lockstep_stream_pair()); };
          fakes::check_two_way_stream(two_way, two_way);
        },
        seed);
  }
}

// Beyond Trio: a lockstep pair is half-closeable through StapledStream (send_eof closes the
// sending end); only the clogged send_eof checks need a real send_eof, so no clogged maker.
TEST(TrioMemoryStreams, LockstepStreamPairIsHalfCloseable) {
  run_test([] {
    fakes::check_half_closeable_stream([] { return boxed(lockstep_stream_pair()); }, nullptr);
  });
}

// Beyond Trio: lockstep send_all returns only after the receiver took every byte, over
// several receive_some calls; a send_all after a cancelled one reports the broken stream.
TEST(TrioMemoryStreams, LockstepSendAllWaitsForTheWholeTransfer) {
  run_test([] {
    auto [s, r] = lockstep_stream_one_way_pair();
    bool sent = false;
    open_nursery([&](Nursery& n) {
      n.start_soon([&] {
        s->send_all(b("abcde"));
        sent = true;
      });
      wait_all_tasks_blocked();
      EXPECT_EQ(receive(*r, 2), "ab");
      wait_all_tasks_blocked();
      EXPECT_FALSE(sent);
      EXPECT_EQ(receive(*r, 2), "cd");
      EXPECT_EQ(receive(*r, 2), "e");
      wait_all_tasks_blocked();
      EXPECT_TRUE(sent);
    });
    CancelScope scope;
    scope.cancel();
    (void)scope.run([&] { s->send_all(b("never taken")); });
    EXPECT_THROW(s->send_all(b("x")), BrokenResourceError);
  });
}

// ---- the checks can fail ------------------------------------------------------------------

enum class Fault {
  kCorruptsData,              // flips a bit of the first byte of every send
  kEmptySendSkipsCheckpoint,  // send_all({}) returns at once, no checkpoint
  kClosedReceiveReturnsEof,   // receive_some after close() returns 0 instead of throwing
  kSendAfterEofIsSilent,      // send_all after send_eof drops the data without an error
};

// A memory stream pair end with one deliberate bug.
class FaultyStream final : public HalfCloseableStream {
 public:
  FaultyStream(StapledStream inner, Fault fault) : inner_(std::move(inner)), fault_(fault) {}

  void send_all(std::span<const std::byte> data) override {
    if (fault_ == Fault::kEmptySendSkipsCheckpoint && data.empty()) return;
    if (fault_ == Fault::kSendAfterEofIsSilent && eof_sent_) {
      checkpoint();
      return;
    }
    if (fault_ == Fault::kCorruptsData && !data.empty()) {
      std::vector<std::byte> copy(data.begin(), data.end());
      copy[0] ^= std::byte{1};
      inner_.send_all(copy);
      return;
    }
    inner_.send_all(data);
  }
  void wait_send_all_might_not_block() override { inner_.wait_send_all_might_not_block(); }
  std::size_t receive_some(std::span<std::byte> buffer) override {
    if (fault_ == Fault::kClosedReceiveReturnsEof && closed_) {
      checkpoint();
      return 0;
    }
    return inner_.receive_some(buffer);
  }
  void send_eof() override {
    eof_sent_ = true;
    inner_.send_eof();
  }
  void close() override {
    closed_ = true;
    inner_.close();
  }

 private:
  StapledStream inner_;
  Fault fault_;
  bool eof_sent_ = false;
  bool closed_ = false;
};

fakes::HalfCloseableStreamMaker faulty_maker(Fault fault) {
  return
      [fault]()
          -> std::pair<std::unique_ptr<HalfCloseableStream>, std::unique_ptr<HalfCloseableStream>> {
        auto [a, b_] = memory_stream_pair();
        return {std::make_unique<FaultyStream>(std::move(a), fault),
                std::make_unique<FaultyStream>(std::move(b_), fault)};
      };
}

// Runs check_half_closeable_stream on a faulty stream; returns the StreamCheckError message.
std::string failure_of(Fault fault) {
  std::string message;
  run_test([&] {
    try {
      fakes::check_half_closeable_stream(faulty_maker(fault), nullptr);
      ADD_FAILURE() << "the check passed a faulty stream";
    } catch (const StreamCheckError& error) {
      message = error.what();
    }
  });
  return message;
}

TEST(StreamChecksFail, OnCorruptedData) {
  const std::string message = failure_of(Fault::kCorruptsData);
  EXPECT_NE(message.find("check_one_way_stream [simple send_all/receive_some]"), std::string::npos)
      << message;
  EXPECT_NE(message.find(R"(returned b"y", expected b"x")"), std::string::npos) << message;
}

TEST(StreamChecksFail, OnAnEmptySendWithoutACheckpoint) {
  const std::string message = failure_of(Fault::kEmptySendSkipsCheckpoint);
  EXPECT_NE(message.find("[an empty send_all is harmless]: send_all returned without a "
                         "checkpoint"),
            std::string::npos)
      << message;
}

TEST(StreamChecksFail, OnAClosedStreamThatStillReceives) {
  const std::string message = failure_of(Fault::kClosedReceiveReturnsEof);
  EXPECT_NE(message.find("expected ClosedResourceError, but it returned normally"),
            std::string::npos)
      << message;
}

TEST(StreamChecksFail, OnASendAfterSendEofThatSucceeds) {
  const std::string message = failure_of(Fault::kSendAfterEofIsSilent);
  EXPECT_NE(message.find("check_half_closeable_stream [send_all after send_eof]"),
            std::string::npos)
      << message;
}

// A one-way stream whose sender never notices that the receiver is gone: the check's
// "eventually broken" loop is bounded and reports it instead of running forever.
TEST(StreamChecksFail, OnASenderThatNeverBreaks) {
  run_test([] {
    auto maker = []() {
      auto pair = memory_stream_one_way_pair();
      MemorySendStream* s = pair.first.get();
      MemoryReceiveStream* r = pair.second.get();
      s->send_all_hook = [s, r] {
        try {
          memory_stream_pump(*s, *r);
        } catch (const BrokenResourceError&) {
        }
      };
      return pair;
    };
    try {
      fakes::check_one_way_stream(maker, nullptr);
      ADD_FAILURE() << "the check passed a faulty stream";
    } catch (const StreamCheckError& error) {
      EXPECT_NE(std::string(error.what()).find("send_all still succeeded after 100000 sends"),
                std::string::npos)
          << error.what();
    }
  });
}

TEST(StreamChecksFail, EmptyMakerIsAnInvalidArgument) {
  run_test([] {
    EXPECT_THROW(fakes::check_one_way_stream(nullptr, nullptr), std::invalid_argument);
    EXPECT_THROW(fakes::check_two_way_stream(nullptr, nullptr), std::invalid_argument);
    EXPECT_THROW(fakes::check_half_closeable_stream(nullptr, nullptr), std::invalid_argument);
  });
}

}  // namespace
}  // namespace trellis
