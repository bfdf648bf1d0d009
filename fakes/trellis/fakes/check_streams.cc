#include "trellis/fakes/check_streams.h"

#include <cxxabi.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <span>
#include <string_view>
#include <type_traits>
#include <typeinfo>
#include <vector>

#include "trellis/base/prng.h"
#include "trellis/core/cancel_scope.h"
#include "trellis/core/errors.h"
#include "trellis/core/exception_group.h"
#include "trellis/core/nursery.h"
#include "trellis/core/run.h"
#include "trellis/fakes/checkpoints.h"
#include "trellis/fakes/wait_all_tasks_blocked.h"
#include "trellis/io/close_forcefully.h"

namespace trellis::fakes {

namespace {

// receive_some buffer for "as much as you have" (Trio's max_bytes=None; SocketStream's default).
constexpr std::size_t kReceiveSizeLarge = 65536;
// Bound on "keep sending until the stream reports it is broken" (Trio loops forever): 100-byte
// sends, so a stream that never notices its closed receiver fails after ~10 MB.
constexpr std::size_t kSendsUntilBrokenMax = 100'000;
// The duplex transfer (Trio's DUPLEX_TEST_SIZE, CHUNK_SIZE_MAX).
constexpr std::size_t kDuplexTestSize = std::size_t{1} << 20;
constexpr std::size_t kChunkSizeMax = std::size_t{1} << 14;
// Bytes of data quoted in a failure message.
constexpr std::size_t kQuotedBytesMax = 40;

std::span<const std::byte> bytes(std::string_view text) {
  return std::as_bytes(std::span(text.data(), text.size()));
}

// b"..." with \xNN escapes, shortened for long data.
std::string quote(std::span<const std::byte> data) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "b\"";
  for (std::size_t i = 0; i < std::min(data.size(), kQuotedBytesMax); ++i) {
    const auto c = static_cast<unsigned char>(data[i]);
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    }
  }
  out += '"';
  if (data.size() > kQuotedBytesMax) out += "... (" + std::to_string(data.size()) + " bytes)";
  return out;
}

bool equal(std::span<const std::byte> a, std::string_view b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size()) == 0);
}

std::string type_name(const std::type_info& type) {
  int status = 0;
  char* demangled = abi::__cxa_demangle(type.name(), nullptr, nullptr, &status);
  std::string name = status == 0 && demangled != nullptr ? demangled : type.name();
  std::free(demangled);  // NOLINT(cppcoreguidelines-no-malloc): __cxa_demangle's contract
  return name;
}

std::string describe(const std::exception& error) {
  return type_name(typeid(error)) + "(\"" + error.what() + "\")";
}

std::string describe(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    return describe(e);
  } catch (const Cancelled& cancelled) {
    return std::string("Cancelled (") + cancelled.what() + ")";
  } catch (...) {
    return "an exception of unknown type";
  }
}

// If a StreamCheckError is anywhere in the group, rethrows the first one: a failure inside a
// task is the interesting part, not the group the nursery wrapped it in.
void rethrow_check_error(const ExceptionGroup& group) {
  for (const std::exception_ptr& member : group.exceptions()) {
    try {
      std::rethrow_exception(member);
    } catch (const StreamCheckError&) {
      throw;
    } catch (const ExceptionGroup& inner) {
      rethrow_check_error(inner);
    } catch (...) {
    }
  }
}

std::string describe_members(const ExceptionGroup& group) {
  std::string out;
  for (const std::exception_ptr& member : group.exceptions()) {
    if (!out.empty()) out += ", ";
    out += describe(member);
  }
  return "ExceptionGroup[" + out + "]";
}

template <class E>
const char* name_of() {
  if constexpr (std::is_same_v<E, BusyResourceError>) return "BusyResourceError";
  if constexpr (std::is_same_v<E, BrokenResourceError>) return "BrokenResourceError";
  if constexpr (std::is_same_v<E, ClosedResourceError>) return "ClosedResourceError";
  if constexpr (std::is_same_v<E, Cancelled>) return "Cancelled";
  if constexpr (std::is_same_v<E, std::invalid_argument>) return "std::invalid_argument";
  return "the expected exception";
}

