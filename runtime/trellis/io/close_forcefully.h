// trellis/io/close_forcefully.h — close_forcefully: close a resource at once, skipping any
// graceful goodbye (Trio's trio.aclose_forcefully).
//
// AsyncResource::close() promises to release the resource even when cancelled, possibly
// without the polite part (a TLS close_notify, flushing a buffer to a slow peer). This helper
// exploits that: it calls close() inside an already-cancelled scope, so it never blocks.
// Handy on error paths and in tests.
//
//   catch (const trellis::BrokenResourceError&) {
//     trellis::close_forcefully(stream);   // no point in a graceful close now
//     throw;
//   }
#pragma once

#include "trellis/core/cancel_scope.h"
#include "trellis/io/stream.h"

namespace trellis {

// Closes `resource` inside a cancelled CancelScope. A checkpoint: the scope catches the
// Cancelled of close()'s own checkpoint, but if an enclosing scope is cancelled as well, that
// scope's Cancelled propagates (as in Trio). Does not block if the resource honours close()'s
// contract. Errors of close() other than Cancelled propagate.
inline void close_forcefully(AsyncResource& resource) {
  CancelScope scope;
  scope.cancel();
  scope.run([&] { resource.close(); });
}

}  // namespace trellis
