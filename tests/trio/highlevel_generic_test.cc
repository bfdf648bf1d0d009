// Ports of Trio's src/trio/_tests/test_highlevel_generic.py (test_StapledStream,
// test_StapledStream_with_erroring_close) and of test_util.py::test_ConflictDetector, plus
// close_forcefully (Trio's aclose_forcefully, from the same _highlevel_generic.py).
//
// Trio monkeypatches send_eof onto a record stream to show StapledStream uses it when it
// exists; here "exists" means "the send stream is a HalfCloseableStream", so that case uses
// a second record type. Trio's aclose is close(). Python chains the two close errors
// (__context__); C++ cannot, so the test checks that the receive stream's error wins.
#include <gtest/gtest.h>

#include <cstddef>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <typeinfo>
#include <utility>
#include <vector>

#include "trellis/fakes.h"
#include "trellis/trellis.h"

namespace trellis {
namespace {

template <class F>
void run_test(F&& main) {
  fakes::MockClock clock;
  clock.set_autojump_threshold(Duration::zero());
  run(std::forward<F>(main), {.clock = &clock, .schedule_seed = 1});
}

std::span<const std::byte> b(std::string_view text) {
  return std::as_bytes(std::span(text.data(), text.size()));
}

using Record = std::vector<std::string>;

class RecordSendStream : public SendStream {
 public:
  explicit RecordSendStream(Record& record) : record_(record) {}
  void send_all(std::span<const std::byte> data) override {
    record_.push_back("send_all " +
                      std::string(reinterpret_cast<const char*>(data.data()), data.size()));
  }
  void wait_send_all_might_not_block() override {
    record_.emplace_back("wait_send_all_might_not_block");
  }
  void close() override { record_.emplace_back("close"); }

 protected:
  Record& record_;
};

// A send stream that also has send_eof (Trio's monkeypatched fake_send_eof).
class RecordHalfCloseableSendStream final : public HalfCloseableStream {
 public:
  explicit RecordHalfCloseableSendStream(Record& record) : record_(record) {}
  void send_all(std::span<const std::byte>) override { record_.emplace_back("send_all"); }
  void wait_send_all_might_not_block() override {}
  std::size_t receive_some(std::span<std::byte>) override { return 0; }
  void send_eof() override { record_.emplace_back("send_eof"); }
  void close() override { record_.emplace_back("close"); }

 private:
  Record& record_;
};

class RecordReceiveStream : public ReceiveStream {
 public:
  explicit RecordReceiveStream(Record& record) : record_(record) {}
  std::size_t receive_some(std::span<std::byte> buffer) override {
    record_.push_back("receive_some " + std::to_string(buffer.size()));
    return 0;
  }
  void close() override { record_.emplace_back("close"); }

