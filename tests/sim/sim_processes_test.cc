// Fake programs in the simulator: open_process / run_process — the same production code as on
// the real backend — start programs installed on the host, over simulated pipes, with
// deterministic outcomes (same seed, same trace hash).
#include <signal.h>

#include <gtest/gtest.h>

#include <array>
#include <cctype>
#include <cstdint>
#include <set>
#include <string>

#include "trellis/sim.h"

namespace trellis::sim {
namespace {

using namespace std::chrono_literals;

std::string read_all(ReceiveStream& stream) {
  std::string text;
  std::array<std::byte, 1000> buffer;
  for (;;) {
    const std::size_t got = stream.receive_some(buffer);
    if (got == 0) return text;
    text.append(reinterpret_cast<const char*>(buffer.data()), got);
  }
}

void write(SendStream& stream, const std::string& text) {
  stream.send_all(std::as_bytes(std::span(text)));
}

// "upper": stdin upper-cased to stdout, a note to stderr, exit code from argv[1] (default 0).
int upper(ProgramIo& io) {
  std::string text = read_all(io.in);
  for (char& c : text) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  write(io.out, text);
  write(io.err, "upper: " + std::to_string(text.size()) + " bytes\n");
  return io.argv.size() > 1 ? std::stoi(io.argv[1]) : 0;
}

// "server": sleeps until signalled; records that it unwound.
bool server_unwound = false;
int server(ProgramIo&) {
  try {
    sleep_forever();
  } catch (const Cancelled&) {
    server_unwound = true;
    throw;
  }
}

void install(Host& host) {
  host.install_program("upper", upper);
  host.install_program("server", server);
  host.install_program("crasher", [](ProgramIo&) -> int { throw std::runtime_error("boom"); });
  host.install_program("echo-env", [](ProgramIo& io) {
    std::string line = io.cwd;
    for (const std::string& entry : io.env) line += " " + entry;
    write(io.out, line);
    return 0;
  });
}

// Runs body in a host's task of a fresh world; returns the trace hash.
template <class F>
std::uint64_t in_host(std::uint64_t seed, F body) {
  World world(Config{.seed = seed});
  Host& host = world.add_host("h", "10.0.0.1");
  install(host);
  bool done = false;
  host.start([&] {
    body(world, host);
    done = true;
  });
  world.run([&] {
    while (!done) sleep(1ms);
  });
  EXPECT_TRUE(done);
  return world.trace().hash();
}

TEST(SimProcesses, RunProcessFeedsAndCapturesThroughSimulatedPipes) {
  in_host(1, [](World&, Host&) {
    // More than a pipe holds, both ways: input is fed while output is read.
    const std::string input(200000, 'a');
    CompletedProcess done =
        run_process({"upper"}, {.input = input, .capture_stdout = true, .capture_stderr = true});
    EXPECT_EQ(done.returncode, 0);
    EXPECT_EQ(done.stdout_data, std::string(200000, 'A'));
    EXPECT_EQ(done.stderr_data, "upper: 200000 bytes\n");

    try {
      run_process({"upper", "3"}, {.input = "x", .capture_stdout = true});
      ADD_FAILURE() << "expected CalledProcessError";
    } catch (const CalledProcessError& error) {
      EXPECT_EQ(error.returncode(), 3);
      EXPECT_EQ(error.stdout_data(), "X");
    }
    // 2>&1 and /dev/null.
    CompletedProcess merged = run_process(
        {"upper"}, {.input = "ab", .capture_stdout = true, .stderr_mode = Stdio::kStdout});
    EXPECT_EQ(merged.stdout_data, "ABupper: 2 bytes\n");
    CompletedProcess quiet = run_process({"upper"}, {.stdout_mode = Stdio::kDevNull});
    EXPECT_EQ(quiet.returncode, 0);
    // cwd and env reach the program as given.
    CompletedProcess env = run_process(
        {"echo-env"}, {.capture_stdout = true,
                       .cwd = "/srv",
                       .env = std::map<std::string, std::string>{{"A", "1"}, {"B", "2"}}});
    EXPECT_EQ(env.stdout_data, "/srv A=1 B=2");
  });
}

TEST(SimProcesses, UnknownProgramsAndCrashesAreClearErrors) {
  in_host(2, [](World&, Host&) {
    try {
      open_process({"no-such-program"});
      ADD_FAILURE() << "expected OSError";
    } catch (const OSError& error) {
      EXPECT_EQ(error.errno_value(), ENOENT);
      EXPECT_NE(std::string(error.what()).find("no-such-program"), std::string::npos);
    }
    // An uncaught exception aborts the program, as in a real one.
    Process crasher = open_process({"crasher"});
    EXPECT_EQ(crasher.wait(), -SIGABRT);
  });
  // Outside a host's task: a usage error, not a silent answer.
  World world(Config{.seed = 3});
  world.add_host("h", "10.0.0.1");
  EXPECT_THROW(world.run([] { open_process({"upper"}); }), UsageError);
}

TEST(SimProcesses, SignalsTerminateAndCancellationKillsTheChild) {
  in_host(4, [](World&, Host&) {
    server_unwound = false;
    Process p = open_process({"server"});
    EXPECT_EQ(p.returncode(), std::nullopt);
    sleep(10ms);
    p.terminate();
    EXPECT_EQ(p.wait(), -SIGTERM);
    EXPECT_TRUE(server_unwound);
    p.terminate();  // after the exit: nothing happens

    // A cancelled run_process delivers SIGTERM and waits before Cancelled goes on.
    const Time start = current_time();
    move_on_after(50ms, [] { run_process({"server"}); });
    EXPECT_EQ(current_time() - start, 50ms);  // virtual time: exact

    // Dropping a running Process kills it; Process::close on a cancelled wait does too.
    { Process dropped = open_process({"server"}); }
    Process closing = open_process({"server"}, {.stdout_mode = Stdio::kPipe});
    move_on_after(5ms, [&] { closing.close(); });
    EXPECT_EQ(closing.returncode(), -SIGKILL);
  });
}

TEST(SimProcesses, AHostCrashKillsItsPrograms) {
  World world(Config{.seed = 5});
  Host& host = world.add_host("h", "10.0.0.1");
  install(host);
  int first_incarnation_runs = 0;
  host.start([&] {
    ++first_incarnation_runs;
    if (first_incarnation_runs == 1) {
      Process p = open_process({"server"});
      p.wait();  // never returns: the crash cancels us and kills the program
    }
  });
  world.run([&] {
    sleep(20ms);
    host.crash();
    sleep(1ms);
    host.restart();
    sleep(20ms);
  });
  EXPECT_EQ(first_incarnation_runs, 2);
}

// ProcessOptions::host: a program started on another host is that host's task (current_host),
// dies when that host crashes (the spawner goes on), and an unknown or down host is an
// errno, as for any failed spawn.
TEST(SimProcesses, AProgramStartedOnAnotherHostRunsAndDiesThere) {
  World world(Config{.seed = 6});
  Host& here = world.add_host("here", "10.0.0.1");
  Host& there = world.add_host("there", "10.0.0.2");
  install(here);
  there.install_program("where", [](ProgramIo& io) {
    write(io.out, current_host()->name());
    return 0;
  });
  there.install_program("server", server);
  bool done = false;
  here.start([&] {
    const CompletedProcess where =
        run_process({"where"}, {.capture_stdout = true, .host = "there"});
    EXPECT_EQ(where.stdout_data, "there");
    const CompletedProcess by_address =
        run_process({"where"}, {.capture_stdout = true, .host = "10.0.0.2"});
    EXPECT_EQ(by_address.stdout_data, "there");
    // Not installed here: ENOENT when started here.
    EXPECT_THROW(open_process({"where"}), OSError);
    try {
      open_process({"where"}, {.host = "nowhere"});
      ADD_FAILURE() << "expected OSError";
    } catch (const OSError& error) {
      EXPECT_EQ(error.errno_value(), EHOSTUNREACH);
    }
    Process remote = open_process({"server"}, {.host = "there"});
    sleep(10ms);
    there.crash();
    EXPECT_EQ(remote.wait(), -SIGKILL);
    try {
      open_process({"server"}, {.host = "there"});
      ADD_FAILURE() << "expected OSError";
    } catch (const OSError& error) {
      EXPECT_EQ(error.errno_value(), EHOSTDOWN);
    }
    done = true;
  });
  world.run([&] {
    while (!done) sleep(1ms);
  });
  EXPECT_TRUE(done);
}

TEST(SimProcesses, PipesPassTheOneWayStreamChecks) {
  in_host(6, [](World&, Host&) {
    fakes::check_one_way_stream(
        [] {
          auto [send, receive] = open_pipe();
          return std::pair<std::unique_ptr<SendStream>, std::unique_ptr<ReceiveStream>>{
              std::make_unique<PipeSendStream>(std::move(send)),
              std::make_unique<PipeReceiveStream>(std::move(receive))};
        },
        nullptr);
  });
}

// Determinism: processes interleave with other tasks the same way for the same seed.
std::uint64_t workload_hash(std::uint64_t seed) {
  return in_host(seed, [](World& world, Host&) {
    open_nursery([&](Nursery& n) {
      for (int i = 0; i < 4; ++i) {
        n.start_soon([&world, i] {
          CompletedProcess done = run_process(
              {"upper"}, {.input = std::string(100 + i * 5000, 'q'), .capture_stdout = true});
          world.trace().record("program done", static_cast<std::uint64_t>(i));
          EXPECT_EQ(done.stdout_data.size(), 100u + i * 5000u);
        });
      }
    });
  });
}

TEST(SimProcesses, SameSeedSameTraceHash) {
  const std::uint64_t first = workload_hash(21);
  EXPECT_EQ(workload_hash(21), first);
  std::set<std::uint64_t> hashes;
  for (std::uint64_t seed = 1; seed <= 8; ++seed) hashes.insert(workload_hash(seed));
  EXPECT_GT(hashes.size(), 1u) << "seeds should vary the interleaving";
}

}  // namespace
}  // namespace trellis::sim
