// The worker functions the to_process tests call (this file's registrations run in the test
// process and in every worker, which is the same executable).
#include "worker_functions.h"

#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <stdexcept>
#include <thread>

#include "trellis/to_process.h"
#include "trellis/trellis.h"

namespace trellis::to_process::testing {
namespace {

namespace fs = std::filesystem;

int add(int a, int b) {
  return a + b;
}
std::string greet(std::string name) {
  return "hello, " + name;
}
std::vector<int> reversed(std::vector<int> v) {
  return {v.rbegin(), v.rend()};
}
std::map<std::string, int> lengths(std::vector<std::string> words) {
  std::map<std::string, int> out;
  for (const std::string& w : words) out[w] = static_cast<int>(w.size());
  return out;
}
Point moved(Point p, int dx) {
  p.x += dx;
  p.label += "'";
  return p;
}
void nothing() {}
// Writes to stdout and stdin: neither is the protocol's pipe in a worker.
int noisy(int x) {
  std::printf("noise on stdout\n");
  std::fflush(stdout);
  char byte;
  if (::read(0, &byte, 1) != 0) return -1;  // /dev/null: end of file at once
  return x;
}
int pid() {
  return static_cast<int>(::getpid());
}
int throws_out_of_range(int i) {
  throw std::out_of_range("index " + std::to_string(i));
}
int do_abort() {
  std::abort();
}
int do_segfault() {
  ::raise(SIGSEGV);
  return 0;
}
int do_exit(int code) {
  ::_exit(code);
}
int do_sigkill() {
  ::raise(SIGKILL);
  return 0;
}

// Blocks until `path` exists (a test creates it when it wants the call to end).
std::string wait_for_path(std::string path) {
  while (!fs::exists(path)) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  return "saw " + path;
}

// Marks itself running in `dir`, holds on until `release` exists, returns the most calls it
// ever saw running at once.
int count_running(std::string dir, std::string release) {
  const fs::path mine = fs::path(dir) / std::to_string(::getpid());
  std::ofstream(mine).put('x');
  int most = 0;
  for (;;) {
    int now = 0;
    for ([[maybe_unused]] const auto& entry : fs::directory_iterator(dir)) ++now;
    most = std::max(most, now);
    if (fs::exists(release)) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  fs::remove(mine);
  return most;
}

bool initialized = false;
void init_flag() {
  initialized = true;
}
bool was_initialized() {
  return initialized;
}
void init_fails() {
  throw std::runtime_error("no tables");
}
bool always_retire() {
  return true;
}

}  // namespace

TRELLIS_WORKER_FUNCTION("add", add);
TRELLIS_WORKER_FUNCTION("greet", greet);
TRELLIS_WORKER_FUNCTION("reversed", reversed);
TRELLIS_WORKER_FUNCTION("lengths", lengths);
TRELLIS_WORKER_FUNCTION("moved", moved);
TRELLIS_WORKER_FUNCTION("nothing", nothing);
TRELLIS_WORKER_FUNCTION("noisy", noisy);
TRELLIS_WORKER_FUNCTION("pid", pid);
TRELLIS_WORKER_FUNCTION("throws_out_of_range", throws_out_of_range);
TRELLIS_WORKER_FUNCTION("abort", do_abort);
TRELLIS_WORKER_FUNCTION("segfault", do_segfault);
TRELLIS_WORKER_FUNCTION("exit", do_exit);
TRELLIS_WORKER_FUNCTION("sigkill", do_sigkill);
TRELLIS_WORKER_FUNCTION("wait_for_path", wait_for_path);
TRELLIS_WORKER_FUNCTION("count_running", count_running);
TRELLIS_WORKER_FUNCTION("init_flag", init_flag);
TRELLIS_WORKER_FUNCTION("was_initialized", was_initialized);
TRELLIS_WORKER_FUNCTION("init_fails", init_fails);
TRELLIS_WORKER_FUNCTION("always_retire", always_retire);
TRELLIS_WORKER_FUNCTION("twice", [](int x) { return 2 * x; });

int sigint_child_main(const char* report) {
  ::unsetenv("TRELLIS_TO_PROCESS_SIGINT_CHILD");  // the workers must not inherit it
  const std::string never = std::string(report) + ".never";
  try {
    run([&] {
      Options options{.cancellable = true};
      open_nursery([&](Nursery& nursery) {
        for (int i = 0; i < 2; ++i) {
          nursery.start_soon([&] { run_sync<std::string>(options, "wait_for_path", never); });
        }
        while (live_children().size() < 2) sleep(std::chrono::milliseconds(2));
        sleep(std::chrono::milliseconds(20));  // both calls sent (not required: any state works)
        std::ofstream(report) << "busy\n";
      });
    });
  } catch (const KeyboardInterrupt&) {
    std::ofstream(report, std::ios::app) << (live_children().empty() ? "clean\n" : "children\n");
    return 130;
  }
  return 1;
}

std::set<int> live_children() {
  std::set<int> children;
  for (const auto& task : fs::directory_iterator("/proc/self/task")) {
    std::ifstream in(task.path() / "children");
    int pid = 0;
    while (in >> pid) children.insert(pid);
  }
  return children;
}

std::size_t open_fd_count() {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& entry : fs::directory_iterator("/proc/self/fd")) ++n;
  return n;
}

std::string make_temp_dir() {
  std::string pattern = (fs::temp_directory_path() / "trellis-to-process-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  return pattern;
}

}  // namespace trellis::to_process::testing
