// trellis/io/serve_listeners.h — serve_listeners: accept connections on listeners forever and
// run a handler task per connection (Trio's trio.serve_listeners).
//
//   std::vector<std::unique_ptr<trellis::SocketListener>> listeners =
//       trellis::open_tcp_listeners(8080);
//   trellis::serve_listeners<trellis::SocketListener>(
//       [](trellis::SocketStream& stream) { echo(stream); }, std::move(listeners));
//
// With Nursery::start, the task reports the listeners (pointers valid while it serves):
//
//   auto ls = nursery.start<std::vector<trellis::SocketListener*>>(
//       [&](trellis::TaskStatus<std::vector<trellis::SocketListener*>>& status) {
//         trellis::serve_listeners<trellis::SocketListener>(handler, std::move(listeners),
//                                                           {.task_status = &status});
//       });
#pragma once

#include <cerrno>
#include <chrono>
#include <exception>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "trellis/core/nursery.h"
#include "trellis/core/os_error.h"
#include "trellis/core/run.h"
#include "trellis/io/close_forcefully.h"

namespace trellis {

// How long an accept loop sleeps after EMFILE/ENFILE/ENOMEM/ENOBUFS before retrying (Trio's
// 100 ms): the process (or system) ran out of descriptors or memory; handlers finishing
// will free some.
inline constexpr Duration kAcceptRetryDelay = std::chrono::milliseconds(100);

template <class L>
struct ServeListenersOptions {
  // Where handler tasks run; nullptr: a nursery inside serve_listeners.
  Nursery* handler_nursery = nullptr;
  // Reported (started(listeners)) once every accept loop is running.
  TaskStatus<std::vector<L*>>* task_status = nullptr;
};

namespace internal {

// True for the accept errors that mean "out of resources for now" (Trio's
// ACCEPT_CAPACITY_ERRNOS).
inline bool accept_capacity_error(int error) {
  return error == EMFILE || error == ENFILE || error == ENOMEM || error == ENOBUFS;
}

template <class L>
void serve_listeners_body(
    const std::shared_ptr<std::function<void(typename L::StreamType&)>>& shared_handler,
    std::vector<std::unique_ptr<L>>& listeners, ServeListenersOptions<L>& options);

}  // namespace internal

// Runs one accept loop per listener; each accepted stream goes to a new task running
// handler(stream) in options.handler_nursery, and the stream is closed (forcefully) when the
// handler returns or throws. Accept errors EMFILE/ENFILE/ENOMEM/ENOBUFS make that loop sleep
// kAcceptRetryDelay and retry; any other error propagates (and stops the server). Never
// returns normally (unless `listeners` is empty): it ends by cancellation or an error; the
// listeners are closed (forcefully) then.
// A handler's exception propagates through its nursery, as in Trio. Blocks; a checkpoint.
template <class L>
void serve_listeners(std::function<void(typename L::StreamType&)> handler,
                     std::vector<std::unique_ptr<L>> listeners,
                     ServeListenersOptions<L> options = {}) {
  using S = typename L::StreamType;
  // Shared: handler tasks may run in an outer nursery that outlives this frame.
  auto shared_handler = std::make_shared<std::function<void(S&)>>(std::move(handler));
  // The listeners are closed on every way out (Trio's `async with listener`).
  // Each close releases its listener before its checkpoint; a Cancelled from an enclosing
  // cancelled scope (which close_forcefully's own scope cannot catch) must not skip the rest.
  // On the error path the original error wins (close errors are dropped).
  auto close_listeners = [&](bool rethrow) {
    std::exception_ptr first_error;
    for (std::unique_ptr<L>& listener : listeners) {
      try {
        close_forcefully(*listener);
      } catch (...) {
        if (first_error == nullptr) first_error = std::current_exception();
      }
    }
    if (rethrow && first_error != nullptr) std::rethrow_exception(first_error);
  };
  try {
    internal::serve_listeners_body<L>(shared_handler, listeners, options);
  } catch (...) {
    close_listeners(false);
    throw;
  }
  close_listeners(true);
}

namespace internal {

template <class L>
void serve_listeners_body(
    const std::shared_ptr<std::function<void(typename L::StreamType&)>>& shared_handler,
    std::vector<std::unique_ptr<L>>& listeners, ServeListenersOptions<L>& options) {
  using S = typename L::StreamType;
  open_nursery([&](Nursery& nursery) {
    Nursery& handlers = options.handler_nursery != nullptr ? *options.handler_nursery : nursery;
    std::vector<L*> reported;
    for (std::unique_ptr<L>& listener : listeners) {
      reported.push_back(listener.get());
      nursery.start_soon([&listener, &handlers, shared_handler] {
        for (;;) {
          std::unique_ptr<S> stream;
          try {
            stream = listener->accept();
          } catch (const OSError& error) {
            if (!internal::accept_capacity_error(error.errno_value())) throw;
            sleep(kAcceptRetryDelay);
            continue;
          }
          handlers.start_soon([shared_handler, owned = std::move(stream)]() mutable {
            try {
              (*shared_handler)(*owned);
            } catch (...) {
              close_forcefully(*owned);
              throw;
            }
            close_forcefully(*owned);
          });
        }
      });
    }
    if (options.task_status != nullptr) options.task_status->started(std::move(reported));
  });
}

}  // namespace internal

}  // namespace trellis
