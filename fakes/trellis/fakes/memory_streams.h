// trellis/fakes/memory_streams.h — in-memory streams for tests, with hooks to stall, trickle
// or corrupt the data (Trio's trio.testing memory streams).
//
// Two families:
// - Memory streams: unbounded buffering. MemorySendStream buffers what send_all() gives it;
//   MemoryReceiveStream hands out what put_data() gave it; memory_stream_pump() moves bytes
//   from one to the other. memory_stream_one_way_pair() wires a pair so that send_all and
//   close pump automatically; memory_stream_pair() staples two such pipes into two connected
//   HalfCloseableStreams (a socketpair without an operating system).
// - Lockstep streams: zero buffering. send_all returns only once the receiver has taken every
//   byte; handy as the "clogged" stream of the conformance checks (check_streams.h).
//
//   auto [client, server] = trellis::fakes::memory_stream_pair();
//   client.send_all(as_bytes("ping"));
//   std::array<std::byte, 16> buffer;
//   std::size_t n = server.receive_some(buffer);       // "ping"
//
//   // Trickle client -> server one byte per second (use a MockClock with autojump):
//   auto& send = client.send_stream_as<trellis::fakes::MemorySendStream>();
//   auto& receive = server.receive_stream_as<trellis::fakes::MemoryReceiveStream>();
//   send.send_all_hook = [&] {
//     while (trellis::fakes::memory_stream_pump(send, receive, 1)) trellis::sleep(1s);
//   };
//
// Hooks are public std::function members (as Trio's attributes), replaceable at any time,
// also from inside a hook (each call runs a copy). The "async" ones (send_all_hook,
// wait_send_all_might_not_block_hook, receive_some_hook) run in the calling task and may
// block; close hooks must not block. Destroying an open stream closes it like close_nowait()
// (close_hook included; an exception from it is swallowed there), so a close_hook's captures
// must outlive the stream. Streams are neither copyable nor movable (hooks refer to them):
// the factories hand them out in unique_ptrs.
//
// Not thread-safe: for the tasks of one run. Everything that blocks must run in a task.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <span>
#include <utility>
#include <vector>

#include "trellis/fakes/internal/lockstep_byte_queue.h"
#include "trellis/fakes/internal/unbounded_byte_queue.h"
#include "trellis/io/conflict_detector.h"
#include "trellis/io/stapled_stream.h"
#include "trellis/io/stream.h"

namespace trellis::fakes {

// A hook of the memory streams: runs in the task that called the stream operation.
using StreamHook = std::function<void()>;

class MemoryReceiveStream;

// A SendStream that appends whatever is sent to an internal unbounded buffer, which the test
// reads with get_data() / get_data_nowait() (or memory_stream_pump()).
class MemorySendStream final : public SendStream {
 public:
  explicit MemorySendStream(StreamHook send_all_hook = {},
                            StreamHook wait_send_all_might_not_block_hook = {},
                            StreamHook close_hook = {});
  MemorySendStream(const MemorySendStream&) = delete;
  MemorySendStream& operator=(const MemorySendStream&) = delete;
  ~MemorySendStream() override;

  // Two checkpoints (to catch concurrent misuse), appends data to the buffer, then runs
  // send_all_hook. Never blocks by itself (the hook may). Throws BusyResourceError ("another
  // task is using this stream") if another task is in send_all or
  // wait_send_all_might_not_block, ClosedResourceError if closed (also for empty data),
  // whatever the hook throws.
  void send_all(std::span<const std::byte> data) override;
  // Two checkpoints, throws ClosedResourceError if closed, then runs
  // wait_send_all_might_not_block_hook. Same BusyResourceError as send_all.
  void wait_send_all_might_not_block() override;
  // close_nowait(), then a checkpoint.
  void close() override;
  // Trio's synchronous close(): marks the buffer closed (idempotent), then runs close_hook —
  // every time, also when already closed. Not a checkpoint; throws what the hook throws.
  void close_nowait();

  // Takes up to max_bytes bytes from the buffer, blocking until there is at least one; an
  // empty result means the stream was closed and the buffer is drained. A checkpoint. Throws
  // std::invalid_argument if max_bytes == 0, BusyResourceError if another task is getting.
  std::vector<std::byte> get_data(std::size_t max_bytes = kAllAvailable);
  // Like get_data but never blocks and is not a checkpoint: throws WouldBlock if the buffer
  // is empty and the stream open.
  std::vector<std::byte> get_data_nowait(std::size_t max_bytes = kAllAvailable);

  StreamHook send_all_hook;
  StreamHook wait_send_all_might_not_block_hook;
  StreamHook close_hook;

 private:
  friend std::pair<std::unique_ptr<MemorySendStream>, std::unique_ptr<MemoryReceiveStream>>
  memory_stream_one_way_pair();
  friend bool memory_stream_pump(MemorySendStream&, MemoryReceiveStream&, std::size_t);

  ConflictDetector conflict_{"another task is using this stream"};
  // Invariant: never null. Shared with the pump hooks of memory_stream_one_way_pair, which
  // therefore never dangle, whichever stream is destroyed first. Its closed() is this
  // stream's closed state.
  std::shared_ptr<internal::UnboundedByteQueue> outgoing_;
};

// A ReceiveStream whose bytes come from put_data() (and end of file from put_eof()).
class MemoryReceiveStream final : public ReceiveStream {
 public:
  explicit MemoryReceiveStream(StreamHook receive_some_hook = {}, StreamHook close_hook = {});
  MemoryReceiveStream(const MemoryReceiveStream&) = delete;
  MemoryReceiveStream& operator=(const MemoryReceiveStream&) = delete;
  ~MemoryReceiveStream() override;