// One running check: its name and current section (for messages) and Trio's little
// assertion helpers (_assert_raises, assert_checkpoints), each failing with StreamCheckError.
// Sections run one after another, so tasks of a section may share the checker.
class Checker {
 public:
  explicit Checker(std::string check) : check_(std::move(check)) {}

  void section(std::string name) { section_ = std::move(name); }

  [[noreturn]] void fail(const std::string& what) const {
    throw StreamCheckError(check_ + " [" + section_ + "]: " + what);
  }

  // assert_checkpoints: body must pass a checkpoint unless it throws.
  template <class F>
  auto checkpoints(std::string_view what, F&& body) {
    fakes::internal::CheckpointCounter counter;
    if constexpr (std::is_void_v<std::invoke_result_t<F>>) {
      std::forward<F>(body)();
      if (!counter.yielded()) fail(std::string(what) + " returned without a checkpoint");
    } else {
      auto result = std::forward<F>(body)();
      if (!counter.yielded()) fail(std::string(what) + " returned without a checkpoint");
      return result;
    }
  }

  // _assert_raises(E): body must throw E itself (not inside an ExceptionGroup).
  template <class E, class F>
  void expect_error(std::string_view what, F&& body) {
    const std::string expected = std::string(what) + ": expected " + name_of<E>();
    try {
      std::forward<F>(body)();
    } catch (const E&) {
      return;
    } catch (const StreamCheckError&) {
      throw;
    } catch (const ExceptionGroup& group) {
      rethrow_check_error(group);
      fail(expected + ", got " + describe_members(group));
    } catch (const std::exception& error) {
      fail(expected + ", got " + describe(error));
    }
    fail(expected + ", but it returned normally");
  }

  // _assert_raises(E, wrapped=True): body must throw an ExceptionGroup holding exactly one
  // E (a nursery whose child threw it).
  template <class E, class F>
  void expect_error_in_group(std::string_view what, F&& body) {
    const std::string expected =
        std::string(what) + ": expected an ExceptionGroup holding one " + name_of<E>();
    try {
      std::forward<F>(body)();
    } catch (const ExceptionGroup& group) {
      rethrow_check_error(group);
      if (group.exceptions().size() == 1) {
        try {
          std::rethrow_exception(group.exceptions().front());
        } catch (const E&) {
          return;
        } catch (...) {
        }
      }
      fail(expected + ", got " + describe_members(group));
    } catch (const StreamCheckError&) {
      throw;
    } catch (const E&) {
      fail(expected + ", got it unwrapped");
    } catch (const std::exception& error) {
      fail(expected + ", got " + describe(error));
    }
    fail(expected + ", but it returned normally");
  }

  // Makes a pair, runs body(first, second), then closes both forcefully (Trio's
  // _ForceCloseBoth) — also when body throws, in which case close errors are dropped in
  // favour of body's exception.
  template <class A, class B, class F>
  void with_both(std::pair<std::unique_ptr<A>, std::unique_ptr<B>> both, F&& body) {
    if (both.first == nullptr || both.second == nullptr) {
      fail("the stream maker returned a null stream");
    }
    auto close_both = [&] {
      try {
        close_forcefully(*both.first);
      } catch (...) {
        close_forcefully(*both.second);
        throw;
      }
      close_forcefully(*both.second);
    };
    try {
      std::forward<F>(body)(*both.first, *both.second);
    } catch (...) {
      try {
        close_both();
      } catch (...) {
      }
      throw;
    }
    close_both();
  }

  // Runs a whole check; an error that is not a StreamCheckError (a stream operation threw
  // something unexpected) becomes one, naming the section. Cancelled propagates.
  template <class F>
  void run(F&& body) {
    try {
      std::forward<F>(body)();
    } catch (const StreamCheckError&) {
      throw;
    } catch (const ExceptionGroup& group) {
      rethrow_check_error(group);
      fail("unexpected " + describe_members(group));
    } catch (const std::exception& error) {
      fail("unexpected " + describe(error));
    }
  }