 protected:
  Record& record_;
};

// Ports test_highlevel_generic.py::test_StapledStream
TEST(TrioHighlevelGeneric, StapledStream) {
  run_test([] {
    Record send_record;
    Record receive_record;
    auto send_owned = std::make_unique<RecordSendStream>(send_record);
    auto receive_owned = std::make_unique<RecordReceiveStream>(receive_record);
    RecordSendStream* send_stream = send_owned.get();
    RecordReceiveStream* receive_stream = receive_owned.get();
    StapledStream stapled(std::move(send_owned), std::move(receive_owned));

    EXPECT_EQ(&stapled.send_stream(), send_stream);
    EXPECT_EQ(&stapled.receive_stream(), receive_stream);
    EXPECT_EQ(&stapled.send_stream_as<RecordSendStream>(), send_stream);

    stapled.send_all(b("foo"));
    stapled.wait_send_all_might_not_block();
    EXPECT_EQ(send_record, (Record{"send_all foo", "wait_send_all_might_not_block"}));
    send_record.clear();

    // The send stream has no send_eof: send_eof closes it.
    stapled.send_eof();
    EXPECT_EQ(send_record, Record{"close"});
    send_record.clear();

    // It has one: send_eof calls it.
    Record half_record;
    StapledStream with_eof(std::make_unique<RecordHalfCloseableSendStream>(half_record),
                           std::make_unique<RecordReceiveStream>(receive_record));
    with_eof.send_eof();
    EXPECT_EQ(half_record, Record{"send_eof"});

    EXPECT_EQ(receive_record, Record{});
    std::vector<std::byte> buffer(1234);
    stapled.receive_some(buffer);
    EXPECT_EQ(receive_record, Record{"receive_some 1234"});
    EXPECT_EQ(send_record, Record{});
    receive_record.clear();

    stapled.close();
    EXPECT_EQ(receive_record, Record{"close"});
    EXPECT_EQ(send_record, Record{"close"});
    receive_record.clear();
  });
}

class ThrowingSendStream final : public RecordSendStream {
 public:
  using RecordSendStream::RecordSendStream;
  void close() override {
    RecordSendStream::close();
    throw std::runtime_error("send error");
  }
};

class ThrowingReceiveStream final : public RecordReceiveStream {
 public:
  using RecordReceiveStream::RecordReceiveStream;
  void close() override {
    RecordReceiveStream::close();
    throw std::runtime_error("recv error");
  }
};

// Ports test_highlevel_generic.py::test_StapledStream_with_erroring_close
TEST(TrioHighlevelGeneric, StapledStreamWithErroringClose) {
  run_test([] {
    Record send_record;
    Record receive_record;
    StapledStream stapled(std::make_unique<ThrowingSendStream>(send_record),
                          std::make_unique<ThrowingReceiveStream>(receive_record));
    try {
      stapled.close();
      ADD_FAILURE() << "close() did not throw";
    } catch (const std::runtime_error& error) {
      EXPECT_STREQ(error.what(), "recv error");  // Trio: the later error, the first as context
    }
    EXPECT_EQ(send_record, Record{"close"});
    EXPECT_EQ(receive_record, Record{"close"});

    // Only the send stream's close fails: the receive stream is closed all the same, then
    // the send stream's error propagates.
    send_record.clear();
    receive_record.clear();
    StapledStream half_broken(std::make_unique<ThrowingSendStream>(send_record),
                              std::make_unique<RecordReceiveStream>(receive_record));
    try {
      half_broken.close();
      ADD_FAILURE() << "close() did not throw";
    } catch (const std::runtime_error& error) {
      EXPECT_STREQ(error.what(), "send error");
    }
    EXPECT_EQ(receive_record, Record{"close"});
  });
}

// Beyond Trio's test: a cancelled close of the send stream still closes the receive stream
// (close_forcefully), and Cancelled is caught by close_forcefully's own scope.
TEST(TrioHighlevelGeneric, StapledStreamCancelledCloseClosesBoth) {
  run_test([] {
    auto [left, right] = fakes::memory_stream_pair();
    close_forcefully(left);
    std::array<std::byte, 4> buffer{};
    EXPECT_THROW(left.send_all(b("x")), ClosedResourceError);
    EXPECT_THROW(left.receive_some(buffer), ClosedResourceError);
    EXPECT_EQ(right.receive_some(buffer), 0u);  // left's send side closed: end of file
    EXPECT_THROW(right.send_all(b("x")), BrokenResourceError);
  });
}

TEST(TrioHighlevelGeneric, StapledStreamMovesAndMisuse) {
  run_test([] {
    Record record;
    EXPECT_THROW(StapledStream(nullptr, std::make_unique<RecordReceiveStream>(record)),
                 std::invalid_argument);
    EXPECT_THROW(StapledStream(std::make_unique<RecordSendStream>(record), nullptr),
                 std::invalid_argument);

    auto [left, right] = fakes::memory_stream_pair();
    SendStream* inner = &left.send_stream();
    StapledStream moved(std::move(left));
    EXPECT_EQ(&moved.send_stream(), inner);            // moving never moves the streams
    EXPECT_THROW(left.send_all(b("x")), UsageError);   // NOLINT(bugprone-use-after-move)
    EXPECT_THROW(left.send_stream(), UsageError);      // NOLINT(bugprone-use-after-move)
    fakes::assert_checkpoints([&] { left.close(); });  // NOLINT(bugprone-use-after-move)
    EXPECT_THROW(moved.send_stream_as<fakes::LockstepSendStream>(), std::bad_cast);

    moved.send_all(b("hi"));
    std::array<std::byte, 4> buffer{};
    EXPECT_EQ(right.receive_some(buffer), 2u);
    left = std::move(right);  // assigning to a moved-from stream revives it
    EXPECT_NO_THROW(left.send_all(b("x")));
  });
}

// Ports test_util.py::test_ConflictDetector
TEST(TrioUtil, ConflictDetector) {
  run_test([] {
    ConflictDetector ul1("ul1");
    ConflictDetector ul2("ul2");

    {
      ConflictDetector::Guard g1(ul1);
      ConflictDetector::Guard g2(ul2);
      EXPECT_TRUE(ul1.held());
      EXPECT_TRUE(ul2.held());
    }
    EXPECT_FALSE(ul1.held());

    try {
      ConflictDetector::Guard g1(ul1);
      ConflictDetector::Guard again(ul1);
      ADD_FAILURE() << "entered twice";
    } catch (const BusyResourceError& error) {
      EXPECT_STREQ(error.what(), "ul1");
    }
    EXPECT_FALSE(ul1.held());  // the failed entry did not clear the first holder's flag late

    auto wait_with_ul1 = [&] {
      ConflictDetector::Guard guard(ul1);
      fakes::wait_all_tasks_blocked();
    };
    try {
      open_nursery([&](Nursery& n) {
        n.start_soon(wait_with_ul1);
        n.start_soon(wait_with_ul1);
      });
      ADD_FAILURE() << "no conflict detected";
    } catch (const ExceptionGroup& group) {
      ASSERT_EQ(group.exceptions().size(), 1u);
      try {
        std::rethrow_exception(group.exceptions().front());
      } catch (const BusyResourceError& error) {
        EXPECT_STREQ(error.what(), "ul1");
      }
    }
    EXPECT_FALSE(ul1.held());
  });
}

}  // namespace
}  // namespace trellis
