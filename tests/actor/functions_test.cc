// The functions the test actors run (registered in the test binary, which children re-execute)
// and the helpers of actor_functions.h.
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "actor_functions.h"
#include "trellis/actor.h"
#include "trellis/core/errors.h"
#include "trellis/core/run.h"
#include "trellis/to_process/frame.h"

namespace trellis::actor::testing {

std::vector<int> live_children() {
  std::vector<int> pids;
  DIR* tasks = ::opendir("/proc/self/task");
  if (tasks == nullptr) return pids;
  while (const dirent* entry = ::readdir(tasks)) {
    if (entry->d_name[0] == '.') continue;
    std::ifstream children(std::string("/proc/self/task/") + entry->d_name + "/children");
    int pid = 0;
    while (children >> pid) pids.push_back(pid);
  }
  ::closedir(tasks);
  return pids;
}

bool process_gone(int pid) {
  if (::kill(pid, 0) != 0 && errno == ESRCH) return true;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return true;
  const std::size_t paren = line.rfind(')');
  return paren != std::string::npos && paren + 2 < line.size() && line[paren + 2] == 'Z';
}

std::string make_temp_dir() {
  std::string pattern = "/tmp/trellis_actor_test_XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  return pattern;
}

bool wait_for_file(const std::string& path, int seconds) {
  for (int i = 0; i < seconds * 100; ++i) {
    if (::access(path.c_str(), F_OK) == 0) return true;
    trellis::sleep(std::chrono::milliseconds(10));
  }
  return false;
}

bool wait_until_gone(int pid, int seconds) {
  for (int i = 0; i < seconds * 100; ++i) {
    if (process_gone(pid)) return true;
    trellis::sleep(std::chrono::milliseconds(10));
  }
  return false;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

void write_file(const std::string& path, const std::string& text) {
  {
    std::ofstream out(path + ".tmp");
    out << text;
  }
  std::rename((path + ".tmp").c_str(), path.c_str());  // appears whole
}

namespace {

int connect_to_parent(int argc, char** argv, std::string& uid) {
  std::uint16_t port = 0;
  for (int i = 2; i < argc; ++i) {
    const std::string argument(argv[i]);
    if (argument.starts_with("--uid=")) uid = argument.substr(6);
    if (argument.starts_with("--parent=")) {
      port = static_cast<std::uint16_t>(std::stoi(argument.substr(argument.rfind(':') + 1)));
    }
  }
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) std::_Exit(5);
  return fd;
}

void write_all(int fd, const std::vector<char>& bytes) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t put = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (put <= 0) std::_Exit(6);
    done += static_cast<std::size_t>(put);
  }
}

// A well-formed frame of an unknown kind (checksum and all).
std::vector<char> unknown_kind_frame() {
  std::vector<char> frame = protocol::encode_cancel_actor();
  frame[5] = 42;
  const std::size_t body = frame.size() - to_process::kFrameTrailerSize;
  const std::uint32_t crc = to_process::crc32(std::span<const char>(frame.data(), body));
  for (int i = 0; i < 4; ++i) frame[body + i] = static_cast<char>(crc >> (24 - 8 * i));
  return frame;
}

}  // namespace

void misbehaving_child_main(int argc, char** argv, const std::string& how) {
  if (how == "ghost") {  // registry_connection_test.cc
    int status = 0;
    trellis::run([&] { status = ghost_child_main(std::vector<std::string>(argv, argv + argc)); });
    std::_Exit(status);
  }
  std::string uid;
  const int fd = connect_to_parent(argc, argv, uid);
  write_all(fd, protocol::encode_hello({"misbehaving", uid, ::getpid()}));
  // Wait for the first call, then answer it wrongly.
  char call[4096];
  if (::read(fd, call, sizeof call) <= 0) std::_Exit(0);
  if (how == "garbage") {
    write_all(fd, std::vector<char>{'n', 'o', 't', ' ', 'a', ' ', 'f', 'r', 'a', 'm', 'e'});
  } else if (how == "truncated") {
    std::vector<char> frame = protocol::encode_return(1, std::vector<char>{'\x01'});
    frame.resize(frame.size() - 3);
    write_all(fd, frame);
    std::_Exit(0);  // vanishes mid-message
  } else if (how == "unknown_kind") {
    write_all(fd, unknown_kind_frame());
  } else if (how == "bad_payload") {
    write_all(fd, to_process::encode_raw_frame(protocol::kActorFrameFormat,
                                               static_cast<std::uint8_t>(protocol::Kind::kReturn),
                                               0, std::vector<char>{'\xc1'}));
  }
  for (;;) {  // until the parent kills us
    char buffer[256];
    if (::read(fd, buffer, sizeof buffer) <= 0) std::_Exit(0);
  }
}

}  // namespace trellis::actor::testing