 private:
  std::string check_;
  std::string section_ = "start";
};

// The operations of check_one_way_stream on one (s, r) pair, each asserting a checkpoint.
class OneWayOps {
 public:
  OneWayOps(Checker& c, SendStream& s, ReceiveStream& r) : c_(c), s_(s), r_(r) {}

  void send_all(std::span<const std::byte> data) {
    c_.checkpoints("send_all", [&] { s_.send_all(data); });
  }
  std::vector<std::byte> receive_some(std::size_t max_bytes) {
    std::vector<std::byte> buffer(max_bytes);
    const std::size_t n = c_.checkpoints("receive_some", [&] { return r_.receive_some(buffer); });
    if (n > max_bytes) {
      c_.fail("receive_some returned " + std::to_string(n) + " for a buffer of " +
              std::to_string(max_bytes) + " bytes");
    }
    buffer.resize(n);
    return buffer;
  }
  void checked_receive_1(std::string_view expected) {
    const std::vector<std::byte> got = receive_some(1);
    if (!equal(got, expected)) {
      c_.fail("receive_some(1) returned " + quote(got) + ", expected " + quote(bytes(expected)));
    }
  }
  void close(AsyncResource& resource, std::string_view what) {
    c_.checkpoints(what, [&] { resource.close(); });
  }
  // Sends 100-byte blocks until send_all throws (the caller expects BrokenResourceError).
  void send_until_error() {
    static const std::string kBlock(100, 'x');
    for (std::size_t i = 0; i < kSendsUntilBrokenMax; ++i) send_all(bytes(kBlock));
    c_.fail("send_all still succeeded after " + std::to_string(kSendsUntilBrokenMax) +
            " sends of 100 bytes to a closed receive stream");
  }

 private:
  Checker& c_;
  SendStream& s_;
  ReceiveStream& r_;
};

