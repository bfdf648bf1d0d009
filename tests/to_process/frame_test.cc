// The pipe protocol's decoder against truncated, corrupted and hostile input, and the worker
// loop (in this process, over memory) against malformed frames and unknown functions. The
// libFuzzer target tools/fuzz/frame_fuzzer.cc explores the same decoders at random.
#include <gtest/gtest.h>

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "trellis/to_process.h"

namespace trellis::to_process {
namespace {

std::vector<char> bytes(std::initializer_list<int> list) {
  std::vector<char> out;
  for (int b : list) out.push_back(static_cast<char>(b));
  return out;
}

std::vector<char> sample_frame() {
  return encode_frame(FrameKind::kCall, 0,
                      encode_call_payload("add", internal::pack_arguments(2, std::string("x"))));
}

// CRC-32 (IEEE, reflected) one bit at a time: the definition the table-driven crc32 must match.
std::uint32_t crc32_bitwise(std::span<const char> bytes) {
  std::uint32_t c = 0xFFFFFFFFu;
  for (char byte : bytes) {
    c ^= static_cast<unsigned char>(byte);
    for (int k = 0; k < 8; ++k) c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
  }
  return c ^ 0xFFFFFFFFu;
}

TEST(ToProcessFrame, Crc32IsTheIeeeChecksumAtEveryLength) {
  const std::string check = "123456789";
  EXPECT_EQ(crc32(check), 0xCBF43926u);  // the standard check value
  std::string input;
  for (int n = 0; n < 300; ++n) {
    EXPECT_EQ(crc32(input), crc32_bitwise(input)) << n << " bytes";
    input.push_back(static_cast<char>(n * 37 + 11));
  }
}

TEST(ToProcessFrame, RoundTripsAndEveryPrefixAsksForMore) {
  const std::vector<char> frame = sample_frame();
  for (std::size_t n = 0; n < frame.size(); ++n) {
    EXPECT_FALSE(decode_frame(std::span(frame).first(n)).has_value()) << n;
  }
  std::optional<DecodedFrame> decoded = decode_frame(frame);
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(decoded->consumed, frame.size());
  EXPECT_EQ(decoded->frame.kind, FrameKind::kCall);
  const CallPayload call = parse_call_payload(decoded->frame.payload);
  EXPECT_EQ(call.function, "add");
  msgpack::object_handle arguments = internal::unpack_payload(call.arguments);
  EXPECT_EQ((arguments.get().as<std::tuple<int, std::string>>()), std::make_tuple(2, "x"));
}

TEST(ToProcessFrame, EveryFlippedBitIsCaught) {
  const std::vector<char> frame = sample_frame();
  for (std::size_t i = 0; i < frame.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::vector<char> corrupt = frame;
      corrupt[i] = static_cast<char>(corrupt[i] ^ (1 << bit));
      bool rejected = false;
      try {
        // A flipped length bit may make the frame look longer: then it waits for more.
        rejected = !decode_frame(corrupt).has_value();
      } catch (const FrameError&) {
        rejected = true;
      }
      EXPECT_TRUE(rejected) << "byte " << i << " bit " << bit;
    }
  }
}

TEST(ToProcessFrame, HeaderErrorsNameTheProblemEarly) {
  auto error_of = [](std::vector<char> input) -> std::string {
    try {
      decode_frame(input);
    } catch (const FrameError& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_NE(error_of(bytes({'X'})).find("magic"), std::string::npos);
  EXPECT_NE(error_of(bytes({'T', 'P', 'W', 'K', 9})).find("version 9"), std::string::npos);
  EXPECT_NE(error_of(bytes({'T', 'P', 'W', 'K', 1, 77})).find("kind 77"), std::string::npos);
  EXPECT_NE(error_of(bytes({'T', 'P', 'W', 'K', 1, 1, 4})).find("flags"), std::string::npos);
  EXPECT_NE(error_of(bytes({'T', 'P', 'W', 'K', 1, 1, 0, 1})).find("reserved"), std::string::npos);
  EXPECT_NE(error_of(bytes({'T', 'P', 'W', 'K', 1, 1, 0, 0, 0x7f, 0, 0, 0})).find("bound"),
            std::string::npos);
  EXPECT_THROW(encode_frame(FrameKind::kResult, 0, std::vector<char>(kPayloadSizeMax + 1)),
               FrameError);
}

TEST(ToProcessFrame, PayloadsThatAreNotTheirShapeAreRefused) {
  // Truncated msgpack, trailing bytes, wrong shapes, and a small array claiming 2^32 - 1
  // elements (must not allocate for them).
  const std::vector<std::vector<char>> bad = {
      {},
      bytes({0x92, 0xa3, 'a', 'd'}),
      bytes({0x92, 0xa3, 'a', 'd', 'd', 0x90, 0x00}),
      bytes({0x92, 0x01, 0x90}),
      bytes({0x92, 0xa3, 'a', 'd', 'd', 0x01}),
      bytes({0x91, 0xa3, 'a', 'd', 'd'}),
      bytes({0x92, 0xa3, 'a', 'd', 'd', 0xdd, 0xff, 0xff, 0xff, 0xff}),
      bytes({0xc1}),
  };
  for (const std::vector<char>& payload : bad) {
    EXPECT_THROW(parse_call_payload(payload), FrameError);
    EXPECT_THROW(parse_error_payload(payload), FrameError);
  }
  std::vector<char> deep(200, static_cast<char>(0x91));
  deep.push_back(0x00);
  EXPECT_THROW(check_msgpack_value(deep), FrameError);
  const ErrorPayload e = parse_error_payload(encode_error_payload("T", "m"));
  EXPECT_EQ(e.type_name, "T");
  EXPECT_EQ(e.message, "m");
}

TEST(ToProcessFrame, ReaderCutsAStreamIntoFramesWhateverTheChunks) {
  std::vector<char> stream;
  for (int i = 0; i < 3; ++i) {
    const std::vector<char> f =
        encode_frame(FrameKind::kResult, 0, internal::pack_value(std::string(i * 1000, 'z')));
    stream.insert(stream.end(), f.begin(), f.end());
  }
  for (std::size_t chunk : {1u, 7u, 4096u}) {
    FrameReader reader;
    int frames = 0;
    for (std::size_t at = 0; at < stream.size(); at += chunk) {
      reader.feed(std::span(stream).subspan(at, std::min(chunk, stream.size() - at)));
      while (std::optional<Frame> f = reader.next()) {
        EXPECT_EQ(internal::unpack_payload(f->payload).get().as<std::string>().size(),
                  static_cast<std::size_t>(frames * 1000));
        ++frames;
      }
    }
    EXPECT_EQ(frames, 3);
    EXPECT_EQ(reader.buffered(), 0u);
  }
}

// A worker loop's I/O in memory: input given up front, output collected.
class MemoryIo final : public WorkerIo {
 public:
  explicit MemoryIo(std::vector<char> input) : input_(std::move(input)) {}
  std::size_t read_some(std::span<char> buffer) override {
    const std::size_t n = std::min(buffer.size(), input_.size() - at_);
    std::copy_n(input_.begin() + static_cast<std::ptrdiff_t>(at_), n, buffer.begin());
    at_ += n;
    return n;
  }
  void write_all(std::span<const char> bytes) override { reader.feed(bytes); }
  FrameReader reader;

 private:
  std::vector<char> input_;
  std::size_t at_ = 0;
};

std::vector<char> call_frame(std::string_view function, std::vector<char> arguments) {
  return encode_frame(FrameKind::kCall, 0, encode_call_payload(function, arguments));
}

TEST(ToProcessWorkerLoop, AnswersCallsAndEndsAtEndOfInput) {
  std::vector<char> input = call_frame("add", internal::pack_arguments(40, 2));
  const std::vector<char> second = call_frame("no_such", internal::pack_arguments());
  input.insert(input.end(), second.begin(), second.end());
  MemoryIo io(input);
  EXPECT_EQ(serve_worker(io, {}), 0);
  EXPECT_EQ(io.reader.next()->kind, FrameKind::kReady);
  const Frame result = *io.reader.next();
  EXPECT_EQ(result.kind, FrameKind::kResult);
  EXPECT_EQ(internal::unpack_payload(result.payload).get().as<int>(), 42);
  const Frame error = *io.reader.next();
  EXPECT_EQ(error.kind, FrameKind::kError);
  EXPECT_EQ(parse_error_payload(error.payload).type_name,
            "trellis::to_process::UnknownFunctionError");
}

TEST(ToProcessWorkerLoop, AMalformedOrTruncatedFrameEndsTheLoopWithStatus2) {
  const std::vector<char> good = call_frame("add", internal::pack_arguments(1, 2));
  std::vector<std::vector<char>> inputs = {
      bytes({'n', 'o', 'p', 'e'}),
      std::vector<char>(good.begin(), good.end() - 1),                            // cut short
      encode_frame(FrameKind::kResult, 0, internal::pack_value(1)),               // not a call
      encode_frame(FrameKind::kCall, 0, internal::pack_value(std::string("x"))),  // bad payload
      encode_frame(FrameKind::kCall, 0, std::span<const char>("\xc1", 1)),        // not msgpack
      encode_frame(FrameKind::kCall, 0, std::span<const char>("\x92\xa3", 2)),    // msgpack cut
  };
  for (const std::vector<char>& input : inputs) {
    MemoryIo io(input);
    EXPECT_EQ(serve_worker(io, {}), 2);
  }
}

TEST(ToProcessWorkerLoop, CommandLineRoundTripsAndStrangersAreRefused) {
  const ServeOptions options{.init = "a", .retire = "b"};
  const std::vector<std::string> arguments = worker_arguments(options);
  const ServeOptions parsed = parse_worker_arguments(arguments);
  EXPECT_EQ(parsed.init, "a");
  EXPECT_EQ(parsed.retire, "b");
  EXPECT_THROW(parse_worker_arguments(std::vector<std::string>{"x"}), std::invalid_argument);
  EXPECT_THROW(parse_worker_arguments(std::vector<std::string>{std::string(kWorkerFlag), "--x"}),
               std::invalid_argument);
}

}  // namespace
}  // namespace trellis::to_process
