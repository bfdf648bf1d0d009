// trellis/io/nonblocking_call.h — Trio's protocol for one nonblocking operation on an I/O
// handle, for streams built on the IoFacet (sockets, pipes, your own).
//
//   IoResult<std::size_t> got = nonblocking_call(io, handle, /*for_write=*/false,
//                                                [&] { return io.read(handle, buf, n); });
//
// checkpoint_if_cancelled(), then attempt(); while it reports EAGAIN, park in wait_readable
// (wait_writable if for_write) and retry. If the first attempt completed, a cancel-shielded
// schedule point follows, so the whole call is always a checkpoint. Returns the first result
// that is not EAGAIN (errors are the caller's to translate). Throws Cancelled,
// ClosedResourceError (closed while waiting), BusyResourceError (another task waits in the
// same direction).
#pragma once

#include <cerrno>

#include "trellis/core/io_facet.h"
#include "trellis/core/lowlevel.h"
#include "trellis/core/lowlevel_inline.h"
#include "trellis/core/run.h"

namespace trellis {

template <class Attempt>
auto nonblocking_call(IoFacet& io, IoHandle handle, bool for_write, Attempt attempt)
    -> decltype(attempt()) {
  lowlevel::fast::checkpoint_if_cancelled();
  auto result = attempt();
  if (result.error != EAGAIN) {
    lowlevel::fast::cancel_shielded_checkpoint();
    return result;
  }
  for (;;) {
    if (for_write) {
      io.wait_writable(handle);
    } else {
      io.wait_readable(handle);
    }
    result = attempt();
    if (result.error != EAGAIN) return result;
  }
}

}  // namespace trellis
