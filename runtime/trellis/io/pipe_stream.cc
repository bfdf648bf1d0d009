// trellis/io/pipe_stream.cc — see pipe_stream.h.

#include "trellis/io/pipe_stream.h"

#include <errno.h>

#include <stdexcept>
#include <string>

#include "trellis/core/errors.h"
#include "trellis/core/lowlevel.h"
#include "trellis/core/os_error.h"
#include "trellis/core/process_facet.h"
#include "trellis/core/run.h"
#include "trellis/io/nonblocking_call.h"

namespace trellis {
namespace {

[[noreturn]] void throw_pipe_error(int error, const char* operation) {
  if (error == EBADF) {
    throw ClosedResourceError(std::string("pipe was already closed (") + operation + ")");
  }
  throw BrokenResourceError(std::string("pipe broken: ") + operation + ": " +
                            OSError(error, operation).code().message() + " (" + errno_name(error) +
                            ")");
}

}  // namespace

PipeEnd& PipeEnd::operator=(PipeEnd&& other) noexcept {
  if (this != &other) {
    close_handle();
    io_ = other.io_;
    handle_ = std::exchange(other.handle_, IoHandle{});
  }
  return *this;
}

PipeEnd::~PipeEnd() {
  close_handle();
}

void PipeEnd::close_handle() noexcept {
  if (!handle_.valid()) return;
  const IoHandle handle = std::exchange(handle_, IoHandle{});
  io_->close(handle);
}

IoResult<std::size_t> PipeEnd::transfer(bool for_write, std::span<const std::byte> out,
                                        std::span<std::byte> in) {
  return nonblocking_call(*io_, handle_, for_write, [&] {
    return for_write ? io_->write(handle_, out.data(), out.size())
                     : io_->read(handle_, in.data(), in.size());
  });
}

void PipeSendStream::send_all(std::span<const std::byte> data) {
  ConflictDetector::Guard guard(conflict_);
  if (!is_open()) throw ClosedResourceError("pipe was already closed");
  if (data.empty()) {
    checkpoint();
    return;
  }
  std::size_t total = 0;
  while (total < data.size()) {
    if (!is_open()) throw ClosedResourceError("pipe was closed during send_all");
    IoResult<std::size_t> sent = transfer(true, data.subspan(total), {});
    if (!sent.ok()) throw_pipe_error(sent.error, "write");
    total += sent.value;
  }
}

void PipeSendStream::wait_send_all_might_not_block() {
  ConflictDetector::Guard guard(conflict_);
  if (!is_open()) throw ClosedResourceError("pipe was already closed");
  checkpoint();
  if (!is_open()) throw ClosedResourceError("pipe was already closed");
  io_->wait_writable(handle_);
}

void PipeSendStream::close() {
  close_handle();
  checkpoint();
}

std::size_t PipeReceiveStream::receive_some(std::span<std::byte> buffer) {
  if (buffer.empty()) throw std::invalid_argument("receive_some: the buffer must not be empty");
  ConflictDetector::Guard guard(conflict_);
  if (!is_open()) throw ClosedResourceError("pipe was already closed");
  IoResult<std::size_t> got = transfer(false, {}, buffer);
  if (!got.ok()) throw_pipe_error(got.error, "read");
  return got.value;
}

void PipeReceiveStream::close() {
  close_handle();
  checkpoint();
}

std::pair<PipeSendStream, PipeReceiveStream> open_pipe() {
  Backend& backend = lowlevel::current_backend();
  ProcessFacet* processes = backend.processes();
  IoFacet* io = backend.io();
  if (processes == nullptr || io == nullptr) {
    throw UsageError("open_pipe: the " + std::string(backend.name()) + " backend has no pipes");
  }
  IoResult<std::pair<IoHandle, IoHandle>> made = processes->pipe();
  if (!made.ok()) throw OSError(made.error, "pipe");
  return {PipeSendStream(*io, made.value.second), PipeReceiveStream(*io, made.value.first)};
}

}  // namespace trellis
