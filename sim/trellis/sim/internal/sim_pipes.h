// trellis/sim/internal/sim_pipes.h — SimPipes: the simulated hosts' pipes (the fake
// programs' stdin/stdout/stderr, ProcessFacet::pipe): 64 KiB of buffer each; bytes move at
// once (no virtual latency).
//
// Errors as the kernel's: EPIPE writing with no reader, end of file reading with no writer,
// EBADF reading a write end (or writing a read end). A pipe belongs to the host that made
// it: the prologue of world_view.h refuses other hosts' (EBADF) and a crashed host's callers
// (ENETDOWN); a crash releases the host's pipe ends, as it does its sockets.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <utility>

#include "trellis/core/io_facet.h"
#include "trellis/core/task.h"
#include "trellis/sim/internal/handle_table.h"
#include "trellis/sim/internal/host_state.h"
#include "trellis/sim/internal/sim_event_loop.h"
#include "trellis/sim/internal/world_view.h"

namespace trellis::sim::internal {

class SimPipes {
 public:
  SimPipes(SimEventLoop& loop, HandleTable& handles, const WorldView& world);

  // {read end, write end} on host.
  std::pair<IoHandle, IoHandle> make(HostState& host);
  // A pipe whose read end belongs to read_host and write end to write_host (a program
  // started on another host: ProcessSpec::host).
  std::pair<IoHandle, IoHandle> make(HostState& read_host, HostState& write_host);

  // IoFacet calls on a pipe end (HandleTable says the handle is one).
  void wait(IoHandle handle, bool for_write);
  // Wakes the end's waiter with ClosedResourceError. Checks nothing more than that the end
  // exists: it cannot fail, and runs in clean-up paths.
  void notify_closing(IoHandle handle);
  int close(IoHandle handle);
  IoResult<std::size_t> read(IoHandle handle, void* buffer, std::size_t size);
  IoResult<std::size_t> write(IoHandle handle, const void* data, std::size_t size);

  // A crash: the host's pipe ends are released; a waiter left (parked in a shielded scope)
  // hears OSError(ENETDOWN).
  void host_crashed(const HostState& host);
  std::size_t open_ends() const noexcept { return ends_.size(); }

 private:
  static constexpr std::size_t kCapacity = 65536;
  struct Pipe {
    // Invariant: bytes.size() <= kCapacity; empty once the read end is closed.
    std::deque<std::byte> bytes;
    bool read_open = true;
    bool write_open = true;
    lowlevel::Task* reader = nullptr;
    lowlevel::Task* writer = nullptr;
  };
  struct End {
    std::shared_ptr<Pipe> pipe;
    bool write_end = false;
    HostState* host = nullptr;
  };
  End* find(std::int64_t id);
  // The prologue: the caller's end for handle, or nullptr with *error ENETDOWN or EBADF.
  End* lookup(IoHandle handle, int* error, const char* operation);
  // The end's side of its pipe is closed; the other side hears it.
  void close_end(std::int64_t id, End& end, std::exception_ptr waiter_error);

  SimEventLoop& loop_;
  HandleTable& handles_;
  const WorldView& world_;
  std::map<std::int64_t, End> ends_;
};

}  // namespace trellis::sim::internal
