// trellis_frame_fuzzer — coverage-guided fuzzing of the to_process pipe protocol's decoders
// (libFuzzer): bytes from a worker or a parent are untrusted, so every decoder must turn any
// input into frames or a FrameError — never a crash, an over-read, a huge allocation or a
// hang. The input is cut into frames as a stream (FrameReader), each frame's payload is
// parsed as every payload kind, and the worker loop serves the input as if the parent sent
// it (answers go nowhere). The actors' protocol (trellis/actor/protocol.h: the same frame
// layout with its own magic and kinds) is decoded the same way, each payload parsed as every
// actor message.
//
//   build/fuzz/tools/trellis_frame_fuzzer -max_total_time=60 corpus/
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

#include "trellis/actor/protocol.h"
#include "trellis/to_process.h"

namespace {

using namespace trellis::to_process;

// The worker loop's I/O over the fuzz input, in chunks whose sizes the input also chooses.
class FuzzIo final : public WorkerIo {
 public:
  explicit FuzzIo(std::span<const char> input) : input_(input) {}
  std::size_t read_some(std::span<char> buffer) override {
    if (input_.empty()) return 0;
    const std::size_t chunk = 1 + static_cast<unsigned char>(input_[0]) % 64;
    const std::size_t n = std::min({buffer.size(), chunk, input_.size()});
    std::copy_n(input_.begin(), n, buffer.begin());
    input_ = input_.subspan(n);
    return n;
  }
  void write_all(std::span<const char>) override {}

 private:
  std::span<const char> input_;
};

void parse_every_way(const Frame& frame) {
  try {
    (void)parse_call_payload(frame.payload);
  } catch (const FrameError&) {
  }
  try {
    (void)parse_error_payload(frame.payload);
  } catch (const FrameError&) {
  }
  // skip_msgpack_value (the actors' parsers check payloads with it) accepts exactly what the
  // unpacker accepts.
  bool unpacked = true;
  try {
    check_msgpack_value(frame.payload);
  } catch (const FrameError&) {
    unpacked = false;
  }
  bool skipped = false;
  try {
    skipped = skip_msgpack_value(frame.payload, 0) == frame.payload.size();
  } catch (const FrameError&) {
  }
  if (unpacked != skipped) std::abort();
}

template <class Parse>
void try_parse(Parse parse, std::span<const char> payload) {
  try {
    (void)parse(payload);
  } catch (const FrameError&) {
  }
}

void parse_as_actor_messages(std::span<const char> payload) {
  namespace protocol = trellis::actor::protocol;
  try_parse(protocol::parse_hello, payload);
  try_parse(protocol::parse_call, payload);
  try_parse(protocol::parse_return, payload);
  try_parse(protocol::parse_error, payload);
  try_parse(protocol::parse_cancel_call, payload);
  try_parse(protocol::parse_ack, payload);
  try_parse(
      [](std::span<const char> p) {
        protocol::parse_cancel_actor(p);
        return 0;
      },
      payload);
  (void)protocol::peek_call_id(payload);
}

void fuzz_actor_frames(std::span<const char> input) {
  RawFrameReader reader(trellis::actor::protocol::kActorFrameFormat);
  reader.feed(input);
  try {
    while (std::optional<RawFrame> frame = reader.next()) {
      (void)trellis::actor::protocol::kind_name(frame->kind);
      parse_as_actor_messages(frame->payload);
    }
  } catch (const FrameError&) {
  }
  parse_as_actor_messages(input);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const char> input(reinterpret_cast<const char*>(data), size);
  FrameReader reader;
  reader.feed(input);
  try {
    while (std::optional<Frame> frame = reader.next()) parse_every_way(*frame);
  } catch (const FrameError&) {
  }
  // Payload parsers on the raw input too (frames with a valid CRC are rare for the fuzzer).
  parse_every_way(Frame{FrameKind::kCall, 0, std::vector<char>(input.begin(), input.end())});
  FuzzIo io(input);
  (void)serve_worker(io, {});
  fuzz_actor_frames(input);
  return 0;
}
