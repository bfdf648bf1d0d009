// trellis/fakes/check_streams.h — conformance checks for any stream implementation (Trio's
// trio.testing.check_one_way_stream / check_two_way_stream / check_half_closeable_stream).
//
// Each check makes fresh connected pairs with the given maker and exercises the contracts of
// io/stream.h on them: data arrives intact and in order, empty sends are harmless, every
// operation is a checkpoint, concurrent use throws BusyResourceError, closing one side
// breaks or closes the other as specified, close() is idempotent and works when cancelled,
// a blocked operation wakes with ClosedResourceError when its stream is closed, a 1 MiB
// duplex transfer with random chunk sizes, half-close... The first violation throws a
// StreamCheckError naming the check, the section and what went wrong.
//
//   TEST(MyStream, PassesTheConformanceChecks) {
//     trellis::run([] {
//       trellis::fakes::check_half_closeable_stream(
//           [] { return make_connected_pair(); },      // pair<unique_ptr<S>, unique_ptr<S>>
//           [] { return make_clogged_pair(); });       // or nullptr if you cannot clog it
//     });
//   }
//
// Makers: called from a task, may block (e.g. connect over loopback); return a connected
// pair, data flowing first -> second for one-way streams (both ways for the others). A
// maker returning pair<unique_ptr<Derived>, unique_ptr<Derived>> converts implicitly. The
// clogged maker (optional: pass nullptr) returns a pair whose send_all and
// wait_send_all_might_not_block block until the receiver calls receive_some (e.g. a socket
// pair whose buffers were filled first); it enables the wait_send_all_might_not_block and
// blocked-send checks. The checks close every stream they make (close_forcefully) on the way
// out, also on failure.
//
// Must run inside a task (trellis::run). A MockClock is not needed, but the checks use
// wait_all_tasks_blocked, so unrelated busy tasks slow them down. A stream that makes an
// operation hang forever (e.g. send_eof that never delivers end of file) hangs the check, as
// in Trio: wrap the call in fail_after (the epoll backend waits rather than reporting a
// deadlock). Errors other than the
// expected ones become a StreamCheckError too ("unexpected ..."); Cancelled propagates.
//
// Differences from Trio forced by C++ types: receive_some's max_bytes is the buffer size, so
// "max_bytes < 1 -> ValueError" is "empty buffer -> std::invalid_argument", and the
// bytes/bytearray/memoryview checks become "send_all sends exactly the span it is given".
#pragma once

#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>

#include "trellis/io/stream.h"

namespace trellis::fakes {

// A stream failed a conformance check. what(): "<check> [<section>]: <what went wrong>".
class StreamCheckError : public std::logic_error {
 public:
  explicit StreamCheckError(const std::string& what) : std::logic_error(what) {}
};

using OneWayStreamMaker =
    std::function<std::pair<std::unique_ptr<SendStream>, std::unique_ptr<ReceiveStream>>()>;
using TwoWayStreamMaker =
    std::function<std::pair<std::unique_ptr<Stream>, std::unique_ptr<Stream>>()>;
using HalfCloseableStreamMaker = std::function<
    std::pair<std::unique_ptr<HalfCloseableStream>, std::unique_ptr<HalfCloseableStream>>()>;

// Checks a one-way stream (first sends, second receives). Blocks; a checkpoint. Throws
// StreamCheckError on the first violation, std::invalid_argument if stream_maker is empty.
void check_one_way_stream(const OneWayStreamMaker& stream_maker,
                          const OneWayStreamMaker& clogged_stream_maker);

// check_one_way_stream in both directions, then a concurrent 1 MiB transfer each way with
// random chunk sizes, then close() of one side makes the other read end of file. A superset
// of check_one_way_stream. Blocks; a checkpoint; throws as check_one_way_stream.
void check_two_way_stream(const TwoWayStreamMaker& stream_maker,
                          const TwoWayStreamMaker& clogged_stream_maker);

// check_two_way_stream, then send_eof: the peer reads the data then end of file, send_eof is
// a checkpoint and idempotent, send_all afterwards throws ClosedResourceError, the other
// direction still works; with a clogged maker, send_eof during a blocked send_all (or
// wait_send_all_might_not_block) throws BusyResourceError. A superset of
// check_two_way_stream. Blocks; a checkpoint; throws as check_one_way_stream.
void check_half_closeable_stream(const HalfCloseableStreamMaker& stream_maker,
                                 const HalfCloseableStreamMaker& clogged_stream_maker);

}  // namespace trellis::fakes
