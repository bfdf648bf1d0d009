// Ports of the semantics of Trio's src/trio/_tests/test_subprocess.py (open_process,
// run_process, Process) and test_unix_pipes.py (pipe streams, with trio.testing's
// conformance checks). Each TEST names the Trio test it follows. All run on the real epoll
// backend with real programs (/bin/sh and coreutils, present on every Debian).
//
// Differences in the port: Trio's helper programs are Python one-liners, here sh; Trio's
// "no pidfd" mock is the TRELLIS_NO_PIDFD environment variable, read when the backend is
// made; Trio's repr() checks have no counterpart.
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "trellis/fakes.h"
#include "trellis/trellis.h"

namespace trellis {
namespace {

using namespace std::chrono_literals;

std::size_t count_entries(const char* directory) {
  DIR* dir = ::opendir(directory);
  if (dir == nullptr) return 0;
  std::size_t n = 0;
  while (::readdir(dir) != nullptr) ++n;
  ::closedir(dir);
  return n;
}

// True if pid is no child of ours any more (reaped: no zombie left).
bool reaped(int pid) {
  siginfo_t info{};
  return ::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG) != 0 && errno == ECHILD;
}

std::span<const std::byte> bytes(const std::string& text) {
  return std::as_bytes(std::span(text));
}

std::string receive_all(ReceiveStream& stream) {
  std::string out;
  std::array<std::byte, 4096> buffer;
  for (;;) {
    const std::size_t got = stream.receive_some(buffer);
    if (got == 0) return out;
    out.append(reinterpret_cast<const char*>(buffer.data()), got);
  }
}

// Runs each test twice: with pidfd waits, and with the waiting-thread fallback.
class Subprocess : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    if (GetParam()) {
      ::setenv("TRELLIS_NO_PIDFD", "1", 1);
    } else {
      ::unsetenv("TRELLIS_NO_PIDFD");
    }
  }
  void TearDown() override { ::unsetenv("TRELLIS_NO_PIDFD"); }
};

INSTANTIATE_TEST_SUITE_P(Waits, Subprocess, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "NoPidfd" : "Pidfd"; });

// test_basic, test_basic_no_pidfd
TEST_P(Subprocess, Basic) {
  run([] {
    Process yes = open_process({"true"});
    EXPECT_EQ(yes.wait(), 0);
    EXPECT_EQ(yes.returncode(), 0);
    Process no = open_process({"false"});
    EXPECT_EQ(no.wait(), 1);
    EXPECT_EQ(no.returncode(), 1);
    // wait() after the exit is still a checkpoint and returns the same code.
    EXPECT_EQ(no.wait(), 1);
  });
}

// test_auto_update_returncode
TEST_P(Subprocess, ReturncodeUpdatesOnItsOwn) {
  run([] {
    Process sleeper = open_process({"sleep", "9999"});
    EXPECT_EQ(sleeper.returncode(), std::nullopt);
    sleeper.kill();
    // Without wait(): returncode() polls (and reaps) by itself.
    while (!sleeper.returncode().has_value()) sleep(1ms);
    EXPECT_EQ(sleeper.returncode(), -SIGKILL);
    EXPECT_TRUE(reaped(sleeper.pid()));
  });
}

// test_multi_wait, test_multi_wait_no_pidfd
TEST_P(Subprocess, MultiWait) {
  run([] {
    Process sleeper = open_process({"sleep", "10"});
    open_nursery([&](Nursery& nursery) {
      for (int i = 0; i < 3; ++i) nursery.start_soon([&] { sleeper.wait(); });
      fakes::wait_all_tasks_blocked();
      nursery.cancel_scope().cancel();
    });
    EXPECT_EQ(sleeper.returncode(), std::nullopt);
    std::vector<int> codes;
    open_nursery([&](Nursery& nursery) {
      for (int i = 0; i < 3; ++i) nursery.start_soon([&] { codes.push_back(sleeper.wait()); });
      fakes::wait_all_tasks_blocked();
      sleeper.kill();
    });
    EXPECT_EQ(codes, (std::vector<int>{-SIGKILL, -SIGKILL, -SIGKILL}));
  });
}