void check_one_way(Checker& c, const OneWayStreamMaker& stream_maker,
                   const OneWayStreamMaker& clogged_stream_maker) {
  static const std::string kHundred(100, 'x');

  c.section("simple send_all/receive_some");
  c.with_both(stream_maker(), [&](SendStream& s, ReceiveStream& r) {
    OneWayOps ops(c, s, r);
    open_nursery([&](Nursery& n) {
      n.start_soon([&] { ops.send_all(bytes("x")); });
      n.start_soon([&] { ops.checked_receive_1("x"); });
    });

    // Streams must tolerate sending b"" without giving it any special meaning.
    c.section("an empty send_all is harmless");
    open_nursery([&](Nursery& n) {
      n.start_soon([&] {
        ops.send_all({});
        ops.send_all(bytes("y"));
      });
      n.start_soon([&] { ops.checked_receive_1("y"); });
    });

    // Trio: send_all accepts bytearray and memoryview. Here: exactly the span given, when it
    // is a slice of a larger buffer.
    c.section("send_all sends exactly the span it is given");
    static constexpr std::string_view kSlices = "012";
    open_nursery([&](Nursery& n) {
      n.start_soon([&] { ops.send_all(bytes(kSlices).subspan(1, 1)); });
      n.start_soon([&] { ops.checked_receive_1("1"); });
    });
    open_nursery([&](Nursery& n) {
      n.start_soon([&] { ops.send_all(bytes(kSlices).subspan(2)); });
      n.start_soon([&] { ops.checked_receive_1("2"); });
    });

    // Trio: max_bytes must be a positive integer (ValueError for -1 and 0).
    c.section("receive_some argument validation");
    c.expect_error<std::invalid_argument>("receive_some into an empty buffer",
                                          [&] { r.receive_some({}); });
    // Trio: max_bytes can also be missing or None.
    c.section("receive_some with a large buffer");
    open_nursery([&](Nursery& n) {
      n.start_soon([&] { ops.send_all(bytes("x")); });
      const std::vector<std::byte> got = ops.receive_some(kReceiveSizeLarge);
      if (!equal(got, "x")) c.fail("receive_some returned " + quote(got) + R"(, expected b"x")");
    });

    c.section("concurrent receive_some");
    c.expect_error_in_group<BusyResourceError>("two tasks in receive_some at once", [&] {
      open_nursery([&](Nursery& n) {
        n.start_soon([&] { ops.receive_some(1); });
        n.start_soon([&] { ops.receive_some(1); });
      });
    });

    // An empty stream with a blocked receive_some must allow send_all. (A stream need not
    // buffer, which is why a receive_some is waiting; it is then cancelled.)
    c.section("wait_send_all_might_not_block with a receive_some waiting");
    open_nursery([&](Nursery& n) {
      n.start_soon([&] {
        c.checkpoints("wait_send_all_might_not_block", [&] { s.wait_send_all_might_not_block(); });
        n.cancel_scope().cancel();
      });
      n.start_soon([&] { ops.receive_some(1); });
    });

    c.section("closing the receive stream breaks the send stream (eventually)");
    open_nursery([&](Nursery& n) {
      n.start_soon([&] {
        c.expect_error<BrokenResourceError>("send_all to a closed receive stream",
                                            [&] { ops.send_until_error(); });
      });
      n.start_soon([&] { ops.close(r, "close of the receive stream"); });
    });

    c.section("once detected, the stream stays broken");
    c.expect_error<BrokenResourceError>("send_all after BrokenResourceError",
                                        [&] { ops.send_all(bytes(kHundred)); });

    c.section("a closed receive stream");
    c.expect_error<ClosedResourceError>("receive_some on the closed receive stream",
                                        [&] { ops.receive_some(4096); });
    // Closing the same stream repeatedly is fine.
    ops.close(r, "second close of the receive stream");
    ops.close(r, "third close of the receive stream");

    c.section("a closed send stream");
    ops.close(s, "close of the send stream");
    c.expect_error<ClosedResourceError>("send_all on the closed send stream",
                                        [&] { ops.send_all(bytes(kHundred)); });
    c.expect_error<ClosedResourceError>("an empty send_all on the closed send stream",
                                        [&] { ops.send_all({}); });
    c.expect_error<ClosedResourceError>("wait_send_all_might_not_block on the closed stream", [&] {
      c.checkpoints("wait_send_all_might_not_block", [&] { s.wait_send_all_might_not_block(); });
    });
    ops.close(s, "second close of the send stream");
    ops.close(s, "third close of the send stream");
  });

  c.section("send then graceful close: the receiver gets the data, then end of file");
  c.with_both(stream_maker(), [&](SendStream& s, ReceiveStream& r) {
    OneWayOps ops(c, s, r);
    open_nursery([&](Nursery& n) {
      n.start_soon([&] {
        ops.send_all(bytes("y"));
        ops.close(s, "close of the send stream");
      });
      n.start_soon([&] {
        // The sender may close before we read anything; we must still get all the data. A
        // stream may block in send_all, so let the sender get as far as it can first.
        wait_all_tasks_blocked();
        ops.checked_receive_1("y");
        ops.checked_receive_1("");
        ops.close(r, "close of the receive stream");
      });
    });
  });

  c.section("after a forceful close of the receive stream");
  c.with_both(stream_maker(), [&](SendStream& s, ReceiveStream& r) {
    OneWayOps ops(c, s, r);
    close_forcefully(r);
    c.expect_error<BrokenResourceError>("send_all to a closed receive stream",
                                        [&] { ops.send_until_error(); });
    c.expect_error<ClosedResourceError>("receive_some on the closed receive stream",
                                        [&] { ops.receive_some(4096); });
  });

  c.section("after a forceful close of the send stream");
  c.with_both(stream_maker(), [&](SendStream& s, ReceiveStream& r) {
    OneWayOps ops(c, s, r);
    close_forcefully(s);
    c.expect_error<ClosedResourceError>("send_all on the closed send stream",
                                        [&] { ops.send_all(bytes("123")); });
    // The receiver may get BrokenResourceError or a clean end of file; not OK would be to
    // hang or to get data.
    try {
      ops.checked_receive_1("");
    } catch (const BrokenResourceError&) {
    }
  });

  c.section("a cancelled close still closes");
  c.with_both(stream_maker(), [&](SendStream& s, ReceiveStream& r) {
    OneWayOps ops(c, s, r);
    {
      CancelScope scope;
      scope.cancel();
      (void)scope.run([&] { r.close(); });
    }
    {
      CancelScope scope;
      scope.cancel();
      (void)scope.run([&] { s.close(); });
    }
    c.expect_error<ClosedResourceError>("send_all after a cancelled close",
                                        [&] { ops.send_all(bytes("123")); });
    c.expect_error<ClosedResourceError>("receive_some after a cancelled close",
                                        [&] { ops.receive_some(4096); });
  });

  // A stream must still close gracefully after an operation was cancelled (hard for streams
  // whose internals a cancellation can leave inconsistent, like TLS).
  c.section("graceful close after cancelled operations");
  c.with_both(stream_maker(), [&](SendStream& s, ReceiveStream& r) {
    OneWayOps ops(c, s, r);
    {
      CancelScope scope;
      scope.cancel();
      (void)scope.run([&] {
        open_nursery([&](Nursery& n) {
          n.start_soon([&] {
            c.expect_error<Cancelled>("send_all in a cancelled scope",
                                      [&] { ops.send_all(bytes("x")); });
          });
          n.start_soon([&] {
            c.expect_error<Cancelled>("receive_some in a cancelled scope",
                                      [&] { ops.receive_some(1); });
          });
        });
      });
    }
    open_nursery([&](Nursery& n) {
      n.start_soon([&] { ops.close(s, "close of the send stream"); });
      n.start_soon([&] { ops.close(r, "close of the receive stream"); });
    });
  });

  c.section("closing the receive stream wakes a blocked receive_some");
  c.with_both(stream_maker(), [&](SendStream&, ReceiveStream& r) {
    open_nursery([&](Nursery& n) {
      n.start_soon([&] {
        c.expect_error<ClosedResourceError>("receive_some blocked while its stream was closed",
                                            [&] {
                                              std::array<std::byte, 10> buffer{};
                                              r.receive_some(buffer);
                                            });
      });
      wait_all_tasks_blocked();
      close_forcefully(r);
    });
  });

  if (!clogged_stream_maker) return;

  c.section("clogged: wait_send_all_might_not_block returns once receive_some runs");
  c.with_both(clogged_stream_maker(), [&](SendStream& s, ReceiveStream& r) {
    std::vector<std::string> record;
    open_nursery([&](Nursery& n) {
      n.start_soon([&] {
        record.emplace_back("waiter sleeping");
        c.checkpoints("wait_send_all_might_not_block", [&] { s.wait_send_all_might_not_block(); });
        record.emplace_back("waiter wokeup");
        n.cancel_scope().cancel();
      });
      wait_all_tasks_blocked();
      n.start_soon([&] {
        // Give wait_send_all_might_not_block a chance to block.
        wait_all_tasks_blocked();
        record.emplace_back("receiver starting");
        std::vector<std::byte> buffer(16834);
        while (true) r.receive_some(buffer);
      });
    });
    const std::vector<std::string> expected = {"waiter sleeping", "receiver starting",
                                               "waiter wokeup"};
    if (record != expected) {
      std::string got;
      for (const std::string& entry : record) got += (got.empty() ? "" : ", ") + entry;
      c.fail("events happened in the order [" + got +
             "], expected [waiter sleeping, receiver starting, waiter wokeup]");
    }
  });

  c.section("clogged: concurrent wait_send_all_might_not_block / send_all");
  c.with_both(clogged_stream_maker(), [&](SendStream& s, ReceiveStream&) {
    c.expect_error_in_group<BusyResourceError>(
        "two tasks in wait_send_all_might_not_block at once", [&] {
          open_nursery([&](Nursery& n) {
            n.start_soon([&] { s.wait_send_all_might_not_block(); });
            n.start_soon([&] { s.wait_send_all_might_not_block(); });
          });
        });
    // This may leave the stream unusable (a cancelled send_all), hence a new pair below.
    c.expect_error_in_group<BusyResourceError>(
        "wait_send_all_might_not_block and send_all at once", [&] {
          open_nursery([&](Nursery& n) {
            n.start_soon([&] { s.wait_send_all_might_not_block(); });
            n.start_soon([&] { s.send_all(bytes("123")); });
          });
        });
  });

  c.section("clogged: concurrent send_all");
  c.with_both(clogged_stream_maker(), [&](SendStream& s, ReceiveStream&) {
    c.expect_error_in_group<BusyResourceError>("two tasks in send_all at once", [&] {
      open_nursery([&](Nursery& n) {
        n.start_soon([&] { s.send_all(bytes("123")); });
        n.start_soon([&] { s.send_all(bytes("123")); });
      });
    });
  });

  // Closing the receiver makes wait_send_all_might_not_block return, with or without an
  // exception.
  c.section("clogged: closing the receive stream wakes wait_send_all_might_not_block");
  c.with_both(clogged_stream_maker(), [&](SendStream& s, ReceiveStream& r) {
    open_nursery([&](Nursery& n) {
      n.start_soon([&] {
        try {
          c.checkpoints("wait_send_all_might_not_block",
                        [&] { s.wait_send_all_might_not_block(); });
        } catch (const BrokenResourceError&) {
        }
      });
      n.start_soon([&] {
        wait_all_tasks_blocked();
        close_forcefully(r);
      });
    });
  });

  c.section("clogged: wait_send_all_might_not_block after the receive stream closed");
  c.with_both(clogged_stream_maker(), [&](SendStream& s, ReceiveStream& r) {
    close_forcefully(r);
    try {
      c.checkpoints("wait_send_all_might_not_block", [&] { s.wait_send_all_might_not_block(); });
    } catch (const BrokenResourceError&) {
    }
  });

  // A task blocked in a send-side call wakes up when the send stream is closed.
  auto close_soon = [](SendStream& s) {
    wait_all_tasks_blocked();
    close_forcefully(s);
  };
  c.section("clogged: closing the send stream wakes a blocked send_all");
  c.with_both(clogged_stream_maker(), [&](SendStream& s, ReceiveStream&) {
    open_nursery([&](Nursery& n) {
      n.start_soon([&] { close_soon(s); });
      c.expect_error<ClosedResourceError>("send_all blocked while its stream was closed",
                                          [&] { s.send_all(bytes("xyzzy")); });
    });
  });

  c.section("clogged: closing the send stream wakes wait_send_all_might_not_block");
  c.with_both(clogged_stream_maker(), [&](SendStream& s, ReceiveStream&) {
    open_nursery([&](Nursery& n) {
      n.start_soon([&] { close_soon(s); });
      c.expect_error<ClosedResourceError>(
          "wait_send_all_might_not_block blocked while its stream was closed",
          [&] { s.wait_send_all_might_not_block(); });
    });
  });
}

