#include "trellis/fakes/memory_streams.h"

#include <algorithm>
#include <cstring>
#include <exception>

#include "trellis/base/assert.h"
#include "trellis/core/errors.h"
#include "trellis/core/run.h"

namespace trellis::fakes {

namespace {

// Runs a copy of `hook` (if set), so that the hook may replace itself.
void run_hook(const StreamHook& hook) {
  if (!hook) return;
  StreamHook copy = hook;
  copy();
}

// memory_stream_pump on the queues themselves (what the one-way pair's hooks capture): the
// same as taking send.get_data_nowait() and giving it to receive.put_data() / put_eof().
bool pump(internal::UnboundedByteQueue& from, internal::UnboundedByteQueue& to,
          std::size_t max_bytes) {
  std::vector<std::byte> data;
  try {
    data = from.get_nowait(max_bytes);
  } catch (const WouldBlock&) {
    return false;
  }
  try {
    if (data.empty()) {
      to.close();  // end of file; idempotent, never throws
    } else {
      to.put(data);
    }
  } catch (const ClosedResourceError&) {
    throw BrokenResourceError("MemoryReceiveStream was closed");
  }
  return true;
}

template <class Send, class Receive>
std::pair<StapledStream, StapledStream> make_stapled_pair(
    std::pair<std::unique_ptr<Send>, std::unique_ptr<Receive>> pipe1,
    std::pair<std::unique_ptr<Send>, std::unique_ptr<Receive>> pipe2) {
  StapledStream stream1(std::move(pipe1.first), std::move(pipe2.second));
  StapledStream stream2(std::move(pipe2.first), std::move(pipe1.second));
  return {std::move(stream1), std::move(stream2)};
}

}  // namespace

// ---- MemorySendStream ---------------------------------------------------------------------

MemorySendStream::MemorySendStream(StreamHook send_all_hook,
                                   StreamHook wait_send_all_might_not_block_hook,
                                   StreamHook close_hook)
    : send_all_hook(std::move(send_all_hook)),
      wait_send_all_might_not_block_hook(std::move(wait_send_all_might_not_block_hook)),
      close_hook(std::move(close_hook)),
      outgoing_(std::make_shared<internal::UnboundedByteQueue>()) {}

MemorySendStream::~MemorySendStream() {
  if (outgoing_->closed()) return;
  try {
    close_nowait();
  } catch (...) {
    // A destructor cannot report it; the stream is closed either way.
  }
}

void MemorySendStream::send_all(std::span<const std::byte> data) {
  ConflictDetector::Guard guard(conflict_);
  // Two checkpoints give a concurrent caller more chances to run into the detector.
  checkpoint();
  checkpoint();
  outgoing_->put(data);
  run_hook(send_all_hook);
}

void MemorySendStream::wait_send_all_might_not_block() {
  ConflictDetector::Guard guard(conflict_);
  checkpoint();
  checkpoint();
  outgoing_->put({});  // throws ClosedResourceError if closed
  run_hook(wait_send_all_might_not_block_hook);
}

void MemorySendStream::close_nowait() {
  // Pending send_all / wait_send_all_might_not_block calls can only be blocked in their
  // hooks; as in Trio, closing does not interrupt them.
  outgoing_->close();
  run_hook(close_hook);
}

void MemorySendStream::close() {
  close_nowait();
  checkpoint();
}

std::vector<std::byte> MemorySendStream::get_data(std::size_t max_bytes) {
  return outgoing_->get(max_bytes);
}

std::vector<std::byte> MemorySendStream::get_data_nowait(std::size_t max_bytes) {
  return outgoing_->get_nowait(max_bytes);
}

// ---- MemoryReceiveStream ------------------------------------------------------------------

MemoryReceiveStream::MemoryReceiveStream(StreamHook receive_some_hook, StreamHook close_hook)
    : receive_some_hook(std::move(receive_some_hook)),
      close_hook(std::move(close_hook)),
      incoming_(std::make_shared<internal::UnboundedByteQueue>()) {}

MemoryReceiveStream::~MemoryReceiveStream() {
  if (closed_) return;
  try {
    close_nowait();
  } catch (...) {
    // A destructor cannot report it; the stream is closed either way.
  }
}

std::size_t MemoryReceiveStream::receive_some(std::span<std::byte> buffer) {
  ConflictDetector::Guard guard(conflict_);
  checkpoint();
  checkpoint();
  if (closed_) throw ClosedResourceError("MemoryReceiveStream was closed");
  run_hook(receive_some_hook);
  // incoming_->closed() means end of file; closed_ means we ourselves were closed. close()
  // also closes incoming_ to wake us, so check closed_ again after waking.
  std::vector<std::byte> data = incoming_->get(buffer.size());
  if (closed_) throw ClosedResourceError("MemoryReceiveStream was closed");
  TRELLIS_ASSERT(data.size() <= buffer.size());
  if (!data.empty()) std::memcpy(buffer.data(), data.data(), data.size());
  return data.size();
}

void MemoryReceiveStream::close_nowait() {
  closed_ = true;
  incoming_->close_and_wipe();
  run_hook(close_hook);
}

void MemoryReceiveStream::close() {
  close_nowait();
  checkpoint();
}

void MemoryReceiveStream::put_data(std::span<const std::byte> data) {
  incoming_->put(data);
}

void MemoryReceiveStream::put_eof() noexcept {
  incoming_->close();
}

// ---- memory pairs -------------------------------------------------------------------------

bool memory_stream_pump(MemorySendStream& send, MemoryReceiveStream& receive,
                        std::size_t max_bytes) {
  return pump(*send.outgoing_, *receive.incoming_, max_bytes);
}

std::pair<std::unique_ptr<MemorySendStream>, std::unique_ptr<MemoryReceiveStream>>
memory_stream_one_way_pair() {
  auto send = std::make_unique<MemorySendStream>();
  auto receive = std::make_unique<MemoryReceiveStream>();
  // The hooks hold the queues, not the streams: pumping after either stream is gone is safe
  // (a destroyed receive stream is closed, so the pump reports BrokenResourceError).
  auto pump_hook = [from = send->outgoing_, to = receive->incoming_] {
    pump(*from, *to, kAllAvailable);
  };
  send->send_all_hook = pump_hook;
  send->close_hook = pump_hook;
  return {std::move(send), std::move(receive)};
}

std::pair<StapledStream, StapledStream> memory_stream_pair() {
  return make_stapled_pair(memory_stream_one_way_pair(), memory_stream_one_way_pair());
}

// ---- lockstep streams ---------------------------------------------------------------------

LockstepSendStream::LockstepSendStream(std::shared_ptr<internal::LockstepByteQueue> queue)
    : queue_(std::move(queue)) {
  TRELLIS_ASSERT(queue_ != nullptr);
}

LockstepSendStream::~LockstepSendStream() {
  close_nowait();
}

void LockstepSendStream::send_all(std::span<const std::byte> data) {
  queue_->send_all(data);
}

void LockstepSendStream::wait_send_all_might_not_block() {
  queue_->wait_send_all_might_not_block();
}

void LockstepSendStream::close_nowait() noexcept {
  queue_->close_sender();
}

void LockstepSendStream::close() {
  close_nowait();
  checkpoint();
}

LockstepReceiveStream::LockstepReceiveStream(std::shared_ptr<internal::LockstepByteQueue> queue)
    : queue_(std::move(queue)) {
  TRELLIS_ASSERT(queue_ != nullptr);
}

LockstepReceiveStream::~LockstepReceiveStream() {
  close_nowait();
}

std::size_t LockstepReceiveStream::receive_some(std::span<std::byte> buffer) {
  return queue_->receive_some(buffer);
}

void LockstepReceiveStream::close_nowait() noexcept {
  queue_->close_receiver();
}

void LockstepReceiveStream::close() {
  close_nowait();
  checkpoint();
}

std::pair<std::unique_ptr<LockstepSendStream>, std::unique_ptr<LockstepReceiveStream>>
lockstep_stream_one_way_pair() {
  auto queue = std::make_shared<internal::LockstepByteQueue>();
  return {std::make_unique<LockstepSendStream>(queue),
          std::make_unique<LockstepReceiveStream>(queue)};
}

std::pair<StapledStream, StapledStream> lockstep_stream_pair() {
  return make_stapled_pair(lockstep_stream_one_way_pair(), lockstep_stream_one_way_pair());
}

}  // namespace trellis::fakes
