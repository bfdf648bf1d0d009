// Ports of the semantics of Trio's src/trio/_tests/test_threads.py (and test_thread_cache.py
// for worker reuse): to_thread::run_sync, from_thread::run / run_sync, RunToken. Each TEST
// names the Trio test it follows. All run on the real epoll backend and real clock (a mock
// clock would jump while a thread works).
//
// Differences in the port: Trio's RuntimeError is UsageError; Trio checks "no thread left"
// with threading.active_count(), here /proc/self/task; Trio's contextvars tests have no
// counterpart (task-locals do not cross to threads); thread names are not set.
#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "trellis/fakes.h"
#include "trellis/trellis.h"

namespace trellis {
namespace {

using namespace std::chrono_literals;
using fakes::wait_all_tasks_blocked;

// A one-shot gate a worker thread blocks on until the test opens it.
class Gate {
 public:
  void open() {
    std::lock_guard lock(mutex_);
    open_ = true;
    changed_.notify_all();
  }
  void wait() {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return open_; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  bool open_ = false;
};

std::size_t count_entries(const char* directory) {
  DIR* dir = ::opendir(directory);
  if (dir == nullptr) return 0;
  std::size_t count = 0;
  while (const dirent* entry = ::readdir(dir)) {
    if (entry->d_name[0] != '.') ++count;
  }
  ::closedir(dir);
  return count;
}

std::size_t thread_count() {
  return count_entries("/proc/self/task");
}

// Waits (real time, bounded) until the process is back to `threads` threads: a worker
// detached with an abandoned job exits on its own once the job is done.
std::size_t settle_threads(std::size_t threads) {
  for (int i = 0; i < 2000 && thread_count() != threads; ++i) {
    std::this_thread::sleep_for(5ms);
  }
  return thread_count();
}

// test_run_in_worker_thread: the function runs on another thread; its result comes back.
TEST(TrioThreads, RunInWorkerThread) {
  run([] {
    const std::thread::id loop = std::this_thread::get_id();
    const std::thread::id worker = to_thread::run_sync([] { return std::this_thread::get_id(); });
    EXPECT_NE(worker, loop);
    EXPECT_EQ(to_thread::run_sync([] { return std::string("hello"); }), "hello");
    int side = 0;
    to_thread::run_sync([&] { side = 7; });
    EXPECT_EQ(side, 7);
  });
}

// test_run_in_worker_thread (the exception half): the exception is rethrown in the task.
TEST(TrioThreads, ExceptionCrosses) {
  run([] {
    try {
      to_thread::run_sync([]() -> int { throw std::invalid_argument("from the thread"); });
      ADD_FAILURE() << "no exception";
    } catch (const std::invalid_argument& e) {
      EXPECT_STREQ(e.what(), "from the thread");
    }
  });
}

// test_run_in_worker_thread_cancellation: abandon_on_cancel=true lets the task leave at once
// while the thread still blocks; false makes cancellation wait for the thread; a task
// cancelled before it starts never starts the thread.
TEST(TrioThreads, RunInWorkerThreadCancellation) {
  const std::size_t threads_before = thread_count();
  Gate gate;
  std::atomic<int> state{0};  // 1: blocking, 2: finished
  auto blocking = [&] {
    state = 1;
    gate.wait();
    state = 2;
  };
  std::vector<std::string> record;
  auto child = [&](bool abandon) {
    record.push_back("start");
    struct Exit {
      std::vector<std::string>& record;
      ~Exit() { record.push_back("exit"); }
    } exit{record};
    to_thread::run_sync(blocking, {.abandon_on_cancel = abandon});
  };
  run([&] {
    open_nursery([&](Nursery& n) {
      n.start_soon(child, true);
      wait_all_tasks_blocked();
      EXPECT_EQ(record, std::vector<std::string>{"start"});
      n.cancel_scope().cancel();
    });
    // The task exited, but the thread did not.
    EXPECT_EQ(record, (std::vector<std::string>{"start", "exit"}));
    EXPECT_NE(state.load(), 2);
    gate.open();
    while (state.load() != 2) std::this_thread::sleep_for(1ms);
  });
  EXPECT_EQ(settle_threads(threads_before), threads_before);

  // This one cannot be cancelled.
  Gate gate2;
  std::atomic<bool> finished{false};
  record.clear();
  run([&] {
    open_nursery([&](Nursery& n) {
      n.start_soon([&] {
        record.push_back("start");
        to_thread::run_sync([&] {
          gate2.wait();
          finished = true;
        });
        record.push_back("returned");
        checkpoint();  // the pending cancel arrives here
        record.push_back("not reached");
      });
      wait_all_tasks_blocked();
      n.cancel_scope().cancel();
      CancelScope shield;
      shield.set_shield(true);
      shield.run([] {
        for (int i = 0; i < 10; ++i) checkpoint();
      });
      EXPECT_EQ(record, std::vector<std::string>{"start"});
      gate2.open();
    });
    EXPECT_TRUE(finished.load());
    EXPECT_EQ(record, (std::vector<std::string>{"start", "returned"}));

    // Cancelled before it enters: the entry is a cancellation point; no thread runs.
    bool ran = false;
    CancelScope scope;
    scope.cancel();
    scope.run([&] { to_thread::run_sync([&] { ran = true; }); });
    EXPECT_TRUE(scope.cancelled_caught());
    EXPECT_FALSE(ran);
  });
}

// test_run_in_worker_thread_abandoned: the run exits while an abandoned thread still runs;
// when it finishes later nothing breaks, and a from_thread call it makes then gets
// RunFinishedError (test_from_thread_run_during_shutdown).
TEST(TrioThreads, RunInWorkerThreadAbandoned) {
  const std::size_t threads_before = thread_count();
  Gate gate;
  std::mutex mutex;
  std::condition_variable changed;
  bool done = false;
  bool got_run_finished = false;
  run([&] {
    open_nursery([&](Nursery& n) {
      n.start_soon([&] {
        to_thread::run_sync(
            [&] {
              gate.wait();
              bool finished_error = false;
              try {
                from_thread::run_sync([] {});
              } catch (const RunFinishedError&) {
                finished_error = true;
              }
              std::lock_guard lock(mutex);
              got_run_finished = finished_error;
              done = true;
              changed.notify_all();
            },
            {.abandon_on_cancel = true});
      });
      wait_all_tasks_blocked();
      n.cancel_scope().cancel();
    });
  });
  gate.open();
  {
    std::unique_lock lock(mutex);
    changed.wait(lock, [&] { return done; });
  }
  EXPECT_TRUE(got_run_finished);
  EXPECT_EQ(settle_threads(threads_before), threads_before);
}

// test_run_in_worker_thread_limiter (with use_default_limiter both ways) and
// test_run_in_worker_thread_custom_limiter: never more than the limiter's tokens run at once,
// and the limit is reached.
void check_limiter(bool use_default, std::size_t max) {
  std::mutex mutex;
  std::condition_variable changed;
  std::size_t active = 0;
  std::size_t active_max = 0;
  bool release = false;
  run([&] {
    CapacityLimiter custom(max);
    CapacityLimiter* limiter = &custom;
    if (use_default) {
      limiter = nullptr;
      to_thread::current_default_thread_limiter().set_total_tokens(max);
    }
    open_nursery([&](Nursery& n) {
      for (int i = 0; i < 10; ++i) {
        n.start_soon([&] {
          to_thread::run_sync(
              [&] {
                std::unique_lock lock(mutex);
                ++active;
                active_max = std::max(active_max, active);
                changed.notify_all();
                changed.wait(lock, [&] { return release; });
                --active;
              },
              {.limiter = limiter});
        });
      }
      // Wait for the first `max` to be inside, then let everyone through. (Not under the
      // limiter being tested, whose tokens are all taken.)
      CapacityLimiter own(1);
      to_thread::run_sync(
          [&] {
            std::unique_lock lock(mutex);
            changed.wait(lock, [&] { return active == max; });
          },
          {.limiter = &own});
      wait_all_tasks_blocked();
      CapacityLimiter& used = use_default ? to_thread::current_default_thread_limiter() : custom;
      EXPECT_EQ(used.borrowed_tokens(), max);
      EXPECT_EQ(used.statistics().tasks_waiting, 10 - max);
      {
        std::lock_guard lock(mutex);
        release = true;
        changed.notify_all();
      }
    });
    EXPECT_EQ(to_thread::current_default_thread_limiter().borrowed_tokens(), 0u);
  });
  EXPECT_EQ(active_max, max);
  EXPECT_EQ(active, 0u);
}

TEST(TrioThreads, RunInWorkerThreadLimiterDefault) {
  for (std::size_t max : {3, 5}) check_limiter(true, max);
}

TEST(TrioThreads, RunInWorkerThreadCustomLimiter) {
  for (std::size_t max : {3, 5}) check_limiter(false, max);
}

// The default limiter has Trio's 40 tokens and belongs to the run.
TEST(TrioThreads, DefaultLimiterIsPerRun) {
  run([] {
    EXPECT_EQ(to_thread::current_default_thread_limiter().total_tokens(), 40u);
    EXPECT_EQ(&to_thread::current_default_thread_limiter(),
              &to_thread::current_default_thread_limiter());
    to_thread::current_default_thread_limiter().set_total_tokens(2);
  });
  run([] { EXPECT_EQ(to_thread::current_default_thread_limiter().total_tokens(), 40u); });
  EXPECT_THROW(to_thread::current_default_thread_limiter(), UsageError);
}

// test_trio_from_thread_run_sync: runs on the loop thread, result and exception cross back.
TEST(TrioThreads, FromThreadRunSync) {
  run([] {
    const std::thread::id loop = std::this_thread::get_id();
    const std::thread::id seen = to_thread::run_sync(
        [] { return from_thread::run_sync([] { return std::this_thread::get_id(); }); });
    EXPECT_EQ(seen, loop);
    EXPECT_THROW(to_thread::run_sync([] {
                   from_thread::run_sync([]() -> int { throw std::out_of_range("loop"); });
                 }),
                 std::out_of_range);
  });
}

// test_trio_from_thread_run: fn runs as a task and may block.
TEST(TrioThreads, FromThreadRun) {
  run([] {
    Event event;
    std::vector<std::string> record;
    open_nursery([&](Nursery& n) {
      n.start_soon([&] {
        const int got = to_thread::run_sync([&] {
          return from_thread::run([&] {
            record.push_back("waiting");
            event.wait();  // a blocking call inside the run
            record.push_back("woken");
            return 42;
          });
        });
        EXPECT_EQ(got, 42);
      });
      while (record.empty()) sleep(1ms);
      event.set();
    });
    EXPECT_EQ(record, (std::vector<std::string>{"waiting", "woken"}));
  });
}

// test_trio_from_thread_token: a foreign thread with an explicit token.
TEST(TrioThreads, FromThreadToken) {
  run([] {
    RunToken token = lowlevel::current_run_token();
    EXPECT_TRUE(token == lowlevel::current_run_token());
    int result = 0;
    to_thread::run_sync([&] {
      std::thread foreign([&] { result = from_thread::run_sync(token, [] { return 5; }); });
      foreign.join();
    });
    EXPECT_EQ(result, 5);
    int from_task = 0;
    to_thread::run_sync([&] {
      std::thread foreign([&] {
        from_task = from_thread::run(token, [] {
          sleep(1ms);
          return 6;
        });
      });
      foreign.join();
    });
    EXPECT_EQ(from_task, 6);
  });
}

// test_from_thread_no_token: a foreign thread without a token; test_from_thread_inside_trio_thread:
// from the loop thread itself.
TEST(TrioThreads, FromThreadMisuse) {
  EXPECT_THROW(from_thread::run_sync([] {}), UsageError);
  run([] {
    EXPECT_THROW(from_thread::run_sync([] {}), UsageError);
    EXPECT_THROW(from_thread::run([] {}), UsageError);
    bool usage_error = false;
    to_thread::run_sync([&] {
      std::thread foreign([&] {
        try {
          from_thread::run_sync([] {});
        } catch (const UsageError&) {
          usage_error = true;
        }
      });
      foreign.join();
    });
    EXPECT_TRUE(usage_error);
  });
}

// test_do_in_trio_thread: run_sync_soon from a foreign thread reaches the loop, in order.
TEST(TrioThreads, RunSyncSoonFromForeignThread) {
  run([] {
    RunToken token = lowlevel::current_run_token();
    const std::thread::id loop = std::this_thread::get_id();
    std::vector<int> order;
    std::vector<std::thread::id> where;
    Event done;
    std::thread foreign([&] {
      for (int i = 0; i < 5; ++i) {
        token.run_sync_soon([&, i] {
          order.push_back(i);
          where.push_back(std::this_thread::get_id());
          if (i == 4) done.set();
        });
      }
    });
    // A deadline: a task waiting only for a foreign thread is otherwise a deadlock.
    fail_after(60s, [&] { done.wait(); });
    foreign.join();
    EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
    for (const std::thread::id id : where) EXPECT_EQ(id, loop);
  });
}

// A run_sync_soon closure runs soon even when tasks never block: they checkpoint in a loop
// (alone, or switching straight to each other), waiting for the flag it sets. (Trio runs the
// closures from its I/O poll, which every iteration does.)
TEST(TrioThreads, RunSyncSoonReachesTasksThatNeverBlock) {
  for (const int spinners : {1, 2}) {
    SCOPED_TRACE(std::to_string(spinners) + " spinning task(s)");
    bool flag = false;
    std::thread foreign;
    // (A deadline, so that a closure that never runs fails the test instead of hanging it.)
    EXPECT_NO_THROW(run([&] {
      RunToken token = lowlevel::current_run_token();
      foreign = std::thread([&flag, token] { token.run_sync_soon([&] { flag = true; }); });
      fail_after(10s, [&] {
        open_nursery([&](Nursery& nursery) {
          for (int i = 0; i < spinners; ++i) {
            nursery.start_soon([&] {
              while (!flag) checkpoint();
            });
          }
        });
      });
    }));
    foreign.join();
    EXPECT_TRUE(flag);
  }
}

// test_from_thread_run_during_shutdown and RunFinishedError after run(): every call through
// a token of a finished run is a clear error.
TEST(TrioThreads, CallsAfterRunEnded) {
  RunToken token = run([] { return lowlevel::current_run_token(); });
  EXPECT_FALSE(token.run_active());
  EXPECT_THROW(token.run_sync_soon([] {}), RunFinishedError);
  bool sync_error = false;
  bool task_error = false;
  std::thread foreign([&] {
    try {
      from_thread::run_sync(token, [] {});
    } catch (const RunFinishedError&) {
      sync_error = true;
    }
    try {
      from_thread::run(token, [] {});
    } catch (const RunFinishedError&) {
      task_error = true;
    }
  });
  foreign.join();
  EXPECT_TRUE(sync_error);
  EXPECT_TRUE(task_error);
  EXPECT_THROW(RunToken().run_sync_soon([] {}), UsageError);
}

// test_recursive_to_thread: a worker calls back into the run, which starts another worker.
TEST(TrioThreads, RecursiveToThread) {
  run([] {
    const int got = to_thread::run_sync(
        [] { return from_thread::run([] { return to_thread::run_sync([] { return 3; }) + 1; }); });
    EXPECT_EQ(got, 4);
  });
}

// test_from_thread_host_cancelled: once the waiting task is cancelled (no abandon), a
// from_thread::run call of its thread runs cancelled; the Cancelled it carries out becomes
// the task's own, caught by its scope.
TEST(TrioThreads, FromThreadHostCancelled) {
  run([] {
    Gate gate;
    bool thread_saw_cancel = false;
    CancelScope* child_scope = nullptr;
    bool caught = false;
    open_nursery([&](Nursery& n) {
      n.start_soon([&] {
        CancelScope scope;
        child_scope = &scope;
        scope.run([&] {
          to_thread::run_sync([&] {
            gate.wait();
            try {
              from_thread::run([] { sleep_forever(); });
            } catch (const Cancelled&) {
              thread_saw_cancel = true;
              throw;
            }
          });
        });
        caught = scope.cancelled_caught();
      });
      wait_all_tasks_blocked();
      child_scope->cancel();
      gate.open();
    });
    EXPECT_TRUE(thread_saw_cancel);
    EXPECT_TRUE(caught);
  });
}

// test_thread_cache.py::test_thread_cache_basics: sequential calls reuse one worker thread.
TEST(TrioThreads, ThreadsReused) {
  run([] {
    std::set<std::thread::id> ids;
    for (int i = 0; i < 5; ++i) {
      ids.insert(to_thread::run_sync([] { return std::this_thread::get_id(); }));
    }
    EXPECT_EQ(ids.size(), 1u);
    const ThreadFacetStatistics stats = lowlevel::current_threads().statistics();
    EXPECT_EQ(stats.threads, 1u);
    EXPECT_EQ(stats.jobs_running, 0u);
  });
}

// No thread and no file descriptor outlives a run that used workers and real files.
TEST(TrioThreads, NoLeakedThreadsOrFds) {
  const std::size_t threads_before = thread_count();
  const std::size_t fds_before = count_entries("/proc/self/fd");
  char dir_template[] = "/tmp/trellis_threads_XXXXXX";
  ASSERT_NE(::mkdtemp(dir_template), nullptr);
  const std::string dir = dir_template;
  run([&] {
    open_nursery([&](Nursery& n) {
      for (int i = 0; i < 8; ++i) {
        n.start_soon([&, i] {
          const Path file = Path(dir) / ("f" + std::to_string(i));
          file.write_text("data");
          EXPECT_EQ(file.read_text(), "data");
          to_thread::run_sync([] { return 1; });
          file.unlink();
        });
      }
    });
    EXPECT_GE(lowlevel::current_threads().statistics().threads, 1u);
  });
  ::rmdir(dir.c_str());
  EXPECT_EQ(thread_count(), threads_before);
  EXPECT_EQ(count_entries("/proc/self/fd"), fds_before);
}

}  // namespace
}  // namespace trellis
