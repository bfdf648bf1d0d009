// trellis/actor/protocol.cc — see protocol.h.

#include "trellis/actor/protocol.h"

#include <algorithm>

#include <optional>

#include "trellis/to_process/codec.h"

namespace trellis::actor::protocol {
namespace {

using to_process::FrameError;
using to_process::internal::ByteSink;
using Packer = msgpack::packer<ByteSink>;

std::vector<char> frame(Kind kind, const ByteSink& sink) {
  return to_process::encode_raw_frame(kActorFrameFormat, static_cast<std::uint8_t>(kind), 0,
                                      sink.bytes);
}

// The payload's root array, which must have `size` elements.
const msgpack::object* elements(const msgpack::object& root, std::size_t size, const char* what) {
  if (root.type != msgpack::type::ARRAY || root.via.array.size != size) {
    throw FrameError(std::string(what) + " payload is not an array of " + std::to_string(size));
  }
  return root.via.array.ptr;
}

std::string read_string(const msgpack::object& object, const char* what) {
  if (object.type != msgpack::type::STR) throw FrameError(std::string(what) + " is not a string");
  return std::string(object.via.str.ptr, object.via.str.size);
}

std::uint64_t read_id(const msgpack::object& object) {
  if (object.type != msgpack::type::POSITIVE_INTEGER) {
    throw FrameError("call id is not an unsigned integer");
  }
  return object.via.u64;
}

}  // namespace

std::vector<char> encode_hello(const Hello& hello) {
  ByteSink sink;
  Packer packer(sink);
  packer.pack_array(3);
  packer.pack(hello.name);
  packer.pack(hello.uid);
  packer.pack(hello.pid);
  return frame(Kind::kHello, sink);
}

std::vector<char> encode_call(std::uint64_t id, std::string_view function,
                              std::span<const char> arguments) {
  ByteSink sink;
  Packer packer(sink);
  packer.pack_array(3);
  packer.pack(id);
  packer.pack(function);
  sink.bytes.insert(sink.bytes.end(), arguments.begin(), arguments.end());
  return frame(Kind::kCall, sink);
}

std::vector<char> encode_return(std::uint64_t id, std::span<const char> value) {
  ByteSink sink;
  Packer packer(sink);
  packer.pack_array(2);
  packer.pack(id);
  sink.bytes.insert(sink.bytes.end(), value.begin(), value.end());
  return frame(Kind::kReturn, sink);
}

std::vector<char> encode_error(const Error& error) {
  ByteSink sink;
  Packer packer(sink);
  packer.pack_array(6);
  packer.pack(error.id);
  packer.pack(error.type_name);
  packer.pack(error.message);
  packer.pack(error.source_actor);
  packer.pack(error.relayed_through);
  const std::size_t frames = std::min(error.task_tree.size(), kTaskTreeDepthMax);
  packer.pack_array(static_cast<std::uint32_t>(frames));
  for (std::size_t i = 0; i < frames; ++i) {
    packer.pack_array(2);
    packer.pack(error.task_tree[i].actor);
    packer.pack(error.task_tree[i].function);
  }
  return frame(Kind::kError, sink);
}

std::vector<char> encode_cancel_call(std::uint64_t id) {
  ByteSink sink;
  Packer packer(sink);
  packer.pack_array(1);
  packer.pack(id);
  return frame(Kind::kCancelCall, sink);
}

std::vector<char> encode_cancel_actor() {
  ByteSink sink;
  Packer(sink).pack_array(0);
  return frame(Kind::kCancelActor, sink);
}

std::vector<char> encode_open_context(std::uint64_t id, std::string_view function,
                                      std::span<const char> arguments) {
  ByteSink sink;
  Packer packer(sink);
  packer.pack_array(3);
  packer.pack(id);
  packer.pack(function);
  sink.bytes.insert(sink.bytes.end(), arguments.begin(), arguments.end());
  return frame(Kind::kOpenContext, sink);
}

std::vector<char> encode_id_value(Kind kind, std::uint64_t id, std::span<const char> value) {
  ByteSink sink;
  Packer packer(sink);
  packer.pack_array(2);
  packer.pack(id);
  sink.bytes.insert(sink.bytes.end(), value.begin(), value.end());
  return frame(kind, sink);
}

std::vector<char> encode_id(Kind kind, std::uint64_t id) {
  ByteSink sink;
  Packer packer(sink);
  packer.pack_array(1);
  packer.pack(id);
  return frame(kind, sink);
}

std::vector<char> encode_ack(std::uint64_t id, std::uint64_t count) {
  ByteSink sink;
  Packer packer(sink);
  packer.pack_array(2);
  packer.pack(id);
  packer.pack(count);
  return frame(Kind::kAck, sink);
}

std::pair<std::uint64_t, std::uint64_t> parse_ack(std::span<const char> payload) {
  msgpack::object_handle handle = to_process::internal::unpack_payload(payload);
  const msgpack::object* e = elements(handle.get(), 2, "ack");
  if (e[1].type != msgpack::type::POSITIVE_INTEGER) throw FrameError("ack's count is not a count");
  return {read_id(e[0]), e[1].via.u64};
}

Hello parse_hello(std::span<const char> payload) {
  msgpack::object_handle handle = to_process::internal::unpack_payload(payload);
  const msgpack::object* e = elements(handle.get(), 3, "hello");
  Hello hello{read_string(e[0], "hello's actor name"), read_string(e[1], "hello's uid"), 0};
  if (e[2].type != msgpack::type::POSITIVE_INTEGER) throw FrameError("hello's pid is not a pid");
  hello.pid = static_cast<std::int64_t>(e[2].via.u64 & 0x7FFFFFFF);
  return hello;
}

Call parse_call(std::span<const char> payload) {
  msgpack::object_handle handle = to_process::internal::unpack_payload(payload);
  const msgpack::object* e = elements(handle.get(), 3, "call");
  Call call{read_id(e[0]), read_string(e[1], "call's function name"), {}};
  if (e[2].type != msgpack::type::ARRAY) throw FrameError("call's arguments are not an array");
  call.arguments = to_process::internal::pack_value(e[2]);
  return call;
}

Return parse_return(std::span<const char> payload) {
  msgpack::object_handle handle = to_process::internal::unpack_payload(payload);
  const msgpack::object* e = elements(handle.get(), 2, "return");
  return Return{read_id(e[0]), to_process::internal::pack_value(e[1])};
}

Error parse_error(std::span<const char> payload) {
  msgpack::object_handle handle = to_process::internal::unpack_payload(payload);
  const msgpack::object& root = handle.get();
  const bool has_tree = root.type == msgpack::type::ARRAY && root.via.array.size == 6;
  const msgpack::object* e = elements(root, has_tree ? 6 : 5, "error");
  Error error{read_id(e[0]),
              read_string(e[1], "error's type name"),
              read_string(e[2], "error's message"),
              read_string(e[3], "error's source actor"),
              {},
              {}};
  if (e[4].type != msgpack::type::ARRAY) throw FrameError("error's relay path is not an array");
  for (std::uint32_t i = 0; i < e[4].via.array.size; ++i) {
    error.relayed_through.push_back(read_string(e[4].via.array.ptr[i], "a relaying actor"));
  }
  if (!has_tree) return error;
  if (e[5].type != msgpack::type::ARRAY) throw FrameError("error's task tree is not an array");
  if (e[5].via.array.size > kTaskTreeDepthMax) throw FrameError("error's task tree is too deep");
  for (std::uint32_t i = 0; i < e[5].via.array.size; ++i) {
    const msgpack::object* f = elements(e[5].via.array.ptr[i], 2, "a task tree frame");
    error.task_tree.push_back(
        {read_string(f[0], "a task's actor"), read_string(f[1], "a task's function")});
  }
  return error;
}

std::uint64_t parse_cancel_call(std::span<const char> payload) {
  msgpack::object_handle handle = to_process::internal::unpack_payload(payload);
  return read_id(elements(handle.get(), 1, "cancel-call")[0]);
}

void parse_cancel_actor(std::span<const char> payload) {
  msgpack::object_handle handle = to_process::internal::unpack_payload(payload);
  (void)elements(handle.get(), 0, "cancel-actor");
}

std::optional<std::uint64_t> peek_call_id(std::span<const char> payload) {
  try {
    msgpack::object_handle handle = to_process::internal::unpack_payload(payload);
    const msgpack::object& root = handle.get();
    if (root.type != msgpack::type::ARRAY || root.via.array.size == 0) return std::nullopt;
    return read_id(root.via.array.ptr[0]);
  } catch (const FrameError&) {
    return std::nullopt;
  }
}

const char* kind_name(std::uint8_t kind) noexcept {
  switch (static_cast<Kind>(kind)) {
    case Kind::kHello:
      return "hello";
    case Kind::kCall:
      return "call";
    case Kind::kReturn:
      return "return";
    case Kind::kError:
      return "error";
    case Kind::kCancelCall:
      return "cancel-call";
    case Kind::kCancelActor:
      return "cancel-actor";
    case Kind::kOpenContext:
      return "open-context";
    case Kind::kStarted:
      return "started";
    case Kind::kStreamOpened:
      return "stream-opened";
    case Kind::kYield:
      return "yield";
    case Kind::kAck:
      return "ack";
    case Kind::kStop:
      return "stop";
  }
  return "unknown";
}

}  // namespace trellis::actor::protocol
