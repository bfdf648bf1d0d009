// Guest mode (trellis/guest.h, trellis/asio.h), after Trio's test_guest_mode.py. One set of
// bodies (nurseries, cancellation, timeouts, sockets, threads, RunTokens, deadlock) runs
// three ways — run(), a guest of the generic CallbackHost, a guest of a Boost.Asio
// io_context — and must behave the same; then what only guest mode has: start returns
// before main runs, the host stays responsive, the host wakes the guest, misuse errors,
// done_callback errors, abandonment, Asio operations awaited from tasks.
#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/steady_timer.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "trellis/asio.h"
#include "trellis/fakes.h"
#include "trellis/trellis.h"

namespace trellis {
namespace {

using namespace std::chrono_literals;

enum class Mode { kRun, kCallbackHost, kAsioHost };

std::string mode_name(const testing::TestParamInfo<Mode>& info) {
  switch (info.param) {
    case Mode::kRun:
      return "Run";
    case Mode::kCallbackHost:
      return "CallbackHost";
    case Mode::kAsioHost:
      return "AsioHost";
  }
  return "?";
}

// Runs main to completion in `mode`; rethrows its error as run() would.
void run_in(Mode mode, std::function<void()> main) {
  if (mode == Mode::kRun) {
    trellis::run(main);
    return;
  }
  std::exception_ptr outcome;
  bool done = false;
  if (mode == Mode::kCallbackHost) {
    fakes::CallbackHost host;
    start_guest_run(main, host.guest_options([&](std::exception_ptr error) {
      outcome = error;
      done = true;
      host.stop();
    }));
    host.run();
  } else {
    boost::asio::io_context io;
    asio_host::start_guest_run(io, main, [&](std::exception_ptr error) {
      outcome = error;
      done = true;
    });
    io.run();
  }
  EXPECT_TRUE(done) << "the host loop returned before the guest run was done";
  if (outcome != nullptr) std::rethrow_exception(outcome);
}

class GuestConformance : public testing::TestWithParam<Mode> {};

INSTANTIATE_TEST_SUITE_P(Modes, GuestConformance,
                         testing::Values(Mode::kRun, Mode::kCallbackHost, Mode::kAsioHost),
                         mode_name);

TEST_P(GuestConformance, MainsResultAndErrorReachTheCaller) {
  int result = 0;
  run_in(GetParam(), [&] { result = 42; });
  EXPECT_EQ(result, 42);
  EXPECT_THROW(run_in(GetParam(), [] { throw std::runtime_error("boom"); }), std::runtime_error);
}

TEST_P(GuestConformance, NurseryChildrenRunAndTheirErrorsPropagate) {
  std::vector<int> order;
  run_in(GetParam(), [&] {
    Event first_done;
    open_nursery([&](Nursery& nursery) {
      nursery.start_soon([&] {
        first_done.wait();
        order.push_back(2);
      });
      nursery.start_soon([&] {
        sleep(5ms);
        order.push_back(1);
        first_done.set();
      });
    });
  });
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
  bool sibling_cancelled = false;
  EXPECT_THROW(run_in(GetParam(),
                      [&] {
                        open_nursery([&](Nursery& nursery) {
                          nursery.start_soon([&] {
                            try {
                              sleep_forever();
                            } catch (const Cancelled&) {
                              sibling_cancelled = true;
                              throw;
                            }
                          });
                          nursery.start_soon([] {
                            sleep(1ms);
                            throw std::runtime_error("child failed");
                          });
                        });
                      }),
               ExceptionGroup);
  EXPECT_TRUE(sibling_cancelled);
}

TEST_P(GuestConformance, TimeoutsAndCancellation) {
  run_in(GetParam(), [] {
    CancelScope scope;
    const Time start = current_time();
    const bool completed = move_on_after(10ms, [] { sleep_forever(); });
    EXPECT_FALSE(completed);
    EXPECT_GE(current_time() - start, 10ms);
    EXPECT_THROW(fail_after(1ms, [] { sleep(1h); }), TooSlowError);
    open_nursery([&](Nursery& nursery) {
      nursery.start_soon([] { sleep_forever(); });
      nursery.start_soon([] { sleep_forever(); });
      sleep(1ms);
      nursery.cancel_scope().cancel();
    });
  });
}

TEST_P(GuestConformance, TcpEchoOverLoopback) {
  std::string echoed;
  run_in(GetParam(), [&] {
    open_nursery([&](Nursery& nursery) {
      const auto listeners = nursery.start<std::vector<SocketListener*>>(
          [](TaskStatus<std::vector<SocketListener*>>& status) {
            serve_tcp(
                [](SocketStream& stream) {
                  std::byte buffer[256];
                  while (std::size_t n = stream.receive_some(buffer)) {
                    stream.send_all(std::span(buffer, n));
                  }
                },
                0, {.host = "127.0.0.1", .task_status = &status});
          });
      SocketStream client = open_tcp_stream("127.0.0.1", listeners.at(0)->local_address().port());
      for (int i = 0; i < 20; ++i) {
        const std::string message = "message " + std::to_string(i) + ";";
        client.send_all(std::as_bytes(std::span(message)));
        std::string got;
        while (got.size() < message.size()) {
          char buffer[64];
          const std::size_t n = client.receive_some(std::as_writable_bytes(std::span(buffer)));
          ASSERT_GT(n, 0u);
          got.append(buffer, n);
        }
        echoed += got;
      }
      nursery.cancel_scope().cancel();
    });
  });
  EXPECT_EQ(echoed.size(), 210u);  // 10 x "message i;" + 10 x "message 1i;"
  EXPECT_EQ(echoed.substr(0, 20), "message 0;message 1;");
}

TEST_P(GuestConformance, WorkerThreadsAndRunTokens) {
  run_in(GetParam(), [] {
    const RunToken token = lowlevel::current_run_token();
    const int answer = to_thread::run_sync([] {
      // Back into the run from the worker thread.
      return from_thread::run_sync([] { return 40; }) + 2;
    });
    EXPECT_EQ(answer, 42);
    // A foreign thread wakes a task through the token.
    Event event;
    std::thread foreign([&] { token.run_sync_soon([&] { event.set(); }); });
    fail_after(10s, [&] { event.wait(); });
    foreign.join();
  });
}

TEST_P(GuestConformance, DeadlockIsReported) {
  EXPECT_THROW(run_in(GetParam(),
                      [] {
                        Event never;
                        never.wait();
                      }),
               DeadlockError);
}

TEST_P(GuestConformance, AutojumpClockMakesAnHourFree) {
  fakes::MockClock clock;
  clock.set_autojump_threshold(Duration::zero());
  Duration slept{};
  const auto main = [&] {
    const Time start = current_time();
    sleep(1h);
    slept = current_time() - start;
  };
  if (GetParam() == Mode::kRun) {
    trellis::run(main, {.clock = &clock});
  } else {
    fakes::CallbackHost host;
    GuestRunOptions options = host.guest_options([&](std::exception_ptr) { host.stop(); });
    options.clock = &clock;
    start_guest_run(main, std::move(options));
    host.run();
  }
  EXPECT_EQ(slept, 1h);
}

// --- What only guest mode has ---------------------------------------------------------

TEST(GuestMode, StartReturnsBeforeMainRuns) {
  fakes::CallbackHost host;
  bool ran = false;
  start_guest_run([&] { ran = true; },
                  host.guest_options([&](std::exception_ptr) { host.stop(); }));
  EXPECT_FALSE(ran);
  host.run();
  EXPECT_TRUE(ran);
}

// Every callback runs at most one batch: a guest busy with 2,000 tasks of 20 steps each
// still lets the host's own callbacks run in between (no timing involved: the host counts
// its turns while the guest works).
TEST(GuestMode, HostStaysResponsiveWhileTheGuestIsBusy) {
  fakes::CallbackHost host;
  std::atomic<bool> guest_done{false};
  std::size_t host_turns = 0;
  std::function<void()> host_tick = [&] {
    ++host_turns;
    if (!guest_done) host.post(host_tick);
  };
  std::size_t turns_during_work = 0;
  host.post(host_tick);
  start_guest_run(
      [&] {
        const std::size_t before = host_turns;
        open_nursery([&](Nursery& nursery) {
          for (int t = 0; t < 2000; ++t) {
            nursery.start_soon([] {
              for (int i = 0; i < 20; ++i) checkpoint();
            });
          }
        });
        turns_during_work = host_turns - before;
        guest_done = true;
      },
      host.guest_options([&](std::exception_ptr error) {
        EXPECT_EQ(error, nullptr);
        host.stop();
      }));
  host.run();
  EXPECT_GE(turns_during_work, 20u) << "the host did not run between the guest's batches";
}

// A guest step runs at most a slice of a long batch, and the next step starts with the poll
// a run() makes between slices: a timer that comes due in the middle of a batch of 4,000
// tasks wakes its task within one guest slice (512 steps), not after the rest of the batch
// (about 2,000 steps later). The MockClock moves only when a task jumps it, so "when" is a
// count of task steps.
TEST(GuestMode, TimerDueInALongBatchWakesWithinOneSlice) {
  constexpr int kSpinners = 4000;
  constexpr std::int64_t kGuestSlice = 512;
  fakes::MockClock clock;
  std::int64_t steps = 0, due_at = -1, woke_at = -1;
  fakes::CallbackHost host;
  GuestRunOptions options = host.guest_options([&](std::exception_ptr error) {
    EXPECT_EQ(error, nullptr);
    host.stop();
  });
  options.clock = &clock;
  start_guest_run(
      [&] {
        open_nursery([&](Nursery& nursery) {
          nursery.start_soon([&] {
            sleep(1s);
            woke_at = steps;
          });
          for (int i = 0; i < kSpinners; ++i) {
            nursery.start_soon([&, i] {
              for (int round = 0; round < 3; ++round) {
                ++steps;
                if (i == kSpinners / 2 && round == 1) {
                  clock.jump(1s);
                  due_at = steps;
                }
                checkpoint();
              }
            });
          }
        });
      },
      std::move(options));
  host.run();
  ASSERT_GE(due_at, 0);
  ASSERT_GE(woke_at, due_at);
  EXPECT_LE(woke_at - due_at, kGuestSlice);
  EXPECT_LT(woke_at - due_at, kSpinners / 4);
}

// Trio's test_host_can_directly_wake_trio_task: a host callback wakes a guest task.
TEST(GuestMode, HostCallbackWakesAGuestTask) {
  fakes::CallbackHost host;
  RunToken token;
  Event* event = nullptr;
  bool woke = false;
  start_guest_run(
      [&] {
        Event here;
        event = &here;
        token = lowlevel::current_run_token();
        host.post([&] { token.run_sync_soon([&] { event->set(); }); });
        fail_after(10s, [&] { here.wait(); });
        woke = true;
      },
      host.guest_options([&](std::exception_ptr error) {
        EXPECT_EQ(error, nullptr);
        host.stop();
      }));
  host.run();
  EXPECT_TRUE(woke);
}

TEST(GuestMode, MisuseIsAClearError) {
  fakes::CallbackHost host;
  EXPECT_THROW(start_guest_run([] {}, GuestRunOptions{}), UsageError);  // no threadsafe callback
  EXPECT_THROW(start_guest_run(nullptr, host.guest_options(nullptr)), UsageError);
  // Inside a run.
  trellis::run(
      [&] { EXPECT_THROW(start_guest_run([] {}, host.guest_options(nullptr)), UsageError); });
  // Twice on one thread: the second start is refused, the first run is unharmed.
  int finished = 0;
  start_guest_run([&] { ++finished; }, host.guest_options([&](std::exception_ptr error) {
    EXPECT_EQ(error, nullptr);
    host.stop();
  }));
  EXPECT_THROW(start_guest_run([] {}, host.guest_options(nullptr)), UsageError);
  host.run();
  EXPECT_EQ(finished, 1);
  // Once it is done, the thread may host another.
  start_guest_run([&] { ++finished; },
                  host.guest_options([&](std::exception_ptr) { host.stop(); }));
  host.run();
  EXPECT_EQ(finished, 2);
}

TEST(GuestMode, DoneCallbackErrorReachesTheHostLoop) {
  fakes::CallbackHost host;
  start_guest_run([] {}, host.guest_options([](std::exception_ptr) {
    throw std::runtime_error("done_callback failed");
  }));
  EXPECT_THROW(host.run(), std::runtime_error);
  // Without a done_callback, main's error reaches the host loop the same way.
  GuestRunOptions options = host.guest_options(nullptr);
  start_guest_run([] { throw std::logic_error("main failed"); }, std::move(options));
  EXPECT_THROW(host.run(), std::logic_error);
}

// A host that drops a callback unrun abandons the run: on the host's thread the run is
// cancelled and finished there and then, its cleanup runs, and done_callback says so.
TEST(GuestMode, AbandonedRunIsCancelledFinishedAndReported) {
  fakes::CallbackHost host;
  bool cleaned_up = false;
  std::exception_ptr outcome;
  start_guest_run(
      [&] {
        struct Cleanup {
          bool& flag;
          ~Cleanup() { flag = true; }
        } cleanup{cleaned_up};
        host.stop();  // the host gives up while main is busy
        for (;;) checkpoint();
      },
      host.guest_options([&](std::exception_ptr error) { outcome = error; }));
  host.run();
  EXPECT_FALSE(cleaned_up);
  host.drop_pending();
  EXPECT_TRUE(cleaned_up);
  ASSERT_NE(outcome, nullptr);
  EXPECT_THROW(std::rethrow_exception(outcome), GuestRunAbandoned);
  // The thread is free again.
  start_guest_run([] {}, host.guest_options([&](std::exception_ptr) { host.stop(); }));
  host.run();
}

// --- Asio ------------------------------------------------------------------------------

// An Asio host serving a Trellis TCP echo server while its own timer keeps firing.
TEST(AsioHost, HostTimersKeepFiringWhileTheGuestServes) {
  boost::asio::io_context io;
  boost::asio::steady_timer timer(io);
  std::atomic<bool> guest_done{false};
  std::size_t ticks = 0;
  std::function<void(boost::system::error_code)> tick = [&](boost::system::error_code) {
    ++ticks;
    if (guest_done) return;
    timer.expires_after(100us);
    timer.async_wait(tick);
  };
  timer.expires_after(100us);
  timer.async_wait(tick);
  std::size_t ticks_during_guest = 0;
  std::exception_ptr outcome;
  asio_host::start_guest_run(
      io,
      [&] {
        const std::size_t before = ticks;
        open_nursery([&](Nursery& nursery) {
          const auto listeners = nursery.start<std::vector<SocketListener*>>(
              [](TaskStatus<std::vector<SocketListener*>>& status) {
                serve_tcp(
                    [](SocketStream& stream) {
                      std::byte buffer[64];
                      while (std::size_t n = stream.receive_some(buffer)) {
                        stream.send_all(std::span(buffer, n));
                      }
                    },
                    0, {.host = "127.0.0.1", .task_status = &status});
              });
          SocketStream client =
              open_tcp_stream("127.0.0.1", listeners.at(0)->local_address().port());
          std::byte buffer[1] = {std::byte{7}};
          // Until the host's timer has fired a few times during the exchange.
          for (int i = 0; i < 100000 && ticks - before < 5; ++i) {
            client.send_all(buffer);
            ASSERT_EQ(client.receive_some(buffer), 1u);
            sleep(50us);
          }
          nursery.cancel_scope().cancel();
        });
        ticks_during_guest = ticks - before;
        guest_done = true;
      },
      [&](std::exception_ptr error) { outcome = error; });
  io.run();
  EXPECT_EQ(outcome, nullptr);
  EXPECT_GE(ticks_during_guest, 5u);
}

TEST(AsioHost, AwaitAnAsioTimerFromAGuestTask) {
  boost::asio::io_context io;
  std::exception_ptr outcome;
  asio_host::start_guest_run(
      io,
      [&] {
        boost::asio::steady_timer timer(io, std::chrono::milliseconds(2));
        asio_host::await<void>(
            io, [&](auto handler) { timer.async_wait(handler); }, [&] { timer.cancel(); });
        // Cancelled: the operation is cancelled through the timer and its handler has run
        // before Cancelled reaches the task.
        timer.expires_after(std::chrono::hours(1));
        const bool completed = move_on_after(2ms, [&] {
          asio_host::await<void>(
              io, [&](auto handler) { timer.async_wait(handler); }, [&] { timer.cancel(); });
        });
        EXPECT_FALSE(completed);
        // An error becomes boost::system::system_error.
        timer.expires_after(std::chrono::hours(1));
        EXPECT_THROW(asio_host::await<void>(io,
                                            [&](auto handler) {
                                              timer.async_wait(handler);
                                              timer.cancel();  // operation_aborted
                                            }),
                     boost::system::system_error);
      },
      [&](std::exception_ptr error) { outcome = error; });
  io.run();
  if (outcome != nullptr) std::rethrow_exception(outcome);
}

// Asio handlers hand work to Trellis tasks through a TaskGateway and get each outcome back
// on the io_context: a value, an error, a Cancelled when the nursery is cancelled, and
// ClosedResourceError once the gateway is gone — every handler runs exactly once.
TEST(AsioHost, AsioHandlersSubmitWorkToTrellisTasks) {
  boost::asio::io_context io;
  int value = 0;
  std::string error_text;
  int cancelled = 0;
  int closed = 0;
  std::exception_ptr outcome;
  asio_host::start_guest_run(
      io,
      [&] {
        std::optional<asio_host::TaskGateway::Submitter> late;
        open_nursery([&](Nursery& nursery) {
          asio_host::TaskGateway gateway(nursery);
          const auto submit = gateway.submitter();
          late = submit;
          boost::asio::post(io, [&, submit] {
            submit.submit<int>(
                io,
                [] {
                  sleep(1ms);
                  return 42;
                },
                [&](std::exception_ptr error, int v) {
                  EXPECT_EQ(error, nullptr);
                  value = v;
                });
            submit.submit<void>(
                io, [] { throw std::runtime_error("task failed"); },
                [&](std::exception_ptr error) {
                  try {
                    std::rethrow_exception(error);
                  } catch (const std::runtime_error& e) {
                    error_text = e.what();
                  }
                });
            submit.submit<int>(
                io, []() -> int { sleep_forever(); },
                [&](std::exception_ptr error, int) {
                  try {
                    std::rethrow_exception(error);
                  } catch (const Cancelled&) {
                    ++cancelled;
                  }
                });
          });
          while (value == 0 || error_text.empty()) sleep(1ms);
          nursery.cancel_scope().cancel();  // the sleeper's handler gets Cancelled
        });
        boost::asio::post(io, [&, submit = *late] {
          submit.submit<int>(
              io, [] { return 1; },
              [&](std::exception_ptr error, int) {
                try {
                  std::rethrow_exception(error);
                } catch (const ClosedResourceError&) {
                  ++closed;
                }
              });
        });
        while (closed == 0) sleep(1ms);
      },
      [&](std::exception_ptr error) { outcome = error; });
  io.run();
  if (outcome != nullptr) std::rethrow_exception(outcome);
  EXPECT_EQ(value, 42);
  EXPECT_EQ(error_text, "task failed");
  EXPECT_EQ(cancelled, 1);
  EXPECT_EQ(closed, 1);
}

// The io_context may live on its own thread while Trellis runs normally.
TEST(AsioHost, AwaitOnAnIoContextRunningOnAnotherThread) {
  boost::asio::io_context io;
  auto work = boost::asio::make_work_guard(io);
  std::thread asio_thread([&] { io.run(); });
  trellis::run([&] {
    boost::asio::steady_timer timer(io);
    const std::size_t waited = asio_host::await<std::size_t>(io, [&](auto handler) {
      timer.expires_after(std::chrono::milliseconds(1));
      timer.async_wait(
          [handler](boost::system::error_code error) mutable { handler(error, std::size_t{7}); });
    });
    EXPECT_EQ(waited, 7u);
    // A task waiting only for Asio is not a deadlock.
    const bool completed = move_on_after(5ms, [&] {
      asio_host::await<void>(
          io,
          [&](auto handler) {
            timer.expires_after(std::chrono::hours(1));
            timer.async_wait(handler);
          },
          [&] { timer.cancel(); });
    });
    EXPECT_FALSE(completed);
  });
  work.reset();
  asio_thread.join();
}

}  // namespace
}  // namespace trellis
