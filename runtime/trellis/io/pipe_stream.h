// trellis/io/pipe_stream.h — the two ends of a pipe as streams (Trio's FdStream, split by
// direction): a process's stdin is a PipeSendStream, its stdout and stderr
// PipeReceiveStreams.
//
//   auto [send, receive] = trellis::open_pipe();
//   send.send_all(bytes);       // blocks while the pipe is full
//   receive.receive_some(buf);  // 0 once every write end is closed
//
// Each owns its handle (closed by close() or the destructor) and works through the run's
// IoFacet, so it must be used and destroyed inside the run that made it. Errors: a closed
// stream -> ClosedResourceError; the reader gone (EPIPE) or another I/O error ->
// BrokenResourceError; two tasks sending (receiving) at once -> BusyResourceError.
#pragma once

#include <cstddef>
#include <span>
#include <utility>

#include "trellis/core/io_facet.h"
#include "trellis/io/conflict_detector.h"
#include "trellis/io/stream.h"

namespace trellis {

// An owned pipe handle of the run's IoFacet. Internal base of the two streams.
class PipeEnd {
 public:
  PipeEnd(IoFacet& io, IoHandle handle) noexcept : io_(&io), handle_(handle) {}
  PipeEnd(PipeEnd&& other) noexcept
      : io_(other.io_), handle_(std::exchange(other.handle_, IoHandle{})) {}
  PipeEnd& operator=(PipeEnd&& other) noexcept;
  ~PipeEnd();

  IoHandle handle() const noexcept { return handle_; }
  bool is_open() const noexcept { return handle_.valid(); }
  // Forgets the handle without closing it (its backend is gone: nothing can close it now).
  void abandon() noexcept { handle_ = IoHandle{}; }

 protected:
  // Wakes a task waiting on the handle (ClosedResourceError) and closes it. Idempotent.
  void close_handle() noexcept;
  // One read (write) through nonblocking_call (io/nonblocking_call.h).
  IoResult<std::size_t> transfer(bool for_write, std::span<const std::byte> out,
                                 std::span<std::byte> in);

  IoFacet* io_;
  IoHandle handle_;
};

class PipeSendStream final : public SendStream, public PipeEnd {
 public:
  using PipeEnd::PipeEnd;
  // A move hands the handle over (not a task's claim on it: move only an idle stream).
  PipeSendStream(PipeSendStream&& other) noexcept : PipeEnd(std::move(other)) {}
  PipeSendStream& operator=(PipeSendStream&& other) noexcept {
    PipeEnd::operator=(std::move(other));
    return *this;
  }

  void send_all(std::span<const std::byte> data) override;
  void wait_send_all_might_not_block() override;
  void close() override;

 private:
  ConflictDetector conflict_{"another task is using this pipe for send"};
};

class PipeReceiveStream final : public ReceiveStream, public PipeEnd {
 public:
  using PipeEnd::PipeEnd;
  // A move hands the handle over (not a task's claim on it: move only an idle stream).
  PipeReceiveStream(PipeReceiveStream&& other) noexcept : PipeEnd(std::move(other)) {}
  PipeReceiveStream& operator=(PipeReceiveStream&& other) noexcept {
    PipeEnd::operator=(std::move(other));
    return *this;
  }

  std::size_t receive_some(std::span<std::byte> buffer) override;
  void close() override;

 private:
  ConflictDetector conflict_{"another task is using this pipe for receive"};
};

// A new pipe of the current run's backend (its ProcessFacet): {write end, read end}.
// Throws UsageError outside a run or if the backend has no processes facet, OSError if the
// pipe cannot be made (EMFILE...).
std::pair<PipeSendStream, PipeReceiveStream> open_pipe();

}  // namespace trellis
