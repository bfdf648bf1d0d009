// trellis/actor/protocol.h — the messages between a parent actor and a child actor.
//
// Every message is one frame of the to_process frame layout (to_process/frame.h: magic,
// version, kind, flags, length, payload, CRC-32) with the actors' own format: magic "TACT",
// version kActorProtocolVersion, no flags. The payload is one msgpack array:
//
//   kind            direction        payload
//   1 kHello        child -> parent  [actor name (str), uid (str), pid (int)]
//   2 kCall         parent -> child  [call id (uint), function (str), arguments (array)]
//   3 kReturn       child -> parent  [call id, result (any msgpack value; nil for void)]
//   4 kError        child -> parent  [call id, type name (str), message (str),
//                                     source actor (str), relayed through (array of str),
//                                     task tree (array of [actor (str), function (str)],
//                                     the failing task first, then each relaying one;
//                                     optional: 5-element errors are read too)]
//   5 kCancelCall   parent -> child  [call id]   cancel that call's task (transitively)
//   6 kCancelActor  parent -> child  []          cancel every task, then exit
//   7 kOpenContext  parent -> child  [call id, function (str), arguments (array)]: a call
//                                    whose function gets a Context (answered by kReturn or
//                                    kError; a cancelled one by kError ContextCancelled)
//   8 kStarted      child -> parent  [call id, value]   Context::started
//   9 kStreamOpened either           [call id]   this side opened its stream
//  10 kYield        either           [call id, message]   one stream message
//  11 kAck          either           [call id, count]   count stream messages consumed
//  12 kStop         either           [call id]   this side closed its stream
//
// The connection: the parent listens on TCP loopback; the child (started with the address
// and a uid on its command line, see actor_arguments) connects and sends kHello first. Call
// ids are chosen by the parent, unique per connection. A call cancelled by kCancelCall gets no
// answer. Version history: 1, the messages above (kinds 7-12, contexts, added
// before any release of version 1).
//
// Bytes from the peer are untrusted: the parsers throw to_process::FrameError naming what is
// wrong, never read past the input (the fuzz target tools/fuzz/frame_fuzzer.cc runs them).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "trellis/base/function_ref.h"
#include "trellis/to_process/frame.h"

namespace trellis::actor::protocol {

inline constexpr std::uint8_t kActorProtocolVersion = 1;

enum class Kind : std::uint8_t {
  kHello = 1,
  kCall = 2,
  kReturn = 3,
  kError = 4,
  kCancelCall = 5,
  kCancelActor = 6,
  kOpenContext = 7,
  kStarted = 8,
  kStreamOpened = 9,
  kYield = 10,
  kAck = 11,
  kStop = 12,
};
inline constexpr to_process::FrameFormat kActorFrameFormat{
    {'T', 'A', 'C', 'T'}, kActorProtocolVersion, static_cast<std::uint8_t>(Kind::kStop), 0};

struct Hello {
  std::string name;
  std::string uid;
  std::int64_t pid = 0;
};
struct Call {
  std::uint64_t id = 0;
  std::string function;
  std::vector<char> arguments;  // the msgpack array, as sent
};
struct Return {
  std::uint64_t id = 0;
  std::vector<char> value;  // one msgpack value
};
// One task of a remote error's path: which actor, running which function.
struct TaskFrame {
  std::string actor;
  std::string function;
  friend bool operator==(const TaskFrame&, const TaskFrame&) = default;
};
inline constexpr std::size_t kTaskTreeDepthMax = 256;  // frames kept (deeper: the innermost)

struct Error {
  std::uint64_t id = 0;
  std::string type_name;
  std::string message;
  std::string source_actor;
  std::vector<std::string> relayed_through;
  std::vector<TaskFrame> task_tree;  // the failing task first
};

// Whole frames (header, payload, checksum).
std::vector<char> encode_hello(const Hello& hello);
std::vector<char> encode_call(std::uint64_t id, std::string_view function,
                              std::span<const char> arguments);
// The same, the arguments written into the frame by `write_arguments` (one msgpack array).
std::vector<char> encode_call(std::uint64_t id, std::string_view function,
                              FunctionRef<void(to_process::FrameBuilder&)> write_arguments);
std::vector<char> encode_return(std::uint64_t id, std::span<const char> value);
// The same, the value written into the frame by `write_value` (one msgpack value).
std::vector<char> encode_return(std::uint64_t id,
                                FunctionRef<void(to_process::FrameBuilder&)> write_value);
std::vector<char> encode_error(const Error& error);
std::vector<char> encode_cancel_call(std::uint64_t id);
std::vector<char> encode_cancel_actor();
std::vector<char> encode_open_context(std::uint64_t id, std::string_view function,
                                      std::span<const char> arguments);
// kStarted and kYield: [id, value]; kStreamOpened and kStop: [id]; kAck: [id, count].
std::vector<char> encode_id_value(Kind kind, std::uint64_t id, std::span<const char> value);
std::vector<char> encode_id(Kind kind, std::uint64_t id);
std::vector<char> encode_ack(std::uint64_t id, std::uint64_t count);

// Payload parsers (the frame's kind says which); throw to_process::FrameError.
Hello parse_hello(std::span<const char> payload);
Call parse_call(std::span<const char> payload);
Return parse_return(std::span<const char> payload);
Error parse_error(std::span<const char> payload);
std::uint64_t parse_cancel_call(std::span<const char> payload);  // also kStreamOpened, kStop
// kOpenContext's payload is a kCall's (parse_call); kStarted's and kYield's a kReturn's
// (parse_return). kAck: {id, count}.
std::pair<std::uint64_t, std::uint64_t> parse_ack(std::span<const char> payload);
void parse_cancel_actor(std::span<const char> payload);
// The call id of a kCall/kReturn/kError/kCancelCall payload whose rest may be malformed (to
// answer a malformed call with an error); nullopt if not even that can be read.
std::optional<std::uint64_t> peek_call_id(std::span<const char> payload);

const char* kind_name(std::uint8_t kind) noexcept;

}  // namespace trellis::actor::protocol
