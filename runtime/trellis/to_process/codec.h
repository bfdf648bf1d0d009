// trellis/to_process/codec.h — msgpack encoding of calls and results (to_process.h).
//
// Arguments are packed as one msgpack array, the result as one value. Any type with
// msgpack-cxx adaptors works (the built-in ones, MSGPACK_DEFINE, a custom adaptor); a type
// without one fails to compile in msgpack's packer or converter, never at run time.
#pragma once

#include <msgpack.hpp>

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

// A std::vector<char> as a msgpack write target.
struct ByteSink {
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