// A task's returncode() can reap the child while another task's wait() is parked on the
// child's pidfd (an actor's exit watcher beside its stop path did this): the waiter gets the
// exit code, not a ClosedResourceError for the pidfd that reaping closed.
TEST_P(Subprocess, ReturncodeReapsWhileAnotherTaskWaits) {
  run([] {
    // Alive long enough for the waiter to park on its pidfd (or its waiting thread).
    Process child = open_process({"sleep", "0.2"});
    std::optional<int> waited;
    open_nursery([&](Nursery& nursery) {
      nursery.start_soon([&] { waited = child.wait(); });
      fakes::wait_all_tasks_blocked();  // parked in wait()
      // No checkpoint until the child is reaped here: the waiter cannot see the exit first.
      while (!child.returncode().has_value()) {
      }
    });
    EXPECT_EQ(waited, 0);
    EXPECT_TRUE(reaped(child.pid()));
  });
}

// test_pipes
TEST_P(Subprocess, Pipes) {
  run([] {
    Process child = open_process(
        {"sh", "-c", "data=$(cat); printf '%s' \"$data\"; printf '%s' \"$data\" | tr a-z A-Z >&2"},
        {.stdin_mode = Stdio::kPipe, .stdout_mode = Stdio::kPipe, .stderr_mode = Stdio::kPipe});
    const std::string message = "the quick brown fox";
    std::string out, err;
    open_nursery([&](Nursery& nursery) {
      nursery.start_soon([&] {
        child.stdin_stream()->send_all(bytes(message));
        child.stdin_stream()->close();
      });
      nursery.start_soon([&] { out = receive_all(*child.stdout_stream()); });
      nursery.start_soon([&] { err = receive_all(*child.stderr_stream()); });
    });
    EXPECT_EQ(child.wait(), 0);
    EXPECT_EQ(out, message);
    EXPECT_EQ(err, "THE QUICK BROWN FOX");
  });
}

// test_interactive: line by line, each answer before the next question.
TEST_P(Subprocess, Interactive) {
  run([] {
    Process child = open_process({"sh", "-c", "while read -r line; do echo \"$line$line\"; done"},
                                 {.stdin_mode = Stdio::kPipe, .stdout_mode = Stdio::kPipe});
    std::array<std::byte, 256> buffer;
    for (const std::string word : {"a", "bc", "def"}) {
      child.stdin_stream()->send_all(bytes(word + "\n"));
      std::string answer;
      while (answer.empty() || answer.back() != '\n') {
        const std::size_t got = child.stdout_stream()->receive_some(buffer);
        ASSERT_GT(got, 0u);
        answer.append(reinterpret_cast<const char*>(buffer.data()), got);
      }
      EXPECT_EQ(answer, word + word + "\n");
    }
    child.stdin_stream()->close();
    EXPECT_EQ(receive_all(*child.stdout_stream()), "");
    EXPECT_EQ(child.wait(), 0);
  });
}

// test_run: input fed while output is read (1 MiB both ways: more than a pipe holds).
TEST_P(Subprocess, RunProcess) {
  run([] {
    std::string input(1 << 20, '\0');
    for (std::size_t i = 0; i < input.size(); ++i) input[i] = static_cast<char>('a' + i % 26);
    CompletedProcess done =
        run_process({"sh", "-c", "cat; echo done >&2"},
                    {.input = input, .capture_stdout = true, .capture_stderr = true});
    EXPECT_EQ(done.returncode, 0);
    EXPECT_EQ(done.stdout_data.size(), input.size());
    EXPECT_TRUE(done.stdout_data == input);
    EXPECT_EQ(done.stderr_data, "done\n");
    EXPECT_EQ(done.args, (std::vector<std::string>{"sh", "-c", "cat; echo done >&2"}));

    // Default: empty stdin (cat ends at once), output not captured.
    CompletedProcess quiet = run_process({"cat"}, {.stdout_mode = Stdio::kDevNull});
    EXPECT_EQ(quiet.returncode, 0);
    EXPECT_EQ(quiet.stdout_data, "");

    // Bad combinations are refused before anything starts.
    EXPECT_THROW(run_process({"true"}, {.stdout_mode = Stdio::kPipe}), std::invalid_argument);
    EXPECT_THROW(run_process({"true"}, {.input = std::nullopt, .stdin_mode = Stdio::kPipe}),
                 std::invalid_argument);
  });
}