// ---- two-way ------------------------------------------------------------------------------

OneWayStreamMaker as_one_way(const TwoWayStreamMaker& maker, bool flipped) {
  if (!maker) return nullptr;
  return
      [maker, flipped]() -> std::pair<std::unique_ptr<SendStream>, std::unique_ptr<ReceiveStream>> {
        auto [first, second] = maker();
        if (flipped) return {std::move(second), std::move(first)};
        return {std::move(first), std::move(second)};
      };
}

std::vector<std::byte> duplex_test_data() {
  std::vector<std::byte> data(kDuplexTestSize);
  Prng prng(0);
  for (std::size_t i = 0; i < data.size(); i += sizeof(std::uint64_t)) {
    const std::uint64_t word = prng.next();
    std::memcpy(data.data() + i, &word, std::min(sizeof word, data.size() - i));
  }
  return data;
}

void duplex_send(Stream& s, std::span<const std::byte> data, std::uint64_t seed) {
  Prng prng(seed);
  while (!data.empty()) {
    const std::size_t chunk = std::min<std::size_t>(1 + prng.below(kChunkSizeMax), data.size());
    s.send_all(data.first(chunk));
    data = data.subspan(chunk);
  }
}

void duplex_receive(Checker& c, Stream& s, std::span<const std::byte> expected,
                    std::uint64_t seed) {
  Prng prng(seed);
  std::vector<std::byte> buffer(kChunkSizeMax);
  std::size_t got = 0;
  while (got < expected.size()) {
    const std::size_t max_bytes = 1 + prng.below(kChunkSizeMax);
    const std::size_t n = s.receive_some(std::span(buffer).first(max_bytes));
    if (n == 0) {
      c.fail("receive_some returned end of file after " + std::to_string(got) + " of " +
             std::to_string(expected.size()) + " bytes");
    }
    if (n > max_bytes || n > expected.size() - got) {
      c.fail("receive_some returned " + std::to_string(n) + " bytes for a buffer of " +
             std::to_string(max_bytes) + " with " + std::to_string(expected.size() - got) +
             " bytes outstanding");
    }
    if (std::memcmp(buffer.data(), expected.data() + got, n) != 0) {
      std::size_t offset = 0;
      while (buffer[offset] == expected[got + offset]) ++offset;
      c.fail("the data differs at byte " + std::to_string(got + offset) + " of " +
             std::to_string(expected.size()) + ": received " +
             quote(std::span(buffer).subspan(offset, std::min<std::size_t>(8, n - offset))) +
             ", sent " +
             quote(expected.subspan(got + offset, std::min<std::size_t>(8, n - offset))));
    }
    got += n;
  }
}

