// trellis/to_process/frame.h — the framed pipe protocol between a parent and its worker
// processes (to_process.h): length-prefixed, versioned and checksummed frames.
//
//   offset  size  field
//   0       4     magic "TPWK"
//   4       1     version (kProtocolVersion)
//   5       1     kind (FrameKind)
//   6       1     flags (kFlagRetiring; other bits must be zero)
//   7       1     reserved, zero
//   8       4     payload length, big-endian, at most kPayloadSizeMax
//   12      n     payload (msgpack, see below)
//   12+n    4     CRC-32 (IEEE) of bytes [0, 12+n), big-endian
//
// Payloads: kCall [function name (str), arguments (array)]; kResult the value (nil for void);
// kError [exception type name (str), message (str)]; kReady empty (the worker is initialized).
//
// Bytes from the other process are untrusted: decode_frame() and the payload parsers check
// everything and throw FrameError naming what is wrong; they never read past the input or
// allocate more than the input justifies. Pure functions, no run needed (the fuzz target and
// tests call them directly).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace trellis::to_process {

// A frame that does not decode: bad magic, unknown version or kind, a length over the bound,
// a checksum mismatch, or a payload that is not the msgpack its kind requires.
class FrameError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

inline constexpr std::uint8_t kProtocolVersion = 1;
inline constexpr std::size_t kFrameHeaderSize = 12;
inline constexpr std::size_t kFrameTrailerSize = 4;
// Bound on one payload (arguments or a result): a larger value is refused, not allocated.
inline constexpr std::size_t kPayloadSizeMax = std::size_t{64} << 20;
// Bound on msgpack nesting in a payload.
inline constexpr std::size_t kPayloadDepthMax = 64;

enum class FrameKind : std::uint8_t { kCall = 1, kResult = 2, kError = 3, kReady = 4 };
inline constexpr std::uint8_t kFlagRetiring = 1;  // the worker exits after this answer

struct Frame {
  FrameKind kind = FrameKind::kCall;
  std::uint8_t flags = 0;
  std::vector<char> payload;
};

// The bytes of one frame. Throws FrameError if the payload exceeds kPayloadSizeMax.
std::vector<char> encode_frame(FrameKind kind, std::uint8_t flags, std::span<const char> payload);

struct DecodedFrame {
  Frame frame;
  std::size_t consumed = 0;  // bytes of input that made up the frame
};
// The first frame of `input`, or nullopt if input holds only a prefix of a valid frame (read
// more). Throws FrameError as soon as the bytes seen cannot start a valid frame.
std::optional<DecodedFrame> decode_frame(std::span<const char> input);

// The frame layout above is shared by other protocols on other channels (the actors'
// protocol, trellis/actor/protocol.h): each names its own magic, version, kinds and flags.
// A frame's kind must lie in [1, max_kind]; flag bits outside flag_mask are refused.
struct FrameFormat {
  std::array<char, 4> magic;
  std::uint8_t version;
  std::uint8_t max_kind;
  std::uint8_t flag_mask;
};
inline constexpr FrameFormat kWorkerFrameFormat{{'T', 'P', 'W', 'K'},
                                                kProtocolVersion,
                                                static_cast<std::uint8_t>(FrameKind::kReady),
                                                kFlagRetiring};

// A frame of any FrameFormat: its kind as the raw byte.
struct RawFrame {
  std::uint8_t kind = 0;
  std::uint8_t flags = 0;
  std::vector<char> payload;
};
struct DecodedRawFrame {
  RawFrame frame;
  std::size_t consumed = 0;
};
// A frame in place: its payload points into the bytes it was decoded from.
struct RawFrameView {
  std::uint8_t kind = 0;
  std::uint8_t flags = 0;
  std::span<const char> payload;
};
struct DecodedRawFrameView {
  RawFrameView frame;
  std::size_t consumed = 0;
};
// decode_raw_frame without the copy of the payload (the same checks).
std::optional<DecodedRawFrameView> decode_raw_frame_view(const FrameFormat& format,
                                                         std::span<const char> input);

