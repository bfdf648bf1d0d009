// trellis/actor/protocol.cc — see protocol.h.

#include "trellis/actor/protocol.h"

#include <algorithm>

#include <optional>

#include "trellis/to_process/codec.h"

namespace trellis::actor::protocol {
namespace {

using to_process::FrameBuilder;
using to_process::FrameError;
using Packer = msgpack::packer<FrameBuilder>;

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

// Reads the head of a payload already checked to be one well-formed msgpack value
// (checked_payload) in place: the root array's header, call ids, strings; the rest is the
// payload's last element, which a caller takes as it was sent (no decode and re-encode).
class HeadReader {
 public:
  explicit HeadReader(std::span<const char> payload) : bytes_(payload) {}

  // The root array, which must have `size` elements.
  void root(std::size_t size, const char* what) {
    const unsigned char marker = next();
    std::size_t count = 0;
    if (marker >= 0x90 && marker <= 0x9F) {
      count = marker & 0x0Fu;
    } else if (marker == 0xDC || marker == 0xDD) {
      count = big_endian(marker == 0xDC ? 2 : 4);
    } else {
      count = size + 1;  // not an array
    }
    if (count != size) {
      throw FrameError(std::string(what) + " payload is not an array of " + std::to_string(size));
    }
  }
  std::uint64_t id() {
    const unsigned char marker = next();
    if (marker <= 0x7F) return marker;
    if (marker >= 0xCC && marker <= 0xCF) return big_endian(std::size_t{1} << (marker - 0xCC));
    if (marker >= 0xD0 && marker <= 0xD3) {  // a signed encoding of a value >= 0 is one too
      const std::size_t width = std::size_t{1} << (marker - 0xD0);
      if ((static_cast<unsigned char>(bytes_[pos_]) & 0x80) == 0) return big_endian(width);
    }
    throw FrameError("call id is not an unsigned integer");
  }
  std::string string(const char* what) {
    const unsigned char marker = next();
    std::size_t size = 0;
    if (marker >= 0xA0 && marker <= 0xBF) {
      size = marker & 0x1Fu;
    } else if (marker >= 0xD9 && marker <= 0xDB) {
      size = big_endian(std::size_t{1} << (marker - 0xD9));
    } else {
      throw FrameError(std::string(what) + " is not a string");
    }
    std::string value(bytes_.data() + pos_, size);
    pos_ += size;
    return value;
  }
  // The last element, as sent.
  std::span<const char> rest() const { return bytes_.subspan(pos_); }
  bool rest_is_array() const {
    const auto marker = static_cast<unsigned char>(bytes_[pos_]);
    return (marker >= 0x90 && marker <= 0x9F) || marker == 0xDC || marker == 0xDD;
  }

 private:
  unsigned char next() { return static_cast<unsigned char>(bytes_[pos_++]); }
  std::uint64_t big_endian(std::size_t width) {
    std::uint64_t value = 0;
    for (std::size_t i = 0; i < width; ++i) value = (value << 8) | next();
    return value;
  }

