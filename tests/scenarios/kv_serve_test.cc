// The flagship scenario as real programs: three `trellis serve kv` processes on loopback
// (epoll, real files), driven by the scenario's own KvClient, stopped with SIGINT — the
// KeyboardInterrupt path of trellis::run — and restarted from their logs.
#include <signal.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "trellis/scenarios/kv/kv_client.h"
#include "trellis/trellis.h"

#ifndef TRELLIS_CLI_PATH
#error "TRELLIS_CLI_PATH names the trellis tool (set by tests/CMakeLists.txt)"
#endif

namespace trellis {
namespace {

using namespace std::chrono_literals;
using scenarios::kv::KvClient;

// Reads from stream until a newline; returns the line (without it), or what came before end
// of file.
std::string read_line(ReceiveStream& stream) {
  std::string line;
  std::array<std::byte, 1> byte;
  while (stream.receive_some(byte) == 1) {
    const char c = static_cast<char>(byte[0]);
    if (c == '\n') break;
    line += c;
  }
  return line;
}

struct Server {
  std::optional<Process> process;
  std::string address;  // "127.0.0.1:PORT"
  std::string banner;
};

// Starts `trellis serve kv` on `port` (0: any) and waits for its banner.
void start(Server& server, const std::string& directory, int port) {
  server.process.emplace(
      open_process({TRELLIS_CLI_PATH, "serve", "kv",
                    "--options=directory=" + directory + ",port=" + std::to_string(port)},
                   {.stdout_mode = Stdio::kPipe}));
  fail_after(30s, [&] { server.banner = read_line(*server.process->stdout_stream()); });
  const std::string marker = "serving kv replica on ";
  ASSERT_EQ(server.banner.rfind(marker, 0), 0u) << server.banner;
  const std::string rest = server.banner.substr(marker.size());
  server.address = rest.substr(0, rest.find(' '));
}

// SIGINT: the server must say so and exit 0.
void stop(Server& server) {
  server.process->send_signal(SIGINT);
  std::string rest;
  fail_after(30s, [&] {
    std::array<std::byte, 256> buffer;
    for (;;) {
      const std::size_t got = server.process->stdout_stream()->receive_some(buffer);
      if (got == 0) break;
      rest.append(reinterpret_cast<const char*>(buffer.data()), got);
    }
    EXPECT_EQ(server.process->wait(), 0);
  });
  EXPECT_NE(rest.find("stopped by SIGINT"), std::string::npos) << rest;
  server.process.reset();
}

int port_of(const std::string& address) {
  return std::stoi(address.substr(address.rfind(':') + 1));
}

TEST(KvServe, ThreeProcessesServeStopOnSigintAndRecover) {
  const std::filesystem::path root =
      std::filesystem::path(::testing::TempDir()) / ("kv_serve." + std::to_string(::getpid()));
  std::filesystem::remove_all(root);
  run([&] {
    std::array<Server, 3> servers;
    std::vector<std::string> addresses;
    for (int i = 0; i < 3; ++i) {
      start(servers[i], (root / ("r" + std::to_string(i))).string(), 0);
      addresses.push_back(servers[i].address);
    }
    KvClient client({.replicas = addresses, .client_id = 1});
    fail_after(30s, [&] {
      client.write("x", "one");
      EXPECT_EQ(client.read("x"), "one");
    });

    // One replica down: a majority still serves reads and writes.
    const int port0 = port_of(servers[0].address);
    stop(servers[0]);
    fail_after(30s, [&] {
      client.write("x", "two");
      EXPECT_EQ(client.read("x"), "two");
    });

    // Back on its port, recovered from its log; then the other two go: the restarted one
    // and a second must hold the newest value.
    start(servers[0], (root / "r0").string(), port0);
    EXPECT_NE(servers[0].banner.find("stores recovered"), std::string::npos);
    stop(servers[1]);
    fail_after(30s, [&] { EXPECT_EQ(client.read("x"), "two"); });

    stop(servers[0]);
    stop(servers[2]);
  });
  std::filesystem::remove_all(root);
}

TEST(KvServe, BadUsageIsAClearError) {
  run([] {
    CompletedProcess no_directory =
        run_process({TRELLIS_CLI_PATH, "serve", "kv"}, {.capture_stderr = true, .check = false});
    EXPECT_EQ(no_directory.returncode, 2);
    EXPECT_NE(no_directory.stderr_data.find("directory"), std::string::npos)
        << no_directory.stderr_data;
    CompletedProcess unknown =
        run_process({TRELLIS_CLI_PATH, "serve", "nope"}, {.capture_stderr = true, .check = false});
    EXPECT_EQ(unknown.returncode, 2);
    EXPECT_NE(unknown.stderr_data.find("nope"), std::string::npos) << unknown.stderr_data;
    CompletedProcess bad_port =
        run_process({TRELLIS_CLI_PATH, "serve", "kv", "--options=directory=/tmp/x,port=99999"},
                    {.capture_stderr = true, .check = false});
    EXPECT_EQ(bad_port.returncode, 2);
    EXPECT_NE(bad_port.stderr_data.find("bad port"), std::string::npos) << bad_port.stderr_data;
  });
}

}  // namespace
}  // namespace trellis
