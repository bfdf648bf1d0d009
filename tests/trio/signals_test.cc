// Ports of the semantics of Trio's src/trio/_tests/test_signals.py (open_signal_receiver)
// and of test_ki.py's basic contract (SIGINT during run() -> KeyboardInterrupt). Each TEST
// names the Trio test it follows.
//
// Differences in the port: the signals are SIGUSR1/SIGUSR2/SIGHUP rather than SIGILL/SIGFPE
// (the sanitizers own those); Trio's TypeError/ValueError for bad arguments are
// std::invalid_argument; Trio's "wrong thread" RuntimeError has no counterpart (any thread
// may catch signals), but two runs catching one signal is a UsageError.
#include <signal.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <set>
#include <stdexcept>
#include <thread>

#include "trellis/fakes.h"
#include "trellis/trellis.h"

namespace trellis {
namespace {

using namespace std::chrono_literals;

// The handler address currently installed for signo.
void* current_handler(int signo) {
  struct sigaction action {};
  EXPECT_EQ(::sigaction(signo, nullptr, &action), 0);
  return reinterpret_cast<void*>(action.sa_handler);
}

// Installs `handler` for signo for the lifetime of the object (Trio's _signal_handler).
class ScopedHandler {
 public:
  ScopedHandler(std::initializer_list<int> signals, void (*handler)(int)) : signals_(signals) {
    for (int signo : signals_) {
      struct sigaction action {};
      action.sa_handler = handler;
      sigemptyset(&action.sa_mask);
      struct sigaction old {};
      EXPECT_EQ(::sigaction(signo, &action, &old), 0);
      previous_.push_back(old);
    }
  }
  ~ScopedHandler() {
    for (std::size_t i = 0; i < signals_.size(); ++i) {
      ::sigaction(signals_[i], &previous_[i], nullptr);
    }
  }

