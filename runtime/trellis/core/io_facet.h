// trellis/core/io_facet.h — the Backend facet for I/O handles: readiness waits and closing.
//
// A handle (IoHandle) is what the other facets hand out: a socket, a pipe end. The real
// backend's handles are file descriptors; the simulator's are its own numbers. Code above the
// waist never looks inside one. The protocol of every nonblocking operation on a handle is
// Trio's: try the call; on EAGAIN park in wait_readable / wait_writable; try again.
//
//   IoFacet& io = lowlevel::current_io();
//   for (;;) {
//     IoResult<std::size_t> got = network.recv(handle, buffer);
//     if (got.error != EAGAIN) break;
//     io.wait_readable(handle);   // a checkpoint-free park; cancellable
//   }
//
// Readiness is level-triggered in meaning: wait_readable returns when a read would not block
// (data, end of file, or an error), whatever happened before the call.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace trellis {

// An opaque I/O handle. Invariant: value >= 0 while open; -1 is "no handle".
struct IoHandle {
  std::int64_t value = -1;
  bool valid() const noexcept { return value >= 0; }
  friend bool operator==(IoHandle, IoHandle) = default;
};

// The result of a facet call: a value, or an errno (then value is unspecified). Facets never
// throw for what the kernel reports through errno, so EAGAIN costs no exception.
template <class T>
struct IoResult {
  T value{};
  int error = 0;
  bool ok() const noexcept { return error == 0; }
};

class IoFacet {
 public:
  virtual ~IoFacet() = default;

  // Park the calling task until handle is readable / writable. Not a checkpoint by itself
  // (callers checkpoint as Trio's socket methods do); a cancel point: a cancelled wait
  // throws Cancelled and leaves nothing registered. Throws BusyResourceError if another
  // task already waits to read (to write) the same handle, ClosedResourceError if the
  // handle is closed (by notify_closing) while waiting. Run-loop thread only.
  virtual void wait_readable(IoHandle handle) = 0;
  virtual void wait_writable(IoHandle handle) = 0;

  // Wake every task waiting on handle with ClosedResourceError and forget its registration;
  // call before closing a handle another task may be waiting on. Never blocks.
  virtual void notify_closing(IoHandle handle) = 0;

  // notify_closing + release the handle. Returns 0 or an errno (the handle is released
  // either way, as close(2) on Linux). Never blocks.
  virtual int close(IoHandle handle) = 0;

  // Nonblocking byte transfer on a stream handle (a pipe end or a connected socket).
  // read: 0 bytes = end of file. write: never raises SIGPIPE; EPIPE instead.
  virtual IoResult<std::size_t> read(IoHandle handle, void* buffer, std::size_t size) = 0;
  virtual IoResult<std::size_t> write(IoHandle handle, const void* data, std::size_t size) = 0;

  // A reader's hint: its last read of `handle`, short of the size asked, took every byte there
  // was (a byte stream's read does, unless it stopped at a TCP urgent mark or a unix socket's
  // credentials/descriptors boundary; a packet-mode pipe's does not: the caller rules these out).
  // Bytes only: an end of file or error behind them is the backend's to account for. The next
  // wait_readable may then skip the readiness re-check a wait after a successful read needs
  // (epoll_ctl in the epoll backend): read-then-wait costs no more than read-EAGAIN-wait.
  virtual void note_drained(IoHandle handle) noexcept { (void)handle; }
};

}  // namespace trellis
