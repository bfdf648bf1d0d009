// trellis/io/stapled_stream.h — StapledStream: one bidirectional stream made of a SendStream
// and a ReceiveStream (Trio's trio.StapledStream).
//
// Sending goes to the send stream, receiving comes from the receive stream, closing closes
// both. The usual pairs are a process's stdin and stdout, or the two one-way memory streams
// that fakes::memory_stream_pair() staples crosswise.
//
//   auto [to_child, from_child] = spawn_with_pipes();        // SendStream, ReceiveStream
//   trellis::StapledStream child(std::move(to_child), std::move(from_child));
//   child.send_all(request);
//   child.send_eof();                  // closes the child's stdin: it sees end of file
//   std::size_t n = child.receive_some(buffer);
//
// A movable value: it owns both streams through unique_ptrs, so moving it never moves them
// (pointers to send_stream()/receive_stream() stay valid). A moved-from StapledStream may
// only be destroyed, assigned to, or closed (a no-op but for the checkpoint); anything else
// throws UsageError. Destroying an open StapledStream destroys (and so closes) both streams.
#pragma once

#include <cstddef>
#include <memory>
#include <span>

#include "trellis/io/stream.h"

namespace trellis {

class StapledStream final : public HalfCloseableStream {
 public:
  // Takes ownership of both. Throws std::invalid_argument if either is null. Not a
  // checkpoint.
  StapledStream(std::unique_ptr<SendStream> send_stream,
                std::unique_ptr<ReceiveStream> receive_stream);
  StapledStream(StapledStream&&) noexcept = default;
  StapledStream& operator=(StapledStream&&) noexcept = default;
  ~StapledStream() override = default;

  // send_stream().send_all(data): blocking, checkpoint and errors are the send stream's.
  void send_all(std::span<const std::byte> data) override;
  // send_stream().wait_send_all_might_not_block().
  void wait_send_all_might_not_block() override;
  // receive_stream().receive_some(buffer).
  std::size_t receive_some(std::span<std::byte> buffer) override;
  // Ends the sending direction: send_stream().send_eof() if the send stream is a
  // HalfCloseableStream, else send_stream().close(). A checkpoint (through either).
  void send_eof() override;
  // Closes the send stream, then the receive stream, which is closed even if closing the
  // send stream threw (an error or Cancelled). If both throw, the receive stream's exception
  // propagates (as Trio, where the first becomes its __context__); if only the send
  // stream's threw, that one propagates after the receive stream is closed. A checkpoint.
  void close() override;

  // The underlying streams (owned by this object). Throw UsageError if moved from. Not
  // checkpoints.
  SendStream& send_stream() const;
  ReceiveStream& receive_stream() const;
  // The underlying streams as their concrete type, e.g.
  // `left.send_stream_as<fakes::MemorySendStream>().send_all_hook = ...`. Throw
  // std::bad_cast if they are of another type, UsageError if moved from.
  template <class S>
  S& send_stream_as() const {
    return dynamic_cast<S&>(send_stream());
  }
  template <class S>
  S& receive_stream_as() const {
    return dynamic_cast<S&>(receive_stream());
  }

 private:
  // Invariant: both non-null, or both null once moved from (the only null state).
  std::unique_ptr<SendStream> send_;
  std::unique_ptr<ReceiveStream> receive_;
};

}  // namespace trellis
