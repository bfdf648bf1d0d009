// trellis/to_process/frame.cc — see frame.h.

#include "trellis/to_process/frame.h"

#include <array>
#include <cstring>

#include "trellis/base/assert.h"
#include "trellis/to_process/codec.h"

namespace trellis::to_process {
namespace {

constexpr std::array<std::uint32_t, 256> make_crc_table() {
  std::array<std::uint32_t, 256> table{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    table[i] = c;
  }
  return table;
}
constexpr std::array<std::uint32_t, 256> kCrcTable = make_crc_table();

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

std::string read_string(const msgpack::object& object, const char* what) {
  if (object.type != msgpack::type::STR) throw FrameError(std::string(what) + " is not a string");
  return std::string(object.via.str.ptr, object.via.str.size);
}

}  // namespace

std::uint32_t crc32(std::span<const char> bytes) noexcept {
  std::uint32_t c = 0xFFFFFFFFu;
  for (char byte : bytes) c = kCrcTable[(c ^ static_cast<unsigned char>(byte)) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

std::vector<char> encode_frame(FrameKind kind, std::uint8_t flags, std::span<const char> payload) {
  return encode_raw_frame(kWorkerFrameFormat, static_cast<std::uint8_t>(kind), flags, payload);
}

std::vector<char> encode_raw_frame(const FrameFormat& format, std::uint8_t kind, std::uint8_t flags,
                                   std::span<const char> payload) {
  if (payload.size() > kPayloadSizeMax) {
    throw FrameError("a payload of " + std::to_string(payload.size()) +
                     " bytes exceeds the bound of " + std::to_string(kPayloadSizeMax) +
                     " (arguments, results and messages must be smaller)");
  }
  TRELLIS_ASSERT((flags & ~format.flag_mask) == 0);
  TRELLIS_ASSERT(known_kind(format, kind));
  std::vector<char> out(kFrameHeaderSize + payload.size() + kFrameTrailerSize);
  std::memcpy(out.data(), format.magic.data(), format.magic.size());
  out[4] = static_cast<char>(format.version);
  out[5] = static_cast<char>(kind);
  out[6] = static_cast<char>(flags);
  out[7] = 0;
  put_u32(out.data() + 8, static_cast<std::uint32_t>(payload.size()));
  if (!payload.empty()) std::memcpy(out.data() + kFrameHeaderSize, payload.data(), payload.size());
  const std::size_t body = kFrameHeaderSize + payload.size();
  put_u32(out.data() + body, crc32(std::span<const char>(out.data(), body)));
  TRELLIS_ASSERT(out.size() == body + kFrameTrailerSize);
  return out;
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

std::optional<DecodedRawFrame> decode_raw_frame(const FrameFormat& format,
                                                std::span<const char> input) {
  check_header_prefix(format, input);
  if (input.size() < kFrameHeaderSize) return std::nullopt;
  const std::size_t length = get_u32(input.data() + 8);
  const std::size_t body = kFrameHeaderSize + length;
  if (input.size() < body + kFrameTrailerSize) return std::nullopt;
  const std::uint32_t expected = get_u32(input.data() + body);
  if (crc32(input.first(body)) != expected) throw FrameError("frame checksum mismatch");
  DecodedRawFrame decoded;
  decoded.frame.kind = static_cast<std::uint8_t>(input[5]);
  decoded.frame.flags = static_cast<std::uint8_t>(input[6]);
  decoded.frame.payload.assign(input.data() + kFrameHeaderSize, input.data() + body);
  decoded.consumed = body + kFrameTrailerSize;
  TRELLIS_ASSERT(decoded.consumed <= input.size());
  return decoded;
}

std::optional<Frame> FrameReader::next() {
  std::optional<RawFrame> raw = raw_.next();
  if (!raw) return std::nullopt;
  return Frame{static_cast<FrameKind>(raw->kind), raw->flags, std::move(raw->payload)};
}

std::optional<RawFrame> RawFrameReader::next() {
  TRELLIS_ASSERT(start_ <= buffer_.size());
  std::optional<DecodedRawFrame> decoded = decode_raw_frame(
      format_, std::span<const char>(buffer_.data() + start_, buffer_.size() - start_));
  if (!decoded) return std::nullopt;
  start_ += decoded->consumed;
  if (start_ == buffer_.size()) {
    buffer_.clear();
    start_ = 0;
  } else if (start_ > buffer_.size() / 2) {
    buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(start_));
    start_ = 0;
  }
  return std::move(decoded->frame);
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

msgpack::object_handle unpack_payload(std::span<const char> payload) {
  const std::size_t n = payload.size();
  const msgpack::unpack_limit limit(n, n, n, n, n, kPayloadDepthMax);
  std::size_t offset = 0;
  msgpack::object_handle handle;
  try {
    handle = msgpack::unpack(payload.data(), n, offset, nullptr, nullptr, limit);
  } catch (const msgpack::insufficient_bytes&) {
    throw FrameError("payload is truncated msgpack");
  } catch (const std::exception& e) {
    throw FrameError(std::string("payload is not valid msgpack: ") + e.what());
  }
  if (offset != n) {
    throw FrameError("payload has " + std::to_string(n - offset) +
                     " bytes after its msgpack value");
  }
  return handle;
}

}  // namespace internal
}  // namespace trellis::to_process
