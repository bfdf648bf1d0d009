// trellis/asio/asio_host.h — Trellis and Boost.Asio in one program, both directions.
//
// A Trellis run as a guest of an io_context (the host keeps its thread and its handlers keep
// running between the run's batches):
//
//   boost::asio::io_context io;
//   trellis::asio_host::start_guest_run(io, [] { serve_tcp(handler, 8080); },
//                                       [](std::exception_ptr error) { /* main's outcome */ });
//   io.run();   // returns once the run is done and the program's own work is
//
// An Asio operation awaited from a Trellis task ("infected Asio"): initiate(handler) starts
// the operation on ctx's thread; the task blocks until the handler runs, then gets its value
// or a boost::system::system_error:
//
//   std::size_t n = trellis::asio_host::await<std::size_t>(
//       io, [&](auto handler) { socket.async_read_some(boost::asio::buffer(buf), handler); },
//       [&] { socket.cancel(); });
//
// With a `cancel` function the await is cancellable: a cancelled task runs cancel() on ctx
// (Boost 1.74 has no per-operation cancellation slots: cancel the I/O object), waits for the
// handler (so no handler ever touches a dead task), then raises Cancelled. Without one it is
// shielded until the handler runs. Both are checkpoints. The run must use the real (epoll)
// backend; ctx may be the run's host or run on another thread.
#pragma once

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/system/error_code.hpp>
#include <boost/system/system_error.hpp>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

#include "trellis/core/cancel_scope.h"
#include "trellis/core/errors.h"
#include "trellis/core/lowlevel.h"
#include "trellis/core/nursery.h"
#include "trellis/core/run.h"
#include "trellis/core/run_token.h"
#include "trellis/sync/event.h"

namespace trellis::asio_host {

// Starts `main` as a guest run hosted by `host` (trellis/guest.h), holding the io_context's
// work until the run is done; `done` gets main's outcome on the host's thread (nullptr: an
// error propagates out of io_context::run()).
void start_guest_run(boost::asio::io_context& host, std::function<void()> main,
                     std::function<void(std::exception_ptr)> done);

namespace detail {

// While it lives, the run counts an outstanding Asio operation as a source of wake-ups
// (a task waiting only for it is not deadlocked). Throws UsageError without the epoll backend.
class PendingOperation {
 public:
  PendingOperation();
  ~PendingOperation();
  PendingOperation(const PendingOperation&) = delete;
  PendingOperation& operator=(const PendingOperation&) = delete;

 private:
  Backend* backend_;
};

template <class R>
struct Outcome {
  boost::system::error_code error;
  std::optional<R> value;
};
template <>
struct Outcome<void> {
  boost::system::error_code error;
};

// Written by the handler on ctx's thread; read by the task after `done` (set through the
// run's RunToken, whose queue orders the two).
template <class R>
struct AwaitState {
  Event done;
  Outcome<R> outcome;
};

template <class R>
auto make_handler(std::shared_ptr<AwaitState<R>> state, RunToken token) {
  return [state = std::move(state), token = std::move(token)](boost::system::error_code error,
                                                              auto&&... value) {
    static_assert(sizeof...(value) == (std::is_void_v<R> ? 0 : 1),
                  "asio_host::await<R>: the handler's signature must be "
                  "void(error_code) for R = void, else void(error_code, R)");
    state->outcome.error = error;
    if constexpr (!std::is_void_v<R>)
      state->outcome.value.emplace(std::forward<decltype(value)>(value)...);
    try {
      token.run_sync_soon([state] { state->done.set(); });
    } catch (const RunFinishedError&) {
      // The run is gone: nobody waits (an await always waits for its handler).
    }
  };
}

template <class R>
R take(AwaitState<R>& state) {
  if (state.outcome.error) throw boost::system::system_error(state.outcome.error);
  if constexpr (!std::is_void_v<R>) return std::move(*state.outcome.value);
}

}  // namespace detail

template <class R, class Initiate, class Cancel>
R await(boost::asio::io_context& ctx, Initiate&& initiate, Cancel&& cancel) {
  checkpoint_if_cancelled();
  auto state = std::make_shared<detail::AwaitState<R>>();
  detail::PendingOperation pending;
  auto handler = detail::make_handler<R>(state, lowlevel::current_run_token());
  boost::asio::post(
      ctx, [initiate = std::forward<Initiate>(initiate), handler = std::move(handler)]() mutable {
        initiate(std::move(handler));
      });
  try {
    state->done.wait();
  } catch (const Cancelled&) {
    boost::asio::post(ctx, std::forward<Cancel>(cancel));
    CancelScope shield;
    shield.set_shield(true);
    shield.run([&] { state->done.wait(); });
    throw;
  }
  return detail::take(*state);
}

template <class R, class Initiate>
R await(boost::asio::io_context& ctx, Initiate&& initiate) {
  CancelScope shield;
  shield.set_shield(true);
  if constexpr (std::is_void_v<R>) {
    shield.run([&] { await<R>(ctx, std::forward<Initiate>(initiate), [] {}); });
  } else {
    return std::move(
        *shield.run([&] { return await<R>(ctx, std::forward<Initiate>(initiate), [] {}); }));
  }
}

// The other direction: Asio handlers hand work to Trellis tasks. A TaskGateway, made by a
// task, starts submitted functions as tasks of its nursery; each result (or exception) goes
// back to the submitter as handler(std::exception_ptr, R) — handler(std::exception_ptr) for
// void — posted to the submitter's io_context. Structured: every submission's handler runs
// exactly once, with the function's outcome, a Cancelled when the nursery is cancelled, or
// ClosedResourceError once the gateway is gone (or RunFinishedError once the run is), so
// nothing is left pending on the Asio side when the Trellis side exits.
//
//   open_nursery([&](Nursery& nursery) {
//     asio_host::TaskGateway gateway(nursery);
//     auto submit = gateway.submitter();          // copy it into Asio handlers
//     ...   // in a handler, on any thread:
//     submit.submit<int>(io, [] { return compute(); },
//                        [](std::exception_ptr error, int value) { ... });
//   });
namespace detail {

template <class R>
struct TaskOutcome {
  std::exception_ptr error;
  std::optional<R> value;
};
template <>
struct TaskOutcome<void> {
  std::exception_ptr error;
};

// Posts handler(error[, value]) to ctx (a default R with an error: Asio's co_spawn's way).
template <class R, class Handler>
void post_outcome(boost::asio::io_context& ctx, std::shared_ptr<Handler> handler,
                  TaskOutcome<R> outcome) {
  boost::asio::post(ctx, [handler = std::move(handler), outcome = std::move(outcome)]() mutable {
    if constexpr (std::is_void_v<R>) {
      (*handler)(outcome.error);
    } else {
      (*handler)(outcome.error, outcome.value.has_value() ? std::move(*outcome.value) : R{});
    }
  });
}

// Reports RunFinishedError through `fail` unless disarmed (fail = nullptr) before it dies.
struct UnrunNotice {
  std::function<void(std::exception_ptr)> fail;
  ~UnrunNotice() {
    if (fail) {
      fail(std::make_exception_ptr(
          RunFinishedError("asio_host::TaskGateway: the run ended before the task started")));
    }
  }
};

}  // namespace detail

class TaskGateway {
  struct State {
    Nursery* nursery;  // run-loop thread only; nullptr once the gateway is gone
    RunToken token;
  };