  // Two checkpoints, throws ClosedResourceError if closed, runs receive_some_hook, then
  // takes up to buffer.size() bytes, blocking until there is at least one or end of file (0).
  // Throws std::invalid_argument if buffer is empty, BusyResourceError ("another task is
  // using this stream") if another task is receiving, ClosedResourceError if the stream is
  // closed while waiting.
  std::size_t receive_some(std::span<std::byte> buffer) override;
  // close_nowait(), then a checkpoint.
  void close() override;
  // Trio's synchronous close(): discards the buffered bytes, marks the stream closed
  // (idempotent; a blocked receive_some wakes with ClosedResourceError), then runs
  // close_hook — every time. Not a checkpoint; throws what the hook throws.
  void close_nowait();

  // Appends data to the buffer, waking a blocked receive_some. Throws ClosedResourceError
  // after put_eof() or close. Not a checkpoint.
  void put_data(std::span<const std::byte> data);
  // Marks end of file after the buffered bytes (idempotent; never throws). Not a
  // checkpoint.
  void put_eof() noexcept;

  StreamHook receive_some_hook;
  StreamHook close_hook;

 private:
  friend std::pair<std::unique_ptr<MemorySendStream>, std::unique_ptr<MemoryReceiveStream>>
  memory_stream_one_way_pair();
  friend bool memory_stream_pump(MemorySendStream&, MemoryReceiveStream&, std::size_t);

  ConflictDetector conflict_{"another task is using this stream"};
  // Invariant: never null; shared with the pump hooks of memory_stream_one_way_pair. Its
  // closed() means end of file was put (or this stream was closed).
  std::shared_ptr<internal::UnboundedByteQueue> incoming_;
  // Invariant: once true, stays true; then incoming_ is closed and empty.
  bool closed_ = false;
};

// Moves up to max_bytes bytes from send's buffer into receive's; if send is closed and its
// buffer drained, puts end of file instead. Returns false if there was nothing to move (and
// send is open). Throws BrokenResourceError("MemoryReceiveStream was closed") if receive is
// closed (the bytes taken from send are lost), std::invalid_argument if max_bytes == 0,
// BusyResourceError if a task is in send.get_data(). Never blocks; not a checkpoint.
bool memory_stream_pump(MemorySendStream& send, MemoryReceiveStream& receive,
                        std::size_t max_bytes = kAllAvailable);

// A connected one-way pipe with unbounded buffering: send's send_all_hook and close_hook run
// memory_stream_pump(send, receive), so data (and end of file on close) flows on its own.
// Clear send_all_hook to stall delivery; replace it to trickle. Not a checkpoint.
std::pair<std::unique_ptr<MemorySendStream>, std::unique_ptr<MemoryReceiveStream>>
memory_stream_one_way_pair();

// Two memory_stream_one_way_pair()s stapled crosswise: what one side sends the other
// receives. send_eof() closes that direction's MemorySendStream (the peer reads end of file).
// The StapledStreams own MemorySendStream / MemoryReceiveStream (see send_stream_as()). Not a
// checkpoint.
std::pair<StapledStream, StapledStream> memory_stream_pair();

// The two ends of a lockstep pipe (lockstep_stream_one_way_pair). Contracts as in
// io/stream.h, with zero buffering: send_all returns once the receiver took every byte;
// wait_send_all_might_not_block returns once a task waits in receive_some (or the receiver
// is closed). Closing the receiver makes send_all throw BrokenResourceError; closing the
// sender makes receive_some return 0 (end of file) and later sends throw
// ClosedResourceError. BusyResourceError messages: "another task is already sending" /
// "... receiving". A send_all after a cancelled one throws BrokenResourceError. Destroying an
// end closes it.
class LockstepSendStream final : public SendStream {
 public:
  explicit LockstepSendStream(std::shared_ptr<internal::LockstepByteQueue> queue);
  LockstepSendStream(const LockstepSendStream&) = delete;
  LockstepSendStream& operator=(const LockstepSendStream&) = delete;
  ~LockstepSendStream() override;

  void send_all(std::span<const std::byte> data) override;  // blocks; a checkpoint
  void wait_send_all_might_not_block() override;            // blocks; a checkpoint
  void close() override;                                    // close_nowait(), then a checkpoint
  // Closes the sending end (idempotent), waking every waiter. Never throws; not a
  // checkpoint.
  void close_nowait() noexcept;

 private:
  // Invariant: never null; shared with the receiving end.
  std::shared_ptr<internal::LockstepByteQueue> queue_;
};

class LockstepReceiveStream final : public ReceiveStream {
 public:
  explicit LockstepReceiveStream(std::shared_ptr<internal::LockstepByteQueue> queue);
  LockstepReceiveStream(const LockstepReceiveStream&) = delete;
  LockstepReceiveStream& operator=(const LockstepReceiveStream&) = delete;
  ~LockstepReceiveStream() override;

  std::size_t receive_some(std::span<std::byte> buffer) override;  // blocks; a checkpoint
  void close() override;  // close_nowait(), then a checkpoint
  // Closes the receiving end (idempotent), waking every waiter. Never throws; not a
  // checkpoint.
  void close_nowait() noexcept;

 private:
  // Invariant: never null; shared with the sending end.
  std::shared_ptr<internal::LockstepByteQueue> queue_;
};

// A connected one-way pipe with no buffering at all. Not a checkpoint.
std::pair<std::unique_ptr<LockstepSendStream>, std::unique_ptr<LockstepReceiveStream>>
lockstep_stream_one_way_pair();

// Two lockstep pipes stapled crosswise. send_eof() closes that direction's sending end.
// Not a checkpoint.
std::pair<StapledStream, StapledStream> lockstep_stream_pair();

}  // namespace trellis::fakes