  std::span<const char> bytes_;
  std::size_t pos_ = 0;
};

// The payload, checked to hold exactly one well-formed msgpack value (as unpack_payload).
std::span<const char> checked_payload(std::span<const char> payload) {
  const std::size_t end = to_process::skip_msgpack_value(payload, 0);
  if (end != payload.size()) {
    throw FrameError("payload has " + std::to_string(payload.size() - end) +
                     " bytes after its msgpack value");
  }
  return payload;
}

// A frame of `kind` whose payload the caller packs into the builder.
std::vector<char> frame(Kind kind, FrameBuilder&& builder) {
  return std::move(builder).finish(kActorFrameFormat, static_cast<std::uint8_t>(kind), 0);
}

// kCall and kOpenContext: [id, function, arguments].
std::vector<char> encode_function_call(Kind kind, std::uint64_t id, std::string_view function,
                                       std::span<const char> arguments) {
  // (Room for the array's header, the id and the name's header: 1 + 9 + 5 bytes.)
  FrameBuilder builder(15 + function.size() + arguments.size());
  Packer packer(builder);
  packer.pack_array(3);
  packer.pack(id);
  packer.pack(function);
  builder.write(arguments);
  return frame(kind, std::move(builder));
}

}  // namespace

std::vector<char> encode_hello(const Hello& hello) {
  FrameBuilder builder;
  Packer packer(builder);
  packer.pack_array(3);
  packer.pack(hello.name);
  packer.pack(hello.uid);
  packer.pack(hello.pid);
  return frame(Kind::kHello, std::move(builder));
}

std::vector<char> encode_call(std::uint64_t id, std::string_view function,
                              std::span<const char> arguments) {
  return encode_function_call(Kind::kCall, id, function, arguments);
}

std::vector<char> encode_call(std::uint64_t id, std::string_view function,
                              FunctionRef<void(FrameBuilder&)> write_arguments) {
  FrameBuilder builder(32 + function.size());  // (room for a few small arguments)
  Packer packer(builder);
  packer.pack_array(3);
  packer.pack(id);
  packer.pack(function);
  write_arguments(builder);
  return frame(Kind::kCall, std::move(builder));
}

std::vector<char> encode_return(std::uint64_t id, std::span<const char> value) {
  return encode_id_value(Kind::kReturn, id, value);
}

std::vector<char> encode_return(std::uint64_t id, FunctionRef<void(FrameBuilder&)> write_value) {
  FrameBuilder builder(32);  // (the array's header, the id, room for a small value)
  Packer packer(builder);
  packer.pack_array(2);
  packer.pack(id);
  write_value(builder);
  return frame(Kind::kReturn, std::move(builder));
}

std::vector<char> encode_error(const Error& error) {
  FrameBuilder builder;
  Packer packer(builder);
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
  return frame(Kind::kError, std::move(builder));
}

std::vector<char> encode_cancel_call(std::uint64_t id) {
  FrameBuilder builder;
  Packer packer(builder);
  packer.pack_array(1);
  packer.pack(id);
  return frame(Kind::kCancelCall, std::move(builder));
}

std::vector<char> encode_cancel_actor() {
  FrameBuilder builder;
  Packer(builder).pack_array(0);
  return frame(Kind::kCancelActor, std::move(builder));
}

std::vector<char> encode_open_context(std::uint64_t id, std::string_view function,
                                      std::span<const char> arguments) {
  return encode_function_call(Kind::kOpenContext, id, function, arguments);
}

std::vector<char> encode_id_value(Kind kind, std::uint64_t id, std::span<const char> value) {
  FrameBuilder builder(10 + value.size());  // (the array's header, the id: 1 + 9 bytes)
  Packer packer(builder);
  packer.pack_array(2);
  packer.pack(id);
  builder.write(value);
  return frame(kind, std::move(builder));
}

std::vector<char> encode_id(Kind kind, std::uint64_t id) {
  FrameBuilder builder;
  Packer packer(builder);
  packer.pack_array(1);
  packer.pack(id);
  return frame(kind, std::move(builder));
}

std::vector<char> encode_ack(std::uint64_t id, std::uint64_t count) {
  FrameBuilder builder;
  Packer packer(builder);
  packer.pack_array(2);
  packer.pack(id);
  packer.pack(count);
  return frame(Kind::kAck, std::move(builder));
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
  HeadReader reader(checked_payload(payload));
  reader.root(3, "call");
  Call call{reader.id(), reader.string("call's function name"), {}};
  if (!reader.rest_is_array()) throw FrameError("call's arguments are not an array");
  const std::span<const char> arguments = reader.rest();
  call.arguments.assign(arguments.begin(), arguments.end());
  return call;
}

Return parse_return(std::span<const char> payload) {
  HeadReader reader(checked_payload(payload));
  reader.root(2, "return");
  Return answer{reader.id(), {}};
  const std::span<const char> value = reader.rest();
  answer.value.assign(value.begin(), value.end());
  return answer;
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