// test_run_check
TEST_P(Subprocess, RunCheck) {
  run([] {
    try {
      run_process({"sh", "-c", "echo out; echo err >&2; exit 3"},
                  {.capture_stdout = true, .capture_stderr = true});
      ADD_FAILURE() << "expected CalledProcessError";
    } catch (const CalledProcessError& error) {
      EXPECT_EQ(error.returncode(), 3);
      EXPECT_EQ(error.stdout_data(), "out\n");
      EXPECT_EQ(error.stderr_data(), "err\n");
      EXPECT_NE(std::string(error.what()).find("exit status 3"), std::string::npos) << error.what();
    }
    CompletedProcess unchecked = run_process({"sh", "-c", "exit 3"}, {.check = false});
    EXPECT_EQ(unchecked.returncode, 3);
  });
}

// test_run_with_broken_pipe: a child that reads nothing is no error.
TEST_P(Subprocess, RunWithBrokenPipe) {
  run([] {
    CompletedProcess done = run_process({"true"}, {.input = std::string(10 << 20, 'x')});
    EXPECT_EQ(done.returncode, 0);
  });
}

// test_stderr_stdout
TEST_P(Subprocess, StderrToStdout) {
  run([] {
    CompletedProcess done = run_process({"sh", "-c", "echo 1; echo 2 >&2; echo 3"},
                                        {.capture_stdout = true, .stderr_mode = Stdio::kStdout});
    EXPECT_EQ(done.stdout_data, "1\n2\n3\n");
    EXPECT_EQ(done.stderr_data, "");
  });
}

// test_errors, and the "a process that does not exist".
TEST_P(Subprocess, Errors) {
  run([] {
    try {
      open_process({"/definitely/not/a/program"});
      ADD_FAILURE() << "expected OSError";
    } catch (const OSError& error) {
      EXPECT_EQ(error.errno_value(), ENOENT);
      EXPECT_NE(std::string(error.what()).find("/definitely/not/a/program"), std::string::npos);
    }
    try {
      run_process({"no-such-program-trellis"});
      ADD_FAILURE() << "expected OSError";
    } catch (const OSError& error) {
      EXPECT_EQ(error.errno_value(), ENOENT);
    }
    // Not executable.
    try {
      open_process({"/etc/passwd"});
      ADD_FAILURE() << "expected OSError";
    } catch (const OSError& error) {
      EXPECT_EQ(error.errno_value(), EACCES);
    }
    try {
      open_process({"true"}, {.cwd = "/no/such/directory"});
      ADD_FAILURE() << "expected OSError";
    } catch (const OSError& error) {
      EXPECT_EQ(error.errno_value(), ENOENT);
      EXPECT_NE(std::string(error.what()).find("/no/such/directory"), std::string::npos);
    }
    EXPECT_THROW(open_process({}), std::invalid_argument);
    EXPECT_THROW(open_process({"true"}, {.stdout_mode = Stdio::kStdout}), std::invalid_argument);
    EXPECT_THROW(open_process({"true"}, {.env = std::map<std::string, std::string>{{"A=B", "c"}}}),
                 std::invalid_argument);
  });
  EXPECT_THROW(open_process({"true"}), UsageError);
}