namespace {

using trellis::actor::testing::write_file;

int add(int a, int b) {
  return a + b;
}
TRELLIS_ACTOR_FUNCTION("add", add);

std::string greet(std::string who) {
  return "hello " + who + " from " + trellis::actor::current_actor_name();
}
TRELLIS_ACTOR_FUNCTION("greet", greet);

void fail(std::string message) {
  throw std::invalid_argument(message);
}
TRELLIS_ACTOR_FUNCTION("fail", fail);

int my_pid() {
  return ::getpid();
}
TRELLIS_ACTOR_FUNCTION("my_pid", my_pid);

void crash() {
  ::raise(SIGKILL);
}
TRELLIS_ACTOR_FUNCTION("crash", crash);

void sleep_forever() {
  trellis::sleep(std::chrono::hours(24 * 365));
}
TRELLIS_ACTOR_FUNCTION("sleep_forever", sleep_forever);

// Says when it starts and when it is cancelled.
void sleep_marking(std::string dir) {
  write_file(dir + "/started", "");
  try {
    sleep_forever();
  } catch (const trellis::Cancelled&) {
    write_file(dir + "/cancelled", "");
    throw;
  }
}
TRELLIS_ACTOR_FUNCTION("sleep_marking", sleep_marking);

// Ignores cancellation (a shield): its actor must be terminated by a signal.
void ignore_cancel(std::string dir, bool ignore_sigterm) {
  if (ignore_sigterm) ::signal(SIGTERM, SIG_IGN);
  write_file(dir + "/started", "");
  trellis::CancelScope shield(trellis::kNoDeadline, true);
  shield.run([] { sleep_forever(); });
}
TRELLIS_ACTOR_FUNCTION("ignore_cancel", ignore_cancel);

// A child that runs a grandchild which fails: the error travels up two levels.
void spawn_and_fail(std::string message) {
  trellis::actor::open_actor_nursery([&](trellis::actor::ActorNursery& an) {
    an.start_actor("grandchild").run<void>("fail", message);
  });
}
TRELLIS_ACTOR_FUNCTION("spawn_and_fail", spawn_and_fail);

// A child with a grandchild, both sleeping; reports the grandchild's pid in dir/grandchild.
void spawn_and_sleep(std::string dir, int depth) {
  trellis::actor::open_actor_nursery([&](trellis::actor::ActorNursery& an) {
    trellis::actor::Portal& child = an.start_actor("level" + std::to_string(depth));
    write_file(dir + "/pid" + std::to_string(depth), std::to_string(child.pid()));
    if (depth > 1) {
      child.run<void>("spawn_and_sleep", dir, depth - 1);
    } else {
      child.run<void>("sleep_forever");
    }
  });
}
TRELLIS_ACTOR_FUNCTION("spawn_and_sleep", spawn_and_sleep);

}  // namespace

namespace {

using trellis::actor::Context;
using trellis::actor::MsgStream;

// Echoes each message plus `offset` until the caller closes its stream; returns the count.
int echo_stream(Context& ctx, int offset) {
  ctx.started(offset);
  MsgStream stream = ctx.open_stream();
  int count = 0;
  for (;;) {
    int value = 0;
    try {
      value = stream.receive<int>();
    } catch (const trellis::EndOfChannel&) {
      break;
    }
    stream.send(value + offset);
    ++count;
  }
  return count;
}
TRELLIS_ACTOR_FUNCTION("echo_stream", echo_stream);

// Sends 0..n-1, closes its stream and returns n.
int produce(Context& ctx, int n) {
  ctx.started(std::string("producing"));
  MsgStream stream = ctx.open_stream();
  for (int i = 0; i < n; ++i) stream.send(i);
  stream.close();
  return n;
}
TRELLIS_ACTOR_FUNCTION("produce", produce);

void context_fails(Context& ctx) {
  ctx.started(1);
  throw std::out_of_range("context failure");
}
TRELLIS_ACTOR_FUNCTION("context_fails", context_fails);

// Starts, never opens its stream, sleeps until cancelled (marking it in dir).
void never_opens(Context& ctx, std::string dir) {
  ctx.started(0);
  sleep_marking(dir);
}
TRELLIS_ACTOR_FUNCTION("never_opens", never_opens);

}  // namespace

namespace {

// A child's own registry: it finds the grandchild it started.
int spawn_and_find() {
  return trellis::actor::open_actor_nursery([](trellis::actor::ActorNursery& an) {
    an.start_actor("gc");
    return trellis::actor::find_actor("gc").run<int>("add", 20, 1);
  });
}
TRELLIS_ACTOR_FUNCTION("spawn_and_find", spawn_and_find);

}  // namespace
