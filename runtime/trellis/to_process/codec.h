// trellis/to_process/codec.h — msgpack encoding of calls and results (to_process.h).
//
// Arguments are packed as one msgpack array, the result as one value. Any type with
// msgpack-cxx adaptors works (the built-in ones, MSGPACK_DEFINE, a custom adaptor); a type
// without one fails to compile in msgpack's packer or converter, never at run time.
#pragma once

#include <msgpack.hpp>

#include <memory>
#include <span>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "trellis/to_process/frame.h"

namespace trellis::to_process::internal {

// Unpacks exactly one msgpack value from untrusted bytes with every size bounded by the
// input's length and the nesting by kPayloadDepthMax. Throws FrameError naming the problem.
msgpack::object_handle unpack_payload(std::span<const char> payload);
// The same, the value's memory taken from `zone` (which must outlive the object).
msgpack::object unpack_payload(std::span<const char> payload, msgpack::zone& zone);

// A zone for a value unpacked and converted at once, with no schedule point between: the
// thread's own zone, reused (no allocation per value), or a zone of its own if that one is
// in use (a conversion that unpacks another value). Cleared on destruction.
class ScratchZone {
 public:
  ScratchZone();
  ~ScratchZone();
  ScratchZone(const ScratchZone&) = delete;
  ScratchZone& operator=(const ScratchZone&) = delete;
  msgpack::zone& get() noexcept { return *zone_; }

 private:
  msgpack::zone* zone_;
  std::unique_ptr<msgpack::zone> own_;
};

// One msgpack value (untrusted bytes, checked as unpack_payload does) converted to T;
// msgpack::type_error if it is not a T.
template <class T>
T unpack_as(std::span<const char> payload) {
  ScratchZone zone;
  return unpack_payload(payload, zone.get()).as<T>();
}

// A std::vector<char> as a msgpack write target (room for a small value from the start: no
// reallocation per byte written).
struct ByteSink {
  ByteSink() { bytes.reserve(64); }
  std::vector<char> bytes;
  void write(const char* data, std::size_t size) { bytes.insert(bytes.end(), data, data + size); }
};

template <class... Args>
std::vector<char> pack_arguments(const Args&... args) {
  ByteSink sink;
  msgpack::packer<ByteSink> packer(sink);
  packer.pack_array(sizeof...(Args));
  (packer.pack(args), ...);
  return std::move(sink.bytes);
}

template <class T>
std::vector<char> pack_value(const T& value) {
  ByteSink sink;
  msgpack::pack(sink, value);
  return std::move(sink.bytes);
}

inline std::vector<char> pack_nil() {
  ByteSink sink;
  msgpack::packer<ByteSink>(sink).pack_nil();
  return std::move(sink.bytes);
}

// Converts a decoded value to T; msgpack::type_error (a shape that is not a T) propagates.
template <class T>
T convert(const msgpack::object& object) {
  return object.as<T>();
}

}  // namespace trellis::to_process::internal