// test_signals, and the "a process killed by a signal".
TEST_P(Subprocess, Signals) {
  run([] {
    for (const int signo : {SIGKILL, SIGTERM, SIGINT}) {
      Process sleeper = open_process({"sleep", "10"});
      sleeper.send_signal(signo);
      EXPECT_EQ(sleeper.wait(), -signo);
      // After the exit: a no-op, not an error.
      sleeper.send_signal(signo);
    }
    try {
      run_process({"sh", "-c", "kill -KILL $$"});
      ADD_FAILURE() << "expected CalledProcessError";
    } catch (const CalledProcessError& error) {
      EXPECT_EQ(error.returncode(), -SIGKILL);
      EXPECT_NE(std::string(error.what()).find("SIGKILL"), std::string::npos) << error.what();
    }
  });
}

// Cancelling run_process: SIGTERM, the child is waited for, Cancelled propagates (to the
// scope), and no zombie is left.
TEST_P(Subprocess, CancelTerminatesAndReaps) {
  run([] {
    int pid = 0;
    const Time start = current_time();
    move_on_after(50ms, [&] {
      run_process({"sleep", "10"}, {.deliver_cancel = [&](Process& child) {
                    pid = child.pid();
                    child.terminate();
                  }});
    });
    EXPECT_LT(current_time() - start, 5s);
    ASSERT_NE(pid, 0);
    EXPECT_TRUE(reaped(pid));
  });
}

// The default deliver_cancel escalates to SIGKILL for a child that ignores SIGTERM.
TEST_P(Subprocess, CancelEscalatesToKill) {
  run([] {
    const Time start = current_time();
    bool cancelled = false;
    CancelScope scope(current_time() + 100ms);
    scope.run([&] {
      run_process({"sh", "-c", "trap '' TERM; while :; do sleep 0.05; done"},
                  {.terminate_grace = 100ms});
    });
    cancelled = scope.cancelled_caught();
    EXPECT_TRUE(cancelled);
    EXPECT_LT(current_time() - start, 5s);
  });
}

// test_custom_deliver_cancel
TEST_P(Subprocess, CustomDeliverCancel) {
  run([] {
    bool custom_ran = false;
    open_nursery([&](Nursery& nursery) {
      nursery.start_soon([&] {
        run_process({"sleep", "10"}, {.deliver_cancel = [&](Process& child) {
                      sleep(10ms);
                      custom_ran = true;
                      child.kill();
                    }});
      });
      fakes::wait_all_tasks_blocked();
      nursery.cancel_scope().cancel();
    });
    EXPECT_TRUE(custom_ran);
  });
}

// Destroying a Process whose child runs kills and reaps it: no zombie, ever.
TEST_P(Subprocess, DestroyingARunningProcessReapsIt) {
  int pid = 0;
  run([&] {
    {
      Process sleeper = open_process({"sleep", "10"});
      pid = sleeper.pid();
    }
    EXPECT_TRUE(reaped(pid));
    // Process::close: closes pipes and waits; cancelled -> kills and waits.
    Process other = open_process({"sleep", "10"}, {.stdout_mode = Stdio::kPipe});
    const int other_pid = other.pid();
    move_on_after(20ms, [&] { other.close(); });
    EXPECT_EQ(other.returncode(), -SIGKILL);
    EXPECT_TRUE(reaped(other_pid));
    // Still running when main returns: its destructor kills and reaps it.
    Process left = open_process({"sleep", "10"});
    pid = left.pid();
  });
  EXPECT_TRUE(reaped(pid));
}

// A Process that outlives its run: a clear error, no crash, and the child was not left behind.
TEST_P(Subprocess, ProcessOutlivingItsRunIsAClearError) {
  Process survivor = run([] { return open_process({"sleep", "10"}); });
  EXPECT_TRUE(reaped(survivor.pid()));  // the backend killed and reaped it at the run's end
  EXPECT_THROW(survivor.returncode(), UsageError);
  EXPECT_THROW(survivor.kill(), UsageError);
  EXPECT_EQ(survivor.args(), (std::vector<std::string>{"sleep", "10"}));
  // Its destructor runs here, outside any run: nothing to close, nothing touched.
}