// encode_frame / decode_frame for any format (the same checks).
std::vector<char> encode_raw_frame(const FrameFormat& format, std::uint8_t kind, std::uint8_t flags,
                                   std::span<const char> payload);

// Builds one frame in one buffer: the payload is written after room for the header (a
// msgpack::packer<FrameBuilder> writes through write()), then finish() fills in the header and
// appends the checksum. The same bytes as encode_raw_frame, without a copy of the payload or
// a buffer of its own.
class FrameBuilder {
 public:
  explicit FrameBuilder(std::size_t payload_capacity = 64);
  void write(const char* data, std::size_t size) { bytes_.insert(bytes_.end(), data, data + size); }
  void write(std::span<const char> data) { write(data.data(), data.size()); }
  // The whole frame (the builder is spent). Throws FrameError if the payload exceeds
  // kPayloadSizeMax.
  std::vector<char> finish(const FrameFormat& format, std::uint8_t kind, std::uint8_t flags) &&;

 private:
  std::vector<char> bytes_;
};
std::optional<DecodedRawFrame> decode_raw_frame(const FrameFormat& format,
                                                std::span<const char> input);

// Collects bytes from a stream and cuts them into frames of one format.
class RawFrameReader {
 public:
  explicit RawFrameReader(const FrameFormat& format) : format_(format) {}
  void feed(std::span<const char> bytes) {
    compact();
    buffer_.insert(buffer_.end(), bytes.begin(), bytes.end());
  }
  // The next complete frame, or nullopt. Throws FrameError (the stream is then unusable).
  std::optional<RawFrame> next();
  // The same in place: the view is valid until the next call of feed, next or next_view.
  std::optional<RawFrameView> next_view();
  std::size_t buffered() const noexcept { return buffer_.size() - start_; }

 private:
  // Drops the consumed bytes (when that is cheap: all of them, or over half the buffer).
  void compact();

  FrameFormat format_;
  std::vector<char> buffer_;
  std::size_t start_ = 0;  // Invariant: start_ <= buffer_.size(); bytes before it are consumed
};

// Collects bytes from a stream and cuts them into to_process frames.
class FrameReader {
 public:
  void feed(std::span<const char> bytes) { raw_.feed(bytes); }
  // The next complete frame, or nullopt. Throws FrameError (the stream is then unusable).
  std::optional<Frame> next();
  std::size_t buffered() const noexcept { return raw_.buffered(); }

 private:
  RawFrameReader raw_{kWorkerFrameFormat};
};

// Payload helpers. The parsers throw FrameError for anything but the expected shape.
struct CallPayload {
  std::string function;
  std::vector<char> arguments;  // the msgpack array of arguments, as sent
};
std::vector<char> encode_call_payload(std::string_view function, std::span<const char> arguments);
CallPayload parse_call_payload(std::span<const char> payload);
struct ErrorPayload {
  std::string type_name;
  std::string message;
};
std::vector<char> encode_error_payload(std::string_view type_name, std::string_view message);
ErrorPayload parse_error_payload(std::span<const char> payload);
// Checks that payload holds exactly one well-formed msgpack value within the bounds above.
void check_msgpack_value(std::span<const char> payload);
// The offset just past the msgpack value that starts at `offset` in `bytes`, its structure
// checked as unpacking it would (every marker valid, nothing past the input, at most
// `depth_max` containers open at once, this value's own included), without decoding it or
// allocating. Throws FrameError. check_msgpack_value accepts exactly the payloads whose
// value this skips to the payload's end with depth_max = kPayloadDepthMax.
std::size_t skip_msgpack_value(std::span<const char> bytes, std::size_t offset,
                               std::size_t depth_max = kPayloadDepthMax);

// CRC-32 (IEEE 802.3, reflected, as zlib's crc32).
std::uint32_t crc32(std::span<const char> bytes) noexcept;

}  // namespace trellis::to_process
