#include "trellis/io/stapled_stream.h"

#include <exception>
#include <stdexcept>
#include <utility>

#include "trellis/core/errors.h"
#include "trellis/core/run.h"

namespace trellis {

StapledStream::StapledStream(std::unique_ptr<SendStream> send_stream,
                             std::unique_ptr<ReceiveStream> receive_stream)
    : send_(std::move(send_stream)), receive_(std::move(receive_stream)) {
  if (send_ == nullptr || receive_ == nullptr) {
    throw std::invalid_argument("StapledStream needs a send stream and a receive stream");
  }
}

SendStream& StapledStream::send_stream() const {
  if (send_ == nullptr) throw UsageError("use of a moved-from StapledStream");
  return *send_;
}

ReceiveStream& StapledStream::receive_stream() const {
  if (receive_ == nullptr) throw UsageError("use of a moved-from StapledStream");
  return *receive_;
}

void StapledStream::send_all(std::span<const std::byte> data) {
  send_stream().send_all(data);
}

void StapledStream::wait_send_all_might_not_block() {
  send_stream().wait_send_all_might_not_block();
}

std::size_t StapledStream::receive_some(std::span<std::byte> buffer) {
  return receive_stream().receive_some(buffer);
}

void StapledStream::send_eof() {
  SendStream& stream = send_stream();
  if (auto* half_closeable = dynamic_cast<HalfCloseableStream*>(&stream)) {
    half_closeable->send_eof();
  } else {
    stream.close();
  }
}

void StapledStream::close() {
  if (send_ == nullptr) {
    checkpoint();  // moved from: nothing to close, but close() is always a checkpoint
    return;
  }
  // Cancelled is not a std::exception: catch everything, close the other half, rethrow.
  std::exception_ptr send_error;
  try {
    send_->close();
  } catch (...) {
    send_error = std::current_exception();
  }
  receive_->close();  // if this throws too, its exception wins (Trio's try/finally)
  if (send_error != nullptr) std::rethrow_exception(send_error);
}

}  // namespace trellis
