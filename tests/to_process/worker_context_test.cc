// Worker pools: cancellation both ways, the limiter's bound, idle retirement, init and
// retire hooks, cache_scope, and workers that break the protocol. Follows trio-parallel's
// _tests/test_impl.py (cancellation with and without kill_on_cancel, the limiter) and
// test_cache.py (idle timeout, init and retire, cache_scope).
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "trellis/to_process.h"
#include "trellis/trellis.h"
#include "worker_functions.h"

namespace trellis::to_process {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// Parks until pred() holds, polling; fails the test after a generous bound (not a timing
// assertion: only a hang guard).
template <class P>
void wait_until(P pred) {
  fail_after(60s, [&] {
    while (!pred()) sleep(2ms);
  });
}

TEST(ToProcessCancel, ShieldedByDefaultTheResultArrivesThenTheCancel) {
  const std::string dir = testing::make_temp_dir();
  const std::string release = dir + "/release";
  run([&] {
    WorkerContext context;
    Options options{.context = &context};
    std::string result;
    CancelScope scope;
    open_nursery([&](Nursery& nursery) {
      nursery.start_soon([&] {
        scope.run([&] {
          result = run_sync<std::string>(options, "wait_for_path", release);
          checkpoint();  // the cancel is delivered here
          ADD_FAILURE() << "not cancelled";
        });
      });
      wait_until([&] { return context.statistics().workers_busy == 1; });
      scope.cancel();
      sleep(20ms);  // the call goes on regardless
      EXPECT_EQ(result, "");
      std::ofstream(release).put('x');
    });
    EXPECT_EQ(result, "saw " + release);
    EXPECT_TRUE(scope.cancelled_caught());
    EXPECT_EQ(context.statistics().workers_idle, 1u);  // the worker was kept
  });
  fs::remove_all(dir);
}

TEST(ToProcessCancel, CancellableKillsTheWorkerAtOnceAndThePoolRecovers) {
  const std::string dir = testing::make_temp_dir();
  run([&] {
    WorkerContext context;
    Options options{.cancellable = true, .context = &context};
    const int before = run_sync<int>(options, "pid");
    CancelScope scope;
    open_nursery([&](Nursery& nursery) {
      nursery.start_soon([&] {
        scope.run([&] { run_sync<std::string>(options, "wait_for_path", dir + "/never"); });
      });
      wait_until([&] { return context.statistics().workers_busy == 1; });
      scope.cancel();
    });
    EXPECT_TRUE(scope.cancelled_caught());
    EXPECT_EQ(context.statistics().workers_stopped, 1u);
    EXPECT_EQ(testing::live_children().count(before), 0u);  // killed and reaped
    EXPECT_NE(run_sync<int>(options, "pid"), before);
  });
  fs::remove_all(dir);
}

TEST(ToProcessLimiter, BoundsHowManyCallsRunAtOnce) {
  const std::string dir = testing::make_temp_dir();
  const std::string running = dir + "/running";
  const std::string release = dir + "/release";
  fs::create_directory(running);
  run([&] {
    CapacityLimiter limiter(2);
    WorkerContext context({.max_workers = 4});
    Options options{.limiter = &limiter, .context = &context};
    std::vector<int> most(6, 0);
    open_nursery([&](Nursery& nursery) {
      for (int i = 0; i < 6; ++i) {
        nursery.start_soon(
            [&, i] { most[i] = run_sync<int>(options, "count_running", running, release); });
      }
      wait_until([&] { return context.statistics().workers_busy == 2; });
      EXPECT_EQ(limiter.statistics().tasks_waiting, 4u);
      std::ofstream(release).put('x');
    });
    for (int m : most) {
      EXPECT_GE(m, 1);
      EXPECT_LE(m, 2);
    }
    EXPECT_LE(context.statistics().workers_started, 2u);
  });
  fs::remove_all(dir);
}

TEST(ToProcessLimiter, TheDefaultLimiterHasATokenPerCpuAndMaxWorkersBoundsThePool) {
  run([] {
    EXPECT_GE(current_default_worker_limiter().total_tokens(), 1u);
    EXPECT_EQ(&current_default_worker_limiter(), &current_default_worker_limiter());
    WorkerContext context({.max_workers = 1});
    CapacityLimiter limiter(4);
    Options options{.limiter = &limiter, .context = &context};
    open_nursery([&](Nursery& nursery) {
      for (int i = 0; i < 4; ++i) nursery.start_soon([&] { run_sync<int>(options, "add", 1, 2); });
    });
    EXPECT_EQ(context.statistics().workers_started, 1u);
  });
}

TEST(ToProcessWorkerContext, IdleWorkersRetireAfterTheIdleTimeout) {
  run([] {
    WorkerContext context({.idle_timeout = 50ms});
    Options options{.context = &context};
    const int pid = run_sync<int>(options, "pid");
    wait_until([&] { return context.statistics().workers_stopped == 1; });
    EXPECT_EQ(context.statistics().workers_idle, 0u);
    EXPECT_EQ(testing::live_children().count(pid), 0u);
    EXPECT_NE(run_sync<int>(options, "pid"), pid);  // a new worker
  });
}

TEST(ToProcessWorkerContext, InitRunsInEachWorkerAndRetireEndsOneAfterACall) {
  run([] {
    WorkerContext plain;
    EXPECT_FALSE(run_sync<bool>(Options{.context = &plain}, "was_initialized"));
    WorkerContext with_init({.init = "init_flag"});
    EXPECT_TRUE(run_sync<bool>(Options{.context = &with_init}, "was_initialized"));
    WorkerContext retiring({.retire = "always_retire"});
    Options options{.context = &retiring};
    std::set<int> pids;
    for (int i = 0; i < 3; ++i) pids.insert(run_sync<int>(options, "pid"));
    EXPECT_EQ(pids.size(), 3u);
    EXPECT_EQ(retiring.statistics().workers_stopped, 3u);
    EXPECT_EQ(retiring.statistics().workers_idle, 0u);
  });
}

TEST(ToProcessWorkerContext, AFailingInitIsAWorkerErrorAndBadOptionsAreRefused) {
  run([] {
    WorkerContext failing({.init = "init_fails"});
    try {
      run_sync<int>(Options{.context = &failing}, "add", 1, 2);
      ADD_FAILURE() << "no exception";
    } catch (const WorkerError& e) {
      EXPECT_EQ(e.type_name(), "std::runtime_error");
      EXPECT_NE(e.message().find("init function 'init_fails' failed: no tables"),
                std::string::npos);
    }
    EXPECT_TRUE(testing::live_children().empty());
  });
  EXPECT_THROW(WorkerContext({.init = "not_registered"}), std::invalid_argument);
  EXPECT_THROW(WorkerContext({.idle_timeout = -1s}), std::invalid_argument);
}

TEST(ToProcessWorkerContext, CacheScopeStopsAndReapsItsWorkers) {
  run([] {
    const int outside = run_sync<int>("pid");
    std::set<int> inside = cache_scope({}, [] {
      std::set<int> pids;
      open_nursery([&](Nursery& nursery) {
        for (int i = 0; i < 2; ++i) {
          nursery.start_soon([&] { pids.insert(run_sync<int>("pid")); });
        }
      });
      return pids;
    });
    EXPECT_EQ(inside.count(outside), 0u);
    for (int pid : inside) EXPECT_EQ(testing::live_children().count(pid), 0u) << pid;
    EXPECT_EQ(run_sync<int>("pid"), outside);  // the run's default pool is untouched
    EXPECT_THROW(cache_scope({}, [] { run_sync<int>("abort"); }), BrokenWorkerError);
    EXPECT_EQ(testing::live_children(), std::set<int>{outside});
    // Cancelled while its body runs: the workers are still stopped (shielded) and reaped.
    CancelScope cancelled;
    int pid = 0;
    cancelled.run([&] {
      cache_scope({}, [&] {
        pid = run_sync<int>("pid");
        cancelled.cancel();
        checkpoint();
      });
    });
    EXPECT_TRUE(cancelled.cancelled_caught());
    EXPECT_NE(pid, 0);
    EXPECT_EQ(testing::live_children(), std::set<int>{outside});
  });
}

// A "worker" that is a shell script: it writes `first`, then after the first byte of a call
// writes `second`, then waits to be killed.
std::string write_script(const std::string& dir, const std::string& first,
                         const std::string& second) {
  auto octal = [](const std::string& bytes) {
    std::string out;
    for (unsigned char c : bytes) {
      char buffer[8];
      std::snprintf(buffer, sizeof buffer, "\\%03o", c);
      out += buffer;
    }
    return out;
  };
  const std::string path = dir + "/fake-worker.sh";
  std::ofstream(path) << "#!/bin/sh\nprintf '" << octal(first) << "'\nhead -c 1 >/dev/null\n"
                      << "printf '" << octal(second) << "'\nexec sleep 60\n";
  ::chmod(path.c_str(), 0755);
  return path;
}

std::string ready_frame() {
  const std::vector<char> frame = encode_frame(FrameKind::kReady, 0, {});
  return std::string(frame.begin(), frame.end());
}

TEST(ToProcessProtocol, AWorkerWritingGarbageIsKilledWithAClearError) {
  const std::string dir = testing::make_temp_dir();
  run([] {});  // what a first run keeps open for the process's life (the signal hub's pipe)
  const std::size_t fds_before = testing::open_fd_count();
  run([&] {
    WorkerContext garbage_first({.executable = write_script(dir, "garbage!garbage!", "")});
    try {
      run_sync<int>(Options{.context = &garbage_first}, "add", 1, 2);
      ADD_FAILURE() << "no exception";
    } catch (const BrokenWorkerError& e) {
      EXPECT_NE(std::string(e.what()).find("bad frame magic"), std::string::npos) << e.what();
    }
    WorkerContext garbage_reply(
        {.executable = write_script(dir, ready_frame(),
                                    std::string("TPWK\x01\x02\x00\x00\xff\xff\xff\xff", 12))});
    try {
      run_sync<int>(Options{.context = &garbage_reply}, "add", 1, 2);
      ADD_FAILURE() << "no exception";
    } catch (const BrokenWorkerError& e) {
      EXPECT_NE(std::string(e.what()).find("while running 'add'"), std::string::npos);
      EXPECT_NE(std::string(e.what()).find("exceeds the bound"), std::string::npos) << e.what();
    }
    // An init error whose payload is not [type, message]; the "worker" then exits.
    const std::vector<char> bad_error = encode_frame(FrameKind::kError, kFlagRetiring, {"\xc1", 1});
    WorkerContext bad_init(
        {.executable = write_script(dir, std::string(bad_error.begin(), bad_error.end()), ""),
         .stop_grace = 10ms});
    try {
      run_sync<int>(Options{.context = &bad_init}, "add", 1, 2);
      ADD_FAILURE() << "no exception";
    } catch (const BrokenWorkerError& e) {
      EXPECT_NE(std::string(e.what()).find("malformed error frame"), std::string::npos);
    }
    std::string bad_crc = ready_frame();
    bad_crc.back() = static_cast<char>(bad_crc.back() ^ 1);
    WorkerContext corrupt({.executable = write_script(dir, ready_frame(), bad_crc)});
    EXPECT_THROW(run_sync<int>(Options{.context = &corrupt}, "add", 1, 2), BrokenWorkerError);
    // A well-formed result frame (magic, version, checksum all right) whose payload is not
    // msgpack: the message says so and names the call.
    const std::vector<char> undecodable = encode_frame(FrameKind::kResult, 0, {"\xc1", 1});
    WorkerContext bad_result(
        {.executable = write_script(dir, ready_frame(),
                                    std::string(undecodable.begin(), undecodable.end()))});
    try {
      run_sync<int>(Options{.context = &bad_result}, "add", 1, 2);
      ADD_FAILURE() << "no exception";
    } catch (const BrokenWorkerError& e) {
      EXPECT_NE(std::string(e.what()).find("malformed frame while running 'add'"),
                std::string::npos)
          << e.what();
    }
    EXPECT_TRUE(testing::live_children().empty());
  });
  EXPECT_TRUE(testing::live_children().empty());
  EXPECT_EQ(testing::open_fd_count(), fds_before);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace trellis::to_process