void check_two_way(Checker& c, const TwoWayStreamMaker& stream_maker,
                   const TwoWayStreamMaker& clogged_stream_maker) {
  {
    Checker forward("check_two_way_stream > check_one_way_stream");
    forward.run([&] {
      check_one_way(forward, as_one_way(stream_maker, false),
                    as_one_way(clogged_stream_maker, false));
    });
    Checker backward("check_two_way_stream > check_one_way_stream (flipped)");
    backward.run([&] {
      check_one_way(backward, as_one_way(stream_maker, true),
                    as_one_way(clogged_stream_maker, true));
    });
  }

  c.section("a 1 MiB transfer in both directions at once, in random chunks");
  c.with_both(stream_maker(), [&](Stream& s1, Stream& s2) {
    const std::vector<std::byte> data = duplex_test_data();
    const std::vector<std::byte> reversed(data.rbegin(), data.rend());
    open_nursery([&](Nursery& n) {
      n.start_soon([&] { duplex_send(s1, data, 0); });
      n.start_soon([&] { duplex_send(s2, reversed, 1); });
      n.start_soon([&] { duplex_receive(c, s1, reversed, 2); });
      n.start_soon([&] { duplex_receive(c, s2, data, 3); });
    });

    c.section("close() of one side makes the other read end of file");
    open_nursery([&](Nursery& n) {
      n.start_soon([&] {
        std::array<std::byte, 10> buffer{};
        const std::size_t got = s2.receive_some(buffer);
        if (got != 0) {
          c.fail("receive_some returned " + quote(std::span(buffer).first(got)) +
                 " after the peer closed, expected end of file");
        }
        s2.close();
      });
      n.start_soon([&] { s1.close(); });
    });
  });
}

