// serve_tcp against clients no one here wrote — a Python `socket` script and the Trio
// tutorial's echo client — and against fd exhaustion: a child process with a low
// RLIMIT_NOFILE (this same binary, re-executed with a filter, so the test runner's own limit
// is untouched) serves while the parent opens 2x RLIMIT_NOFILE connections, and keeps serving
// afterwards.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <string>
#include <vector>

#include "net_test_util.h"
#include "trellis/trellis.h"

extern char** environ;

namespace trellis {
namespace {

using Listeners = std::vector<SocketListener*>;

void echo_until_eof(SocketStream& stream) {
  std::vector<std::byte> buffer(4096);
  try {
    while (std::size_t n = stream.receive_some(buffer)) {
      stream.send_all(std::span(buffer).first(n));
    }
  } catch (const BrokenResourceError&) {
    // A client that resets is its own problem, not the server's.
  }
}

struct Child {
  pid_t pid = -1;
  int stdout_fd = -1;  // nonblocking read end of the child's stdout
};

// posix_spawn with stdout to a pipe (and `extra_fd` as fd 3 if >= 0).
Child spawn(const std::vector<std::string>& argv, const std::vector<std::string>& extra_env = {},
            int extra_fd = -1) {
  int out[2];
  EXPECT_EQ(::pipe2(out, O_CLOEXEC), 0);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  if (extra_fd >= 0) posix_spawn_file_actions_adddup2(&actions, extra_fd, 3);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<std::string> env_storage(extra_env);
  for (char** e = environ; *e != nullptr; ++e) env_storage.emplace_back(*e);
  std::vector<char*> env;
  for (std::string& e : env_storage) env.push_back(e.data());
  env.push_back(nullptr);
  Child child;
  const int error = ::posix_spawnp(&child.pid, args[0], &actions, nullptr, args.data(), env.data());
  posix_spawn_file_actions_destroy(&actions);
  ::close(out[1]);
  EXPECT_EQ(error, 0) << argv[0];
  ::fcntl(out[0], F_SETFL, O_NONBLOCK);
  child.stdout_fd = out[0];
  return child;
}

// Inside a run: reads the child's stdout until EOF or until `until` appears in it.
std::string read_output(int fd, const std::string& until = "") {
  IoFacet& io = lowlevel::current_io();
  std::string output;
  char buffer[4096];
  for (;;) {
    IoResult<std::size_t> got = io.read(IoHandle{fd}, buffer, sizeof buffer);
    if (got.error == EAGAIN) {
      io.wait_readable(IoHandle{fd});
      continue;
    }
    if (!got.ok() || got.value == 0) break;
    output.append(buffer, got.value);
    if (!until.empty() && output.find(until) != std::string::npos) break;
  }
  return output;
}

int wait_exit(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

// The first python3 on PATH (the one with Trio's dependencies, where there are several).
bool have_python() {
  return std::system("command -v python3 > /dev/null 2>&1") == 0;
}

TEST(ExternalClient, PythonSocketScriptTalksToServeTcp) {
  if (!have_python()) GTEST_SKIP() << "no python3 on PATH";
  const char* script = R"PY(
import socket, sys
port = int(sys.argv[1])
with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
    for message in [b"hello", b"x" * 100000, b"bye"]:
        s.sendall(message)
        got = b""
        while len(got) < len(message):
            chunk = s.recv(65536)
            if not chunk:
                sys.exit("server closed early")
            got += chunk
        assert got == message, (len(got), len(message))
    s.shutdown(socket.SHUT_WR)
    assert s.recv(1) == b"", "expected EOF after half-close"
print("python client OK")
)PY";
  run([&] {
    open_nursery([&](Nursery& n) {
      Listeners listeners = n.start<Listeners>([](TaskStatus<Listeners>& status) {
        serve_tcp(echo_until_eof, 0, {.host = "127.0.0.1", .task_status = &status});
      });
      const std::string port = std::to_string(listeners[0]->local_address().port());
      Child child = spawn({"python3", "-u", "-c", script, port});
      const std::string output = read_output(child.stdout_fd);
      lowlevel::current_io().close(IoHandle{child.stdout_fd});
      const int status = wait_exit(child.pid);
      EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << output;
      EXPECT_NE(output.find("python client OK"), std::string::npos) << output;
      n.cancel_scope().cancel();
    });
  });
}

// Trio's own tutorial client (docs/source/tutorial/echo-client.py), run with Trio from the
// mirrored source tree when it is on this machine.
TEST(ExternalClient, TrioTutorialEchoClientTalksToServeTcp) {
  const std::string mirror = "/work/.mirror/python-trio+trio/repo";
  if (!have_python() || ::access(mirror.c_str(), R_OK) != 0) {
    GTEST_SKIP() << "no python3 or no Trio mirror";
  }
  const std::string dir = "/tmp/trellis-trio-src-" + std::to_string(::getuid());
  // Extracted once per machine (the copy is reused by later runs).
  const std::string fetch =
      "(test -f " + dir + "/docs/source/tutorial/echo-client.py || (mkdir -p " + dir +
      " && git -C " + mirror + " archive HEAD src/trio " +
      "docs/source/tutorial/echo-client.py | tar -x -C " + dir + ")) 2>/dev/null";
  if (std::system(fetch.c_str()) != 0) GTEST_SKIP() << "could not extract Trio's sources";
  run([&] {
    open_nursery([&](Nursery& n) {
      Listeners listeners = n.start<Listeners>([](TaskStatus<Listeners>& status) {
        serve_tcp(echo_until_eof, 0, {.host = "127.0.0.1", .task_status = &status});
      });
      const std::string port = std::to_string(listeners[0]->local_address().port());
      // The tutorial hard-codes PORT = 12345; point it at our server.
      const std::string client = "import sys, runpy; sys.path.insert(0, '" + dir +
                                 "/src'); src = open('" + dir +
                                 "/docs/source/tutorial/echo-client.py').read()" +
                                 ".replace('PORT = 12345', 'PORT = " + port +
                                 "'); exec(compile(src, 'echo-client.py', " + "'exec'))";
      Child child = spawn({"python3", "-u", "-c", client});
      const std::string output = read_output(child.stdout_fd, "receiver: got data");
      ::kill(child.pid, SIGKILL);
      lowlevel::current_io().close(IoHandle{child.stdout_fd});
      wait_exit(child.pid);
      if (output.find("ModuleNotFoundError") != std::string::npos) {
        n.cancel_scope().cancel();
        GTEST_SKIP() << "Trio's dependencies are not installed for this python3:\n" << output;
      }
      EXPECT_NE(output.find("receiver: got data b'async can sometimes be confusing"),
                std::string::npos)
          << output;
      n.cancel_scope().cancel();
    });
  });
}

// ---- fd exhaustion ---------------------------------------------------------------------------

constexpr const char* kChildEnv = "TRELLIS_FD_EXHAUSTION_CHILD";
constexpr rlim_t kChildFdLimit = 64;

// Runs only as the child of FdExhaustion.ServeTcpSurvivesTwiceRlimitNofileConnections.
TEST(FdExhaustion, ChildServer) {
  if (std::getenv(kChildEnv) == nullptr) GTEST_SKIP() << "runs only as a child process";
  // UBSan's vptr check opens a pipe the first time it meets a (type, vtable) pair; out of
  // descriptors that fails and it reports a false "invalid vptr". So every code path the
  // server takes meets its types once (a full round trip, an OSError caught) before the limit
  // drops.
  try {
    throw OSError(EMFILE, "priming the sanitizer's type cache");
  } catch (const OSError& error) {
    EXPECT_EQ(error.errno_value(), EMFILE);
  }
  run([] {
    open_nursery([](Nursery& n) {
      Listeners listeners = n.start<Listeners>([](TaskStatus<Listeners>& status) {
        serve_tcp(echo_until_eof, 0, {.host = "127.0.0.1", .task_status = &status});
      });
      {
        SocketStream warm_up = open_tcp_stream("127.0.0.1", listeners[0]->local_address().port());
        warm_up.send_all(testing::bytes("warm-up"));
        EXPECT_EQ(testing::receive_exactly(warm_up, 7), "warm-up");
      }
      const rlimit limit{kChildFdLimit, kChildFdLimit};
      ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &limit), 0);
      const std::string port = std::to_string(listeners[0]->local_address().port()) + "\n";
      ASSERT_EQ(::write(3, port.data(), port.size()), static_cast<ssize_t>(port.size()));
      ::close(3);
      // Serve until the parent kills us.
    });
  });
}