// test_for_leaking_fds
TEST_P(Subprocess, NoLeakedFds) {
  const std::size_t before = count_entries("/proc/self/fd");
  run([] {
    for (int i = 0; i < 5; ++i) {
      run_process({"true"});
      run_process({"cat"}, {.input = "x", .capture_stdout = true, .capture_stderr = true});
      EXPECT_THROW(open_process({"/nonexistent"}), OSError);
    }
  });
  EXPECT_EQ(count_entries("/proc/self/fd"), before);
}

TEST_P(Subprocess, EnvironmentAndWorkingDirectory) {
  run([] {
    CompletedProcess done = run_process({"sh", "-c", "echo \"$TRELLIS_X:$(pwd)\""},
                                        {.capture_stdout = true,
                                         .cwd = "/tmp",
                                         .env = std::map<std::string, std::string>{
                                             {"TRELLIS_X", "42"}, {"PATH", "/usr/bin:/bin"}}});
    EXPECT_EQ(done.stdout_data, "42:/tmp\n");
  });
}

// The child starts with default signal actions and an empty mask, whatever the run installed
// (a receiver's handler, or SIG_IGN inherited from us).
TEST_P(Subprocess, ChildGetsDefaultSignalActions) {
  run([] {
    open_signal_receiver({SIGUSR1}, [](SignalReceiver&) {
      CompletedProcess done = run_process({"sh", "-c", "kill -USR1 $$; echo survived"},
                                          {.capture_stdout = true, .check = false});
      EXPECT_EQ(done.returncode, -SIGUSR1);
      EXPECT_EQ(done.stdout_data, "");
    });
  });
}

// ---- pipes (test_unix_pipes.py) --------------------------------------------------------------

std::pair<std::unique_ptr<SendStream>, std::unique_ptr<ReceiveStream>> make_pipe() {
  auto [send, receive] = open_pipe();
  return {std::make_unique<PipeSendStream>(std::move(send)),
          std::make_unique<PipeReceiveStream>(std::move(receive))};
}

std::pair<std::unique_ptr<SendStream>, std::unique_ptr<ReceiveStream>> make_clogged_pipe() {
  auto [send, receive] = open_pipe();
  // Writes of more than PIPE_BUF bytes may be partial, so the buffer fills completely.
  const std::string chunk(2 * PIPE_BUF, 'x');
  const int fd = static_cast<int>(send.handle().value);
  while (::write(fd, chunk.data(), chunk.size()) > 0) {
  }
  return {std::make_unique<PipeSendStream>(std::move(send)),
          std::make_unique<PipeReceiveStream>(std::move(receive))};
}

// test_pipe_fully
TEST(TrioUnixPipes, PipesPassTheOneWayStreamChecks) {
  run([] { fakes::check_one_way_stream(make_pipe, make_clogged_pipe); });
}

// test_pipe_errors, test_del, test_async_with
TEST(TrioUnixPipes, ClosedPipes) {
  run([] {
    auto [send, receive] = open_pipe();
    std::array<std::byte, 16> buffer;
    receive.close();
    EXPECT_THROW(receive.receive_some(buffer), ClosedResourceError);
    EXPECT_THROW(send.send_all(bytes("x")), BrokenResourceError);  // EPIPE, no SIGPIPE
    send.close();
    send.close();  // idempotent
    EXPECT_THROW(send.send_all(bytes("x")), ClosedResourceError);
    EXPECT_THROW(send.wait_send_all_might_not_block(), ClosedResourceError);
    EXPECT_THROW(receive.receive_some(std::span<std::byte>()), std::invalid_argument);
  });
}

// test_close_during_write: a task blocked in send_all wakes with ClosedResourceError.
TEST(TrioUnixPipes, CloseDuringWrite) {
  run([] {
    auto [send, receive] = open_pipe();
    open_nursery([&](Nursery& nursery) {
      nursery.start_soon([&] {
        EXPECT_THROW(send.send_all(bytes(std::string(1 << 20, 'x'))), ClosedResourceError);
      });
      fakes::wait_all_tasks_blocked();
      send.close();
    });
  });
}

}  // namespace
}  // namespace trellis