// ---- half-closeable -----------------------------------------------------------------------

TwoWayStreamMaker as_two_way(const HalfCloseableStreamMaker& maker) {
  if (!maker) return nullptr;
  return [maker]() -> std::pair<std::unique_ptr<Stream>, std::unique_ptr<Stream>> {
    auto [first, second] = maker();
    return {std::move(first), std::move(second)};
  };
}

void check_half_closeable(Checker& c, const HalfCloseableStreamMaker& stream_maker,
                          const HalfCloseableStreamMaker& clogged_stream_maker) {
  {
    Checker two_way("check_half_closeable_stream > check_two_way_stream");
    two_way.run([&] {
      check_two_way(two_way, as_two_way(stream_maker), as_two_way(clogged_stream_maker));
    });
  }

  auto send_x_then_eof = [&](HalfCloseableStream& s) {
    s.send_all(bytes("x"));
    c.checkpoints("send_eof", [&] { s.send_eof(); });
  };
  auto expect_x_then_eof = [&](HalfCloseableStream& r) {
    wait_all_tasks_blocked();
    std::array<std::byte, 10> buffer{};
    std::size_t got = r.receive_some(buffer);
    if (!equal(std::span(buffer).first(got), "x")) {
      c.fail("receive_some returned " + quote(std::span(buffer).first(got)) +
             R"(, expected b"x" (sent before send_eof))");
    }
    got = r.receive_some(buffer);
    if (got != 0) {
      c.fail("receive_some returned " + quote(std::span(buffer).first(got)) +
             " after the peer's send_eof, expected end of file");
    }
  };

  c.section("send_eof: the peer reads the data, then end of file");
  c.with_both(stream_maker(), [&](HalfCloseableStream& s1, HalfCloseableStream& s2) {
    open_nursery([&](Nursery& n) {
      n.start_soon([&] { send_x_then_eof(s1); });
      n.start_soon([&] { expect_x_then_eof(s2); });
    });

    c.section("send_all after send_eof");
    c.expect_error<ClosedResourceError>("send_all after send_eof",
                                        [&] { s1.send_all(bytes("y")); });

    c.section("send_eof again");
    c.checkpoints("a second send_eof", [&] { s1.send_eof(); });

    c.section("after send_eof, the other direction still works");
    open_nursery([&](Nursery& n) {
      n.start_soon([&] { send_x_then_eof(s2); });
      n.start_soon([&] { expect_x_then_eof(s1); });
    });
  });

  if (!clogged_stream_maker) return;

  c.section("clogged: send_eof during a blocked send_all");
  c.with_both(clogged_stream_maker(), [&](HalfCloseableStream& s1, HalfCloseableStream&) {
    c.expect_error_in_group<BusyResourceError>("send_all and send_eof at once", [&] {
      open_nursery([&](Nursery& n) {
        n.start_soon([&] { s1.send_all(bytes("x")); });
        wait_all_tasks_blocked();
        n.start_soon([&] { s1.send_eof(); });
      });
    });
  });

  c.section("clogged: send_eof during wait_send_all_might_not_block");
  c.with_both(clogged_stream_maker(), [&](HalfCloseableStream& s1, HalfCloseableStream&) {
    c.expect_error_in_group<BusyResourceError>("wait_send_all_might_not_block and send_eof", [&] {
      open_nursery([&](Nursery& n) {
        n.start_soon([&] { s1.wait_send_all_might_not_block(); });
        wait_all_tasks_blocked();
        n.start_soon([&] { s1.send_eof(); });
      });
    });
  });
}

void require_maker(bool present) {
  if (!present) throw std::invalid_argument("the stream maker must not be empty");
}

}  // namespace

void check_one_way_stream(const OneWayStreamMaker& stream_maker,
                          const OneWayStreamMaker& clogged_stream_maker) {
  require_maker(static_cast<bool>(stream_maker));
  Checker c("check_one_way_stream");
  c.run([&] { check_one_way(c, stream_maker, clogged_stream_maker); });
}

void check_two_way_stream(const TwoWayStreamMaker& stream_maker,
                          const TwoWayStreamMaker& clogged_stream_maker) {
  require_maker(static_cast<bool>(stream_maker));
  Checker c("check_two_way_stream");
  c.run([&] { check_two_way(c, stream_maker, clogged_stream_maker); });
}

void check_half_closeable_stream(const HalfCloseableStreamMaker& stream_maker,
                                 const HalfCloseableStreamMaker& clogged_stream_maker) {
  require_maker(static_cast<bool>(stream_maker));
  Checker c("check_half_closeable_stream");
  c.run([&] { check_half_closeable(c, stream_maker, clogged_stream_maker); });
}

}  // namespace trellis::fakes