// Blocking client helpers for the parent (outside any run).
int connect_blocking(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  const timeval timeout{20, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
  const SocketAddress address = *SocketAddress::parse("127.0.0.1", port);
  if (::connect(fd, address.data(), address.length()) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

bool round_trip(int fd, const std::string& message) {
  if (::send(fd, message.data(), message.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(message.size())) {
    return false;
  }
  std::string got;
  char buffer[256];
  while (got.size() < message.size()) {
    const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
    if (n <= 0) return false;
    got.append(buffer, static_cast<std::size_t>(n));
  }
  return got == message;
}

TEST(FdExhaustion, ServeTcpSurvivesTwiceRlimitNofileConnections) {
  int port_pipe[2];
  ASSERT_EQ(::pipe2(port_pipe, O_CLOEXEC), 0);
  Child child = spawn({"/proc/self/exe", "--gtest_filter=FdExhaustion.ChildServer"},
                      {std::string(kChildEnv) + "=1"}, port_pipe[1]);
  ::close(port_pipe[1]);
  ::fcntl(child.stdout_fd, F_SETFL, 0);
  std::string port_text;
  char c = 0;
  while (::read(port_pipe[0], &c, 1) == 1 && c != '\n') port_text += c;
  ::close(port_pipe[0]);
  ASSERT_FALSE(port_text.empty()) << "the child server did not report its port";
  const auto port = static_cast<std::uint16_t>(std::stoi(port_text));

  // 2x the child's RLIMIT_NOFILE connections, all held open: the server runs out of
  // descriptors (EMFILE) part-way; the kernel still completes the rest into the backlog.
  std::vector<int> clients;
  for (rlim_t i = 0; i < 2 * kChildFdLimit; ++i) {
    const int fd = connect_blocking(port);
    ASSERT_GE(fd, 0) << "connection " << i << ": " << errno_name(errno);
    clients.push_back(fd);
  }
  // A connection accepted before the exhaustion is still served meanwhile.
  EXPECT_TRUE(round_trip(clients.front(), "still serving while out of descriptors"));
  int status = 0;
  EXPECT_EQ(::waitpid(child.pid, &status, WNOHANG), 0) << "the server died";
  for (int fd : clients) ::close(fd);

  // Once descriptors free up, the server accepts again: a fresh client gets its echo.
  const int fresh = connect_blocking(port);
  ASSERT_GE(fresh, 0);
  EXPECT_TRUE(round_trip(fresh, "served after the storm"));
  ::close(fresh);
  EXPECT_EQ(::waitpid(child.pid, &status, WNOHANG), 0) << "the server died";

  ::kill(child.pid, SIGKILL);
  wait_exit(child.pid);
  // The child's gtest output is on its stdout; show it only when something went wrong.
  if (HasFailure()) {
    std::string output;
    char buffer[4096];
    ssize_t n = 0;
    while ((n = ::read(child.stdout_fd, buffer, sizeof buffer)) > 0) {
      output.append(buffer, static_cast<std::size_t>(n));
    }
    ADD_FAILURE() << "child output:\n" << output;
  }
  ::close(child.stdout_fd);
}

}  // namespace
}  // namespace trellis
