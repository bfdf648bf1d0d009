// skip_msgpack_value (the actors' protocol checks payloads with it without decoding them)
// against msgpack-cxx's unpacker with the same bounds (check_msgpack_value): both accept and
// refuse the same payloads, whole values, truncated ones, corrupted ones and deep ones.
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "trellis/to_process.h"
#include "trellis/to_process/codec.h"

namespace trellis::to_process {
namespace {

using Packer = msgpack::packer<internal::ByteSink>;

bool unpack_accepts(std::span<const char> payload) {
  try {
    check_msgpack_value(payload);
    return true;
  } catch (const FrameError&) {
    return false;
  }
}

bool skip_accepts(std::span<const char> payload) {
  try {
    return skip_msgpack_value(payload, 0) == payload.size();
  } catch (const FrameError&) {
    return false;
  }
}

std::string random_bytes(int max_size) {
  const int size = *rc::gen::inRange(0, max_size + 1);
  return *rc::gen::container<std::string>(static_cast<std::size_t>(size),
                                          rc::gen::arbitrary<char>());
}

void pack_scalar(Packer& packer, int kind) {
  switch (kind) {
    case 0:
      packer.pack_nil();
      break;
    case 1:
      packer.pack(*rc::gen::arbitrary<bool>());
      break;
    case 2:
      packer.pack(*rc::gen::arbitrary<std::int64_t>());
      break;
    case 3:
      packer.pack(*rc::gen::arbitrary<std::uint64_t>());
      break;
    case 4:
      packer.pack(*rc::gen::arbitrary<double>());
      break;
    case 5:
      packer.pack(*rc::gen::arbitrary<float>());
      break;
    case 6:
      packer.pack(random_bytes(300));  // fixstr, str 8, str 16
      break;
    case 7: {
      const std::string data = random_bytes(300);
      packer.pack_bin(static_cast<std::uint32_t>(data.size()));
      packer.pack_bin_body(data.data(), static_cast<std::uint32_t>(data.size()));
      break;
    }
    default: {  // fixext 1-16 and ext 8
      const std::string data = random_bytes(20);
      packer.pack_ext(data.size(), *rc::gen::arbitrary<std::int8_t>());
      packer.pack_ext_body(data.data(), static_cast<std::uint32_t>(data.size()));
      break;
    }
  }
}

// A random value: every kind of scalar, arrays and maps (fix and 16-bit sizes) nested up to
// `depth` levels.
void pack_random(Packer& packer, int depth) {
  const int kind = *rc::gen::inRange(0, depth > 0 ? 11 : 9);
  if (kind < 9) return pack_scalar(packer, kind);
  const auto size = static_cast<std::uint32_t>(*rc::gen::inRange(0, 20));
  if (kind == 9) {
    packer.pack_array(size);
    for (std::uint32_t i = 0; i < size; ++i) pack_random(packer, depth - 1);
  } else {
    packer.pack_map(size);
    for (std::uint32_t i = 0; i < 2 * size; ++i) pack_random(packer, depth - 1);
  }
}

std::vector<char> random_value() {
  internal::ByteSink sink;
  Packer packer(sink);
  const auto size = static_cast<std::uint32_t>(*rc::gen::inRange(0, 40));
  packer.pack_array(size);
  for (std::uint32_t i = 0; i < size; ++i) pack_random(packer, 3);
  return std::move(sink.bytes);
}

RC_GTEST_PROP(MsgpackSkip, SkipsAWholeValueToItsEnd, ()) {
  const std::vector<char> value = random_value();
  RC_ASSERT(skip_msgpack_value(value, 0) == value.size());
  RC_ASSERT(unpack_accepts(value));
}

RC_GTEST_PROP(MsgpackSkip, AcceptsWhatTheUnpackerAccepts, ()) {
  std::vector<char> payload = random_value();
  switch (*rc::gen::inRange(0, 4)) {
    case 0:  // truncated
      payload.resize(static_cast<std::size_t>(*rc::gen::inRange<std::size_t>(0, payload.size())));
      break;
    case 1:  // a byte overwritten (a marker, a length, data)
      payload[*rc::gen::inRange<std::size_t>(0, payload.size())] = *rc::gen::arbitrary<char>();
      break;
    case 2:  // bytes after the value
      payload.push_back(*rc::gen::arbitrary<char>());
      break;
    default:  // random bytes
      payload = *rc::gen::container<std::vector<char>>(rc::gen::arbitrary<char>());
      break;
  }
  RC_ASSERT(skip_accepts(payload) == unpack_accepts(payload));
}

std::vector<char> nested(std::size_t depth, bool maps) {
  internal::ByteSink sink;
  Packer packer(sink);
  for (std::size_t i = 0; i < depth; ++i) {
    if (maps) {
      packer.pack_map(1);
      packer.pack_nil();  // the key; the value is the next level
    } else {
      packer.pack_array(1);
    }
  }
  packer.pack_nil();
  return std::move(sink.bytes);
}

TEST(MsgpackSkip, NestingIsBoundedAsTheUnpackerBoundsIt) {
  for (bool maps : {false, true}) {
    for (std::size_t depth : {kPayloadDepthMax - 1, kPayloadDepthMax, kPayloadDepthMax + 1}) {
      const std::vector<char> payload = nested(depth, maps);
      EXPECT_EQ(skip_accepts(payload), depth <= kPayloadDepthMax) << depth << " maps " << maps;
      EXPECT_EQ(unpack_accepts(payload), depth <= kPayloadDepthMax) << depth << " maps " << maps;
    }
  }
  // Inside an enclosing value, the budget is what that value leaves.
  const std::vector<char> inner = nested(kPayloadDepthMax, false);
  EXPECT_EQ(skip_msgpack_value(inner, 1, kPayloadDepthMax - 1), inner.size());
  EXPECT_THROW(skip_msgpack_value(inner, 1, kPayloadDepthMax - 2), FrameError);
}

TEST(MsgpackSkip, EveryLengthFormAndEachOfItsPrefixes) {
  for (std::size_t size : {0, 1, 2, 3, 4, 5, 8, 9, 16, 17, 31, 32, 255, 256, 65535, 65536}) {
    const std::string data(size, 'd');
    for (int kind = 0; kind < 3; ++kind) {
      internal::ByteSink sink;
      Packer packer(sink);
      const auto length = static_cast<std::uint32_t>(size);
      if (kind == 0) packer.pack(data);
      if (kind == 1) packer.pack_bin(length).pack_bin_body(data.data(), length);
      if (kind == 2) packer.pack_ext(size, 7).pack_ext_body(data.data(), length);
      const std::vector<char>& value = sink.bytes;
      EXPECT_EQ(skip_msgpack_value(value, 0), value.size()) << "kind " << kind << " size " << size;
      for (std::size_t n : {std::size_t{0}, std::size_t{1}, value.size() / 2, value.size() - 1}) {
        if (n == value.size()) continue;  // (a one-byte value: its "1" is the whole)
        EXPECT_FALSE(skip_accepts(std::span(value).first(n))) << kind << " " << size << " " << n;
      }
    }
  }
}

TEST(MsgpackSkip, ThirtyTwoBitSizesAndMarkersNeverUsed) {
  internal::ByteSink sink;
  Packer packer(sink);
  packer.pack_array(3);
  packer.pack(std::string(70000, 'x'));  // str 32
  packer.pack_array(70000);              // array 32
  for (int i = 0; i < 70000; ++i) packer.pack(i);
  packer.pack_map(70000);  // map 32
  for (int i = 0; i < 140000; ++i) packer.pack_nil();
  EXPECT_EQ(skip_msgpack_value(sink.bytes, 0), sink.bytes.size());
  EXPECT_TRUE(unpack_accepts(sink.bytes));
  const std::vector<char> never_used{static_cast<char>(0xC1)};
  EXPECT_FALSE(skip_accepts(never_used));
  EXPECT_FALSE(unpack_accepts(never_used));
  // A container claiming more items than bytes remain.
  const std::vector<char> claims{static_cast<char>(0xDD), 0x7F, 0, 0, 0, 0};
  EXPECT_FALSE(skip_accepts(claims));
  EXPECT_FALSE(unpack_accepts(claims));
}

}  // namespace
}  // namespace trellis::to_process
