#include "trellis/sim/internal/sim_pipes.h"

#include <algorithm>
#include <cerrno>
#include <vector>

#include "trellis/base/assert.h"
#include "trellis/core/errors.h"
#include "trellis/core/os_error.h"
#include "trellis/core/run.h"

namespace trellis::sim::internal {

SimPipes::SimPipes(SimEventLoop& loop, HandleTable& handles, const WorldView& world)
    : loop_(loop), handles_(handles), world_(world) {}

std::pair<IoHandle, IoHandle> SimPipes::make(HostState& host) {
  return make(host, host);
}

std::pair<IoHandle, IoHandle> SimPipes::make(HostState& read_host, HostState& write_host) {
  TRELLIS_ASSERT(read_host.alive);
  TRELLIS_ASSERT(write_host.alive);
  auto pipe = std::make_shared<Pipe>();
  const std::int64_t read_id = handles_.allocate(HandleKind::kPipe);
  const std::int64_t write_id = handles_.allocate(HandleKind::kPipe);
  ends_.emplace(read_id, End{pipe, false, &read_host});
  ends_.emplace(write_id, End{pipe, true, &write_host});
  TRELLIS_ASSERT(pipe.use_count() == 3);
  return {IoHandle{read_id}, IoHandle{write_id}};
}

SimPipes::End* SimPipes::find(std::int64_t id) {
  auto it = ends_.find(id);
  return it == ends_.end() ? nullptr : &it->second;
}

SimPipes::End* SimPipes::lookup(IoHandle handle, int* error, const char* operation) {
  HostState& host = world_.caller(operation);
  if (world_.caller_down(host)) {
    *error = ENETDOWN;
    return nullptr;
  }
  End* end = find(handle.value);
  if (end == nullptr || end->host != &host) {
    *error = EBADF;
    return nullptr;
  }
  TRELLIS_ASSERT(handles_.kind(handle.value) == HandleKind::kPipe);
  *error = 0;
  return end;
}

void SimPipes::wait(IoHandle handle, bool for_write) {
  const char* operation = for_write ? "wait_writable" : "wait_readable";
  int error = 0;
  End* end = lookup(handle, &error, operation);
  if (end == nullptr) throw OSError(error, operation);
  const std::shared_ptr<Pipe> pipe = end->pipe;
  // Level-triggered: return at once if the call would not block now.
  const bool ready = for_write ? (!pipe->read_open || pipe->bytes.size() < kCapacity)
                               : (!pipe->write_open || !pipe->bytes.empty());
  if (ready && end->write_end == for_write) {
    checkpoint_if_cancelled();
    return;
  }
  loop_.enter(for_write ? pipe->writer : pipe->reader, "pipe", for_write);
  // The pipe outlives the wait (this frame holds it), so its slot is found again directly.
  loop_.park([&]() -> lowlevel::Task** { return for_write ? &pipe->writer : &pipe->reader; },
             for_write ? "sim pipe writable" : "sim pipe readable");
}

void SimPipes::notify_closing(IoHandle handle) {
  End* end = find(handle.value);
  if (end == nullptr) return;
  Pipe& pipe = *end->pipe;
  lowlevel::Task*& slot = end->write_end ? pipe.writer : pipe.reader;
  if (slot != nullptr) {
    loop_.wake(slot, std::make_exception_ptr(ClosedResourceError(
                         "another task closed this pipe while it was waited on")));
  }
}

int SimPipes::close(IoHandle handle) {
  int error = 0;
  End* end = lookup(handle, &error, "close");
  if (end == nullptr) return error;
  notify_closing(handle);
  close_end(handle.value, *end, nullptr);
  return 0;
}

void SimPipes::close_end(std::int64_t id, End& end, std::exception_ptr waiter_error) {
  const std::shared_ptr<Pipe> pipe = end.pipe;
  if (end.write_end) {
    TRELLIS_ASSERT(pipe->write_open);
    pipe->write_open = false;
    loop_.wake(pipe->reader, waiter_error);  // reads end of file now
  } else {
    TRELLIS_ASSERT(pipe->read_open);
    pipe->read_open = false;
    pipe->bytes.clear();
    loop_.wake(pipe->writer, waiter_error);  // writes fail with EPIPE now
  }
  handles_.release(id);
  ends_.erase(id);
}

IoResult<std::size_t> SimPipes::read(IoHandle handle, void* buffer, std::size_t size) {
  int error = 0;
  End* end = lookup(handle, &error, "read");
  if (end == nullptr) return {0, error};
  if (end->write_end) return {0, EBADF};
  Pipe& pipe = *end->pipe;
  if (pipe.bytes.empty()) return {0, pipe.write_open ? EAGAIN : 0};
  const std::size_t n = std::min(size, pipe.bytes.size());
  std::copy_n(pipe.bytes.begin(), n, static_cast<std::byte*>(buffer));
  pipe.bytes.erase(pipe.bytes.begin(), pipe.bytes.begin() + static_cast<std::ptrdiff_t>(n));
  loop_.wake(pipe.writer);
  return {n, 0};
}

IoResult<std::size_t> SimPipes::write(IoHandle handle, const void* data, std::size_t size) {
  int error = 0;
  End* end = lookup(handle, &error, "write");
  if (end == nullptr) return {0, error};
  if (!end->write_end) return {0, EBADF};
  Pipe& pipe = *end->pipe;
  if (!pipe.read_open) return {0, EPIPE};
  TRELLIS_ASSERT(pipe.bytes.size() <= kCapacity);
  const std::size_t space = kCapacity - pipe.bytes.size();
  if (space == 0) return {0, EAGAIN};
  const std::size_t n = std::min(size, space);
  const auto* bytes = static_cast<const std::byte*>(data);
  pipe.bytes.insert(pipe.bytes.end(), bytes, bytes + n);
  loop_.wake(pipe.reader);
  return {n, 0};
}

void SimPipes::host_crashed(const HostState& host) {
  std::vector<std::int64_t> doomed;
  for (const auto& [id, end] : ends_) {
    if (end.host == &host) doomed.push_back(id);
  }
  for (std::int64_t id : doomed) {
    End& end = ends_.at(id);
    Pipe& pipe = *end.pipe;
    // The host's tasks were cancelled first; a waiter left here is parked in a shielded
    // scope: it hears the crash.
    lowlevel::Task*& own = end.write_end ? pipe.writer : pipe.reader;
    if (own != nullptr) loop_.wake(own, std::make_exception_ptr(OSError(ENETDOWN, "host crashed")));
    close_end(id, end, std::make_exception_ptr(OSError(ENETDOWN, "host crashed")));
  }
  TRELLIS_ASSERT_SLOW(std::none_of(ends_.begin(), ends_.end(),
                                   [&](const auto& entry) { return entry.second.host == &host; }));
}

}  // namespace trellis::sim::internal
