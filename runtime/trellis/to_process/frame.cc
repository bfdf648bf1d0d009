// trellis/to_process/frame.cc — see frame.h.

#include "trellis/to_process/frame.h"

#include <array>
#include <cstring>

#include "trellis/base/assert.h"
#include "trellis/to_process/codec.h"

namespace trellis::to_process {
namespace {

// CRC-32 by slicing-by-8: kCrcTables[k][b] is the CRC register contribution of byte b
// followed by k zero bytes, so eight input bytes take eight independent lookups.
using CrcTables = std::array<std::array<std::uint32_t, 256>, 8>;
constexpr CrcTables make_crc_tables() {
  CrcTables tables{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    tables[0][i] = c;
  }
  for (std::size_t t = 1; t < tables.size(); ++t) {
    for (std::size_t i = 0; i < 256; ++i) {
      const std::uint32_t previous = tables[t - 1][i];
      tables[t][i] = (previous >> 8) ^ tables[0][previous & 0xFF];
    }
  }
  return tables;
}
constexpr CrcTables kCrcTables = make_crc_tables();

void put_u32(char* out, std::uint32_t v) {
  out[0] = static_cast<char>(v >> 24);
  out[1] = static_cast<char>(v >> 16);
  out[2] = static_cast<char>(v >> 8);
  out[3] = static_cast<char>(v);
}

std::uint32_t get_u32(const char* in) {
  const auto b = [&](int i) {
    return static_cast<std::uint32_t>(static_cast<unsigned char>(in[i]));
  };
  return (b(0) << 24) | (b(1) << 16) | (b(2) << 8) | b(3);
}

bool known_kind(const FrameFormat& format, std::uint8_t kind) {
  return kind >= 1 && kind <= format.max_kind;
}

// Checks the header bytes seen so far (any prefix of it); throws at the first wrong one.
void check_header_prefix(const FrameFormat& format, std::span<const char> input) {
  if (input.empty()) return;  // (its data() may be null, which memcmp must not see)
  const std::size_t magic_seen = std::min(input.size(), format.magic.size());
  if (std::memcmp(input.data(), format.magic.data(), magic_seen) != 0) {
    throw FrameError("bad frame magic (expected \"" +
                     std::string(format.magic.data(), format.magic.size()) +
                     "\": the peer does not speak this protocol, or wrote something else to "
                     "the channel)");
  }
  if (input.size() > 4 && static_cast<std::uint8_t>(input[4]) != format.version) {
    throw FrameError("unsupported protocol version " +
                     std::to_string(static_cast<unsigned char>(input[4])) + " (expected " +
                     std::to_string(format.version) + ")");
  }
  if (input.size() > 5 && !known_kind(format, static_cast<std::uint8_t>(input[5]))) {
    throw FrameError("unknown frame kind " + std::to_string(static_cast<unsigned char>(input[5])));
  }
  if (input.size() > 6 && (static_cast<std::uint8_t>(input[6]) & ~format.flag_mask) != 0) {
    throw FrameError("unknown frame flags " + std::to_string(static_cast<unsigned char>(input[6])));
  }
  if (input.size() > 7 && input[7] != 0) throw FrameError("reserved frame byte is not zero");
  if (input.size() >= kFrameHeaderSize && get_u32(input.data() + 8) > kPayloadSizeMax) {
    throw FrameError("frame payload of " + std::to_string(get_u32(input.data() + 8)) +
                     " bytes exceeds the bound of " + std::to_string(kPayloadSizeMax));
  }
}

[[noreturn]] void throw_payload_too_large(std::size_t size) {
  throw FrameError("a payload of " + std::to_string(size) + " bytes exceeds the bound of " +
                   std::to_string(kPayloadSizeMax) +
                   " (arguments, results and messages must be smaller)");
}

std::string read_string(const msgpack::object& object, const char* what) {
  if (object.type != msgpack::type::STR) throw FrameError(std::string(what) + " is not a string");
  return std::string(object.via.str.ptr, object.via.str.size);
}

}  // namespace

std::uint32_t crc32(std::span<const char> bytes) noexcept {
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(bytes[i]); };
  std::uint32_t c = 0xFFFFFFFFu;
  std::size_t i = 0;
  for (; i + 8 <= bytes.size(); i += 8) {
    // (Byte by byte, little-endian order: the same on any host.)
    const std::uint32_t low =
        c ^ (std::uint32_t{byte(i)} | std::uint32_t{byte(i + 1)} << 8 |
             std::uint32_t{byte(i + 2)} << 16 | std::uint32_t{byte(i + 3)} << 24);
    c = kCrcTables[7][low & 0xFF] ^ kCrcTables[6][(low >> 8) & 0xFF] ^
        kCrcTables[5][(low >> 16) & 0xFF] ^ kCrcTables[4][low >> 24] ^ kCrcTables[3][byte(i + 4)] ^
        kCrcTables[2][byte(i + 5)] ^ kCrcTables[1][byte(i + 6)] ^ kCrcTables[0][byte(i + 7)];
  }
  if (i + 4 <= bytes.size()) {  // (fewer dependent lookups in the tail)
    const std::uint32_t low =
        c ^ (std::uint32_t{byte(i)} | std::uint32_t{byte(i + 1)} << 8 |
             std::uint32_t{byte(i + 2)} << 16 | std::uint32_t{byte(i + 3)} << 24);
    c = kCrcTables[3][low & 0xFF] ^ kCrcTables[2][(low >> 8) & 0xFF] ^
        kCrcTables[1][(low >> 16) & 0xFF] ^ kCrcTables[0][low >> 24];
    i += 4;
  }
  for (; i < bytes.size(); ++i) c = kCrcTables[0][(c ^ byte(i)) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

std::vector<char> encode_frame(FrameKind kind, std::uint8_t flags, std::span<const char> payload) {
  return encode_raw_frame(kWorkerFrameFormat, static_cast<std::uint8_t>(kind), flags, payload);
}

std::vector<char> encode_raw_frame(const FrameFormat& format, std::uint8_t kind, std::uint8_t flags,
                                   std::span<const char> payload) {
  if (payload.size() > kPayloadSizeMax) throw_payload_too_large(payload.size());
  FrameBuilder builder(payload.size());
  builder.write(payload);
  return std::move(builder).finish(format, kind, flags);
}

FrameBuilder::FrameBuilder(std::size_t payload_capacity) {
  bytes_.reserve(kFrameHeaderSize + payload_capacity + kFrameTrailerSize);
  bytes_.resize(kFrameHeaderSize);
}

std::vector<char> FrameBuilder::finish(const FrameFormat& format, std::uint8_t kind,
                                       std::uint8_t flags) && {
  const std::size_t payload = bytes_.size() - kFrameHeaderSize;
  if (payload > kPayloadSizeMax) throw_payload_too_large(payload);
  TRELLIS_ASSERT((flags & ~format.flag_mask) == 0);
  TRELLIS_ASSERT(known_kind(format, kind));
  char* out = bytes_.data();
  std::memcpy(out, format.magic.data(), format.magic.size());
  out[4] = static_cast<char>(format.version);
  out[5] = static_cast<char>(kind);
  out[6] = static_cast<char>(flags);
  out[7] = 0;
  put_u32(out + 8, static_cast<std::uint32_t>(payload));
  char checksum[kFrameTrailerSize];
  put_u32(checksum, crc32(bytes_));
  bytes_.insert(bytes_.end(), checksum, checksum + kFrameTrailerSize);
  return std::move(bytes_);
}

std::optional<DecodedFrame> decode_frame(std::span<const char> input) {
  std::optional<DecodedRawFrame> raw = decode_raw_frame(kWorkerFrameFormat, input);
  if (!raw) return std::nullopt;
  DecodedFrame decoded;
  decoded.frame.kind = static_cast<FrameKind>(raw->frame.kind);
  decoded.frame.flags = raw->frame.flags;
  decoded.frame.payload = std::move(raw->frame.payload);
  decoded.consumed = raw->consumed;
  return decoded;
}

std::optional<DecodedRawFrameView> decode_raw_frame_view(const FrameFormat& format,
                                                         std::span<const char> input) {
  check_header_prefix(format, input);
  if (input.size() < kFrameHeaderSize) return std::nullopt;
  const std::size_t length = get_u32(input.data() + 8);
  const std::size_t body = kFrameHeaderSize + length;
  if (input.size() < body + kFrameTrailerSize) return std::nullopt;
  const std::uint32_t expected = get_u32(input.data() + body);
  if (crc32(input.first(body)) != expected) throw FrameError("frame checksum mismatch");
  DecodedRawFrameView decoded;
  decoded.frame.kind = static_cast<std::uint8_t>(input[5]);
  decoded.frame.flags = static_cast<std::uint8_t>(input[6]);
  decoded.frame.payload = input.subspan(kFrameHeaderSize, length);
  decoded.consumed = body + kFrameTrailerSize;
  TRELLIS_ASSERT(decoded.consumed <= input.size());
  return decoded;
}

std::optional<DecodedRawFrame> decode_raw_frame(const FrameFormat& format,
                                                std::span<const char> input) {
  std::optional<DecodedRawFrameView> view = decode_raw_frame_view(format, input);
  if (!view) return std::nullopt;
  const std::span<const char> payload = view->frame.payload;
  return DecodedRawFrame{
      RawFrame{view->frame.kind, view->frame.flags, {payload.begin(), payload.end()}},
      view->consumed};
}

std::optional<Frame> FrameReader::next() {
  std::optional<RawFrame> raw = raw_.next();
  if (!raw) return std::nullopt;
  return Frame{static_cast<FrameKind>(raw->kind), raw->flags, std::move(raw->payload)};
}

void RawFrameReader::compact() {
  TRELLIS_ASSERT(start_ <= buffer_.size());
  if (start_ == buffer_.size()) {
    buffer_.clear();
    start_ = 0;
  } else if (start_ > buffer_.size() / 2) {
    buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(start_));
    start_ = 0;
  }
}

std::optional<RawFrameView> RawFrameReader::next_view() {
  compact();
  std::optional<DecodedRawFrameView> decoded = decode_raw_frame_view(
      format_, std::span<const char>(buffer_.data() + start_, buffer_.size() - start_));
  if (!decoded) return std::nullopt;
  start_ += decoded->consumed;
  return decoded->frame;
}

std::optional<RawFrame> RawFrameReader::next() {
  std::optional<RawFrameView> view = next_view();
  if (!view) return std::nullopt;
  return RawFrame{view->kind, view->flags, {view->payload.begin(), view->payload.end()}};
}

namespace {

// One msgpack item's marker decoded: how many bytes follow it before the next item, and how
// many items it contains (containers).
struct MsgpackItem {
  std::size_t skip = 0;
  std::uint64_t children = 0;
  bool container = false;
};

// The big-endian length of `size` bytes at `pos` (advanced past it).
std::size_t read_length(std::span<const char> bytes, std::size_t& pos, std::size_t size) {
  if (bytes.size() - pos < size) throw FrameError("payload is truncated msgpack");
  std::size_t length = 0;
  for (std::size_t i = 0; i < size; ++i) {
    length = (length << 8) | static_cast<unsigned char>(bytes[pos + i]);
  }
  pos += size;
  return length;
}

MsgpackItem read_marker(std::span<const char> bytes, std::size_t& pos) {
  if (pos >= bytes.size()) throw FrameError("payload is truncated msgpack");
  const auto marker = static_cast<unsigned char>(bytes[pos++]);
  if (marker <= 0x7F || marker >= 0xE0) return {};              // fixint
  if (marker <= 0x8F) return {0, 2u * (marker & 0x0Fu), true};  // fixmap
  if (marker <= 0x9F) return {0, marker & 0x0Fu, true};         // fixarray
  if (marker <= 0xBF) return {marker & 0x1Fu, 0, false};        // fixstr
  static constexpr std::array<std::uint8_t, 0xE0 - 0xC0> kFixed{
      0, 0xFF, 0, 0,               // nil, (never used), false, true
      0, 0,    0,                  // bin 8/16/32: a length follows
      0, 0,    0,                  // ext 8/16/32: a length follows
      4, 8,                        // float 32/64
      1, 2,    4, 8, 1,  2, 4, 8,  // uint, int 8-64
      2, 3,    5, 9, 17,           // fixext 1-16 (type byte and data)
      0, 0,    0,                  // str 8/16/32
      0, 0,    0, 0};              // array 16/32, map 16/32
  const std::size_t index = marker - 0xC0u;
  if (kFixed[index] == 0xFF) throw FrameError("payload is not valid msgpack: marker 0xc1");
  static constexpr std::array<std::size_t, 3> kWidth{1, 2, 4};
  if (marker >= 0xC4 && marker <= 0xC6) return {read_length(bytes, pos, kWidth[marker - 0xC4])};
  if (marker >= 0xC7 && marker <= 0xC9) {
    return {read_length(bytes, pos, kWidth[marker - 0xC7]) + 1};  // and the type byte
  }
  if (marker >= 0xD9 && marker <= 0xDB) return {read_length(bytes, pos, kWidth[marker - 0xD9])};
  if (marker == 0xDC || marker == 0xDD) {
    return {0, read_length(bytes, pos, marker == 0xDC ? 2 : 4), true};
  }
  if (marker == 0xDE || marker == 0xDF) {
    return {0, 2u * read_length(bytes, pos, marker == 0xDE ? 2 : 4), true};
  }
  return {kFixed[index]};
}

}  // namespace

std::size_t skip_msgpack_value(std::span<const char> bytes, std::size_t offset,
                               std::size_t depth_max) {
  TRELLIS_ASSERT(offset <= bytes.size() && depth_max <= kPayloadDepthMax);
  // Items still to read in each open container, innermost last.
  std::array<std::uint64_t, kPayloadDepthMax> pending{};
  std::size_t depth = 0;
  std::size_t pos = offset;
  for (;;) {
    if (depth > 0) --pending[depth - 1];
    const MsgpackItem item = read_marker(bytes, pos);
    if (item.skip > bytes.size() - pos) throw FrameError("payload is truncated msgpack");
    pos += item.skip;
    if (item.container) {
      if (depth >= depth_max) throw FrameError("payload is not valid msgpack: too deeply nested");
      // (A container claiming more items than bytes remain is cut short: said so at once.)
      if (item.children > bytes.size() - pos) throw FrameError("payload is truncated msgpack");
      if (item.children > 0) pending[depth++] = item.children;
    }
    while (depth > 0 && pending[depth - 1] == 0) --depth;
    if (depth == 0) return pos;
  }
}

void check_msgpack_value(std::span<const char> payload) {
  (void)internal::unpack_payload(payload);
}

std::vector<char> encode_call_payload(std::string_view function, std::span<const char> arguments) {
  internal::ByteSink sink;
  msgpack::packer<internal::ByteSink> packer(sink);
  packer.pack_array(2);
  packer.pack(function);
  sink.bytes.insert(sink.bytes.end(), arguments.begin(), arguments.end());
  return std::move(sink.bytes);
}

CallPayload parse_call_payload(std::span<const char> payload) {
  msgpack::object_handle handle = internal::unpack_payload(payload);
  const msgpack::object& root = handle.get();
  if (root.type != msgpack::type::ARRAY || root.via.array.size != 2) {
    throw FrameError("call payload is not [function, arguments]");
  }
  CallPayload call;
  call.function = read_string(root.via.array.ptr[0], "call's function name");
  const msgpack::object& arguments = root.via.array.ptr[1];
  if (arguments.type != msgpack::type::ARRAY) throw FrameError("call's arguments are not an array");
  call.arguments = internal::pack_value(arguments);
  return call;
}

std::vector<char> encode_error_payload(std::string_view type_name, std::string_view message) {
  internal::ByteSink sink;
  msgpack::packer<internal::ByteSink> packer(sink);
  packer.pack_array(2);
  packer.pack(type_name);
  packer.pack(message);
  return std::move(sink.bytes);
}

ErrorPayload parse_error_payload(std::span<const char> payload) {
  msgpack::object_handle handle = internal::unpack_payload(payload);
  const msgpack::object& root = handle.get();
  if (root.type != msgpack::type::ARRAY || root.via.array.size != 2) {
    throw FrameError("error payload is not [type name, message]");
  }
  return ErrorPayload{read_string(root.via.array.ptr[0], "error's type name"),
                      read_string(root.via.array.ptr[1], "error's message")};
}

namespace internal {

msgpack::object unpack_payload(std::span<const char> payload, msgpack::zone& zone) {
  const std::size_t n = payload.size();
  const msgpack::unpack_limit limit(n, n, n, n, n, kPayloadDepthMax);
  std::size_t offset = 0;
  bool referenced = false;
  msgpack::object object;
  try {
    object = msgpack::unpack(zone, payload.data(), n, offset, referenced, nullptr, nullptr, limit);
  } catch (const msgpack::insufficient_bytes&) {
    throw FrameError("payload is truncated msgpack");
  } catch (const std::exception& e) {
    throw FrameError(std::string("payload is not valid msgpack: ") + e.what());
  }
  if (offset != n) {
    throw FrameError("payload has " + std::to_string(n - offset) +
                     " bytes after its msgpack value");
  }
  return object;
}

msgpack::object_handle unpack_payload(std::span<const char> payload) {
  auto zone = std::make_unique<msgpack::zone>();
  const msgpack::object object = unpack_payload(payload, *zone);
  return msgpack::object_handle(object, std::move(zone));
}

namespace {
// The thread's scratch zone (ScratchZone). Its first chunk is small: a zone keeps that one
// across clear(), and most values need less.
struct ThreadScratch {
  msgpack::zone zone{1024};
  bool in_use = false;
};
thread_local ThreadScratch thread_scratch;
}  // namespace

ScratchZone::ScratchZone() {
  if (thread_scratch.in_use) {
    own_ = std::make_unique<msgpack::zone>();
    zone_ = own_.get();
  } else {
    thread_scratch.in_use = true;
    zone_ = &thread_scratch.zone;
  }
}

ScratchZone::~ScratchZone() {
  if (own_ != nullptr) return;
  thread_scratch.zone.clear();
  thread_scratch.in_use = false;
}

}  // namespace internal
}  // namespace trellis::to_process