 public:
  class Submitter {
   public:
    // Any thread. fn runs as a task of the gateway's nursery; handler gets its outcome on ctx.
    template <class R, class F, class Handler>
    void submit(boost::asio::io_context& ctx, F fn, Handler handler) const {
      static_assert(std::is_void_v<R> || std::is_default_constructible_v<R>,
                    "TaskGateway::submit<R>: R must be default-constructible (the value "
                    "passed with an error)");
      auto shared_handler = std::make_shared<Handler>(std::move(handler));
      auto fail = [&ctx, shared_handler](std::exception_ptr error) {
        detail::TaskOutcome<R> failed;
        failed.error = std::move(error);
        detail::post_outcome<R>(ctx, shared_handler, std::move(failed));
      };
      // If the run ends with the start still queued, the closure is destroyed unrun: the
      // submitter still hears of it (RunFinishedError).
      auto unrun = std::make_shared<detail::UnrunNotice>();
      unrun->fail = fail;
      auto start = [state = state_, fn = std::move(fn), &ctx, shared_handler, fail,
                    unrun]() mutable {
        unrun->fail = nullptr;  // it ran
        if (state->nursery == nullptr) {
          return fail(std::make_exception_ptr(
              ClosedResourceError("asio_host::TaskGateway: the gateway is closed")));
        }
        // (This closure runs on the loop: nothing may escape it.)
        try {
          start_task<R>(*state->nursery, std::move(fn), ctx, shared_handler, fail);
        } catch (...) {
          fail(std::current_exception());
        }
      };
      try {
        state_->token.run_sync_soon(std::move(start));
      } catch (const RunFinishedError&) {
        // The run is over: `start` was destroyed unrun, and `unrun` reports it.
      }
    }

   private:
    template <class R, class F, class Handler, class Fail>
    static void start_task(Nursery& nursery, F fn, boost::asio::io_context& ctx,
                           std::shared_ptr<Handler> shared_handler, Fail fail) {
      nursery.start_soon([fn = std::move(fn), &ctx, shared_handler, fail]() mutable {
        detail::TaskOutcome<R> outcome;
        try {
          if constexpr (std::is_void_v<R>) {
            fn();
          } else {
            outcome.value.emplace(fn());
          }
        } catch (const Cancelled&) {
          fail(std::current_exception());
          throw;  // a Cancelled goes on unwinding the task
        } catch (...) {
          return fail(std::current_exception());  // the submitter's error, not the nursery's
        }
        detail::post_outcome<R>(ctx, shared_handler, std::move(outcome));
      });
    }

    friend class TaskGateway;
    explicit Submitter(std::shared_ptr<State> state) : state_(std::move(state)) {}
    std::shared_ptr<State> state_;
  };

  // In a task of the run that owns `nursery` (which must outlive the gateway).
  explicit TaskGateway(Nursery& nursery)
      : state_(std::make_shared<State>(State{&nursery, lowlevel::current_run_token()})) {}
  ~TaskGateway() { state_->nursery = nullptr; }
  TaskGateway(const TaskGateway&) = delete;
  TaskGateway& operator=(const TaskGateway&) = delete;

  // A copyable handle for Asio handlers.
  Submitter submitter() const { return Submitter(state_); }

 private:
  std::shared_ptr<State> state_;
};

}  // namespace trellis::asio_host