 private:
  std::vector<int> signals_;
  std::vector<struct sigaction> previous_;
};

std::atomic<int> direct_sigusr1{0};
std::atomic<int> direct_sigusr2{0};
void direct_handler(int signo) {
  if (signo == SIGUSR1) ++direct_sigusr1;
  if (signo == SIGUSR2) ++direct_sigusr2;
}

template <class F>
void run_test(F&& body) {
  trellis::run(std::forward<F>(body));
}

// test_open_signal_receiver
TEST(TrioSignals, OpenSignalReceiver) {
  void* const original = current_handler(SIGUSR1);
  run_test([&] {
    open_signal_receiver({SIGUSR1}, [&](SignalReceiver& receiver) {
      EXPECT_NE(current_handler(SIGUSR1), original);
      ::raise(SIGUSR1);
      ::raise(SIGUSR1);
      fakes::wait_all_tasks_blocked();
      ::raise(SIGUSR1);
      fakes::wait_all_tasks_blocked();
      // Three arrivals, one pending signal.
      for (int signo : receiver) {
        EXPECT_EQ(signo, SIGUSR1);
        break;
      }
      EXPECT_EQ(receiver.pending_count(), 0u);
      ::raise(SIGUSR1);
      EXPECT_EQ(receiver.receive(), SIGUSR1);
      EXPECT_EQ(receiver.pending_count(), 0u);
    });
    EXPECT_EQ(current_handler(SIGUSR1), original);
  });
  EXPECT_EQ(current_handler(SIGUSR1), original);
}

// test_open_signal_receiver_restore_handler_after_one_bad_signal, _empty_fail
TEST(TrioSignals, BadSignalsAreRejectedAndRestoreHandlers) {
  void* const original = current_handler(SIGUSR1);
  run_test([&] {
    EXPECT_THROW(open_signal_receiver({SIGUSR1, 1234567}, [](SignalReceiver&) {}),
                 std::invalid_argument);
    EXPECT_EQ(current_handler(SIGUSR1), original);
    EXPECT_THROW(open_signal_receiver({}, [](SignalReceiver&) {}), std::invalid_argument);
    EXPECT_THROW(open_signal_receiver({SIGKILL}, [](SignalReceiver&) {}), std::invalid_argument);
    EXPECT_THROW(open_signal_receiver({SIGUSR1, SIGSTOP}, [](SignalReceiver&) {}),
                 std::invalid_argument);
    EXPECT_THROW(open_signal_receiver({0}, [](SignalReceiver&) {}), std::invalid_argument);
    EXPECT_EQ(current_handler(SIGUSR1), original);
  });
  // Outside a run: a clear error, nothing installed.
  EXPECT_THROW(open_signal_receiver({SIGUSR1}, [](SignalReceiver&) {}), UsageError);
  EXPECT_EQ(current_handler(SIGUSR1), original);
}

// test_open_signal_receiver_restore_handler_after_duplicate_signal
TEST(TrioSignals, DuplicateSignalRestoresHandler) {
  void* const original = current_handler(SIGUSR1);
  run_test([&] {
    open_signal_receiver({SIGUSR1, SIGUSR1}, [](SignalReceiver& receiver) {
      EXPECT_EQ(receiver.signals().size(), 1u);
    });
  });
  EXPECT_EQ(current_handler(SIGUSR1), original);
}

// test_catch_signals_wrong_thread, in Trellis's terms: a signal belongs to one run at a time.
TEST(TrioSignals, AnotherRunCannotCatchTheSameSignal) {
  run_test([] {
    open_signal_receiver({SIGUSR1}, [](SignalReceiver&) {
      bool refused = false;
      std::thread other([&] {
        trellis::run([&] {
          try {
            open_signal_receiver({SIGUSR1}, [](SignalReceiver&) {});
          } catch (const UsageError& error) {
            refused = std::string(error.what()).find("SIGUSR1") != std::string::npos;
          }
          // A different signal is fine.
          open_signal_receiver({SIGUSR2}, [](SignalReceiver&) {});
        });
      });
      other.join();
      EXPECT_TRUE(refused);
    });
  });
}

// test_open_signal_receiver_conflict
TEST(TrioSignals, TwoReceivingTasksConflict) {
  run_test([] {
    open_signal_receiver({SIGUSR1}, [](SignalReceiver& receiver) {
      try {
        open_nursery([&](Nursery& nursery) {
          nursery.start_soon([&] { receiver.receive(); });
          nursery.start_soon([&] { receiver.receive(); });
        });
        ADD_FAILURE() << "expected BusyResourceError";
      } catch (const ExceptionGroup& group) {
        EXPECT_TRUE(group.contains<BusyResourceError>()) << group.what();
      }
    });
  });
}

// test_open_signal_receiver_no_starvation
TEST(TrioSignals, NoStarvation) {
  run_test([] {
    open_signal_receiver({SIGUSR1, SIGUSR2}, [](SignalReceiver& receiver) {
      int previous = 0;
      for (int i = 0; i < 10; ++i) {
        ::raise(SIGUSR1);
        ::raise(SIGUSR2);
        checkpoint();
        const int got = receiver.receive();
        EXPECT_TRUE(got == SIGUSR1 || got == SIGUSR2);
        if (previous != 0) {
          EXPECT_NE(got, previous) << "iteration " << i;
        }
        previous = got;
      }
      while (receiver.pending_count() != 0) receiver.receive();
    });
  });
}

// test_catch_signals_race_condition_on_exit: signals caught but not received are raised
// again once the previous handlers are back, whether or not they were dispatched yet.
TEST(TrioSignals, PendingSignalsAreRedeliveredOnExit) {
  direct_sigusr1 = 0;
  direct_sigusr2 = 0;
  run_test([] {
    {
      ScopedHandler direct({SIGUSR1, SIGUSR2}, &direct_handler);
      open_signal_receiver({SIGUSR1, SIGUSR2}, [](SignalReceiver&) {
        ::raise(SIGUSR1);
        ::raise(SIGUSR2);
      });
      checkpoint();
      EXPECT_EQ(direct_sigusr1.load(), 1);
      EXPECT_EQ(direct_sigusr2.load(), 1);
    }
    {
      ScopedHandler direct({SIGUSR1, SIGUSR2}, &direct_handler);
      open_signal_receiver({SIGUSR1, SIGUSR2}, [](SignalReceiver& receiver) {
        ::raise(SIGUSR1);
        ::raise(SIGUSR2);
        checkpoint();
        EXPECT_EQ(receiver.pending_count(), 2u);
      });
      EXPECT_EQ(direct_sigusr1.load(), 2);
      EXPECT_EQ(direct_sigusr2.load(), 2);
    }
    {
      // Previously ignored: the redelivery is ignored too.
      ScopedHandler ignore({SIGUSR1}, SIG_IGN);
      open_signal_receiver({SIGUSR1}, [](SignalReceiver&) { ::raise(SIGUSR1); });
      open_signal_receiver({SIGUSR1}, [](SignalReceiver& receiver) {
        ::raise(SIGUSR1);
        checkpoint();
        EXPECT_EQ(receiver.pending_count(), 1u);
      });
    }
  });
}

// Nested blocks: the innermost gets the signal; an outer block gets what the inner one left.
TEST(TrioSignals, NestedReceiversInnermostWins) {
  run_test([] {
    open_signal_receiver({SIGUSR1}, [](SignalReceiver& outer) {
      open_signal_receiver({SIGUSR1}, [](SignalReceiver& inner) {
        ::raise(SIGUSR1);
        EXPECT_EQ(inner.receive(), SIGUSR1);
        ::raise(SIGUSR1);
        checkpoint();
        EXPECT_EQ(inner.pending_count(), 1u);
      });
      EXPECT_EQ(outer.receive(), SIGUSR1);
      EXPECT_EQ(outer.pending_count(), 0u);
    });
  });
}

// A task waiting only for a signal is not deadlocked: the signal comes from another thread.
TEST(TrioSignals, SignalFromAnotherThreadWakesTheRun) {
  run_test([] {
    open_signal_receiver({SIGUSR2}, [](SignalReceiver& receiver) {
      std::thread sender([] {
        std::this_thread::sleep_for(20ms);
        ::kill(::getpid(), SIGUSR2);
      });
      struct Join {
        std::thread& thread;
        ~Join() { thread.join(); }
      } join{sender};
      EXPECT_EQ(receiver.receive(), SIGUSR2);
    });
  });
}

TEST(TrioSignals, ReceiveIsCancellable) {
  run_test([] {
    open_signal_receiver({SIGUSR1}, [](SignalReceiver& receiver) {
      move_on_after(10ms, [&] { receiver.receive(); });
      // Still usable after the cancelled receive.
      ::raise(SIGUSR1);
      EXPECT_EQ(receiver.receive(), SIGUSR1);
    });
  });
}

// test_ki.py: SIGINT while main runs -> main is cancelled, run() throws KeyboardInterrupt,
// and SIGINT is back at its default action afterwards.
TEST(TrioKeyboardInterrupt, SigintCancelsMainAndRunThrows) {
  ASSERT_EQ(current_handler(SIGINT), reinterpret_cast<void*>(SIG_DFL));
  bool cancelled = false;
  EXPECT_THROW(run_test([&] {
                 ::raise(SIGINT);
                 try {
                   sleep_forever();
                 } catch (const Cancelled& c) {
                   cancelled = c.source() == CancelSource::kKeyboardInterrupt;
                   throw;
                 }
               }),
               KeyboardInterrupt);
  EXPECT_TRUE(cancelled);
  EXPECT_EQ(current_handler(SIGINT), reinterpret_cast<void*>(SIG_DFL));
}

TEST(TrioKeyboardInterrupt, WinsOverMainsOwnResult) {
  // main shields itself and returns normally, or fails: KeyboardInterrupt still wins.
  EXPECT_THROW(trellis::run([] {
                 ::raise(SIGINT);
                 CancelScope shield(kNoDeadline, true);
                 shield.run([] { sleep(5ms); });
                 return 42;
               }),
               KeyboardInterrupt);
  EXPECT_THROW(run_test([] {
                 ::raise(SIGINT);
                 checkpoint_if_cancelled();
                 throw std::runtime_error("main's own failure");
               }),
               KeyboardInterrupt);
}

TEST(TrioKeyboardInterrupt, ChildTasksAreCancelledToo) {
  int cancelled_children = 0;
  EXPECT_THROW(run_test([&] {
                 open_nursery([&](Nursery& nursery) {
                   for (int i = 0; i < 3; ++i) {
                     nursery.start_soon([&] {
                       try {
                         sleep_forever();
                       } catch (const Cancelled&) {
                         ++cancelled_children;
                         throw;
                       }
                     });
                   }
                   fakes::wait_all_tasks_blocked();
                   ::raise(SIGINT);
                 });
               }),
               KeyboardInterrupt);
  EXPECT_EQ(cancelled_children, 3);
}

std::atomic<int> program_sigint{0};
void program_sigint_handler(int) {
  ++program_sigint;
}

TEST(TrioKeyboardInterrupt, ProgramsOwnHandlerIsLeftAlone) {
  program_sigint = 0;
  ScopedHandler mine({SIGINT}, &program_sigint_handler);
  const int result = trellis::run([] {
    ::raise(SIGINT);
    sleep(1ms);
    return 7;
  });
  EXPECT_EQ(result, 7);
  EXPECT_EQ(program_sigint.load(), 1);
}

TEST(TrioKeyboardInterrupt, OptOutLeavesSigintAlone) {
  trellis::run([] { EXPECT_EQ(current_handler(SIGINT), reinterpret_cast<void*>(SIG_DFL)); },
               RunOptions{.keyboard_interrupt = false});
  trellis::run([] { EXPECT_NE(current_handler(SIGINT), reinterpret_cast<void*>(SIG_DFL)); });
}

TEST(TrioKeyboardInterrupt, ReceiverForSigintTakesPrecedence) {
  const int result = trellis::run([] {
    int got = 0;
    open_signal_receiver({SIGINT}, [&](SignalReceiver& receiver) {
      ::raise(SIGINT);
      got = receiver.receive();
    });
    checkpoint();  // not cancelled
    return got;
  });
  EXPECT_EQ(result, SIGINT);
}

}  // namespace
}  // namespace trellis
