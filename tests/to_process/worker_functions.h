// Worker functions and helpers shared by the to_process tests (registered in
// worker_functions_test.cc).
#pragma once

#include <msgpack.hpp>

#include <set>
#include <string>
#include <vector>

namespace trellis::to_process::testing {

struct Point {
  int x = 0;
  int y = 0;
  std::string label;
  std::vector<double> weights;
  MSGPACK_DEFINE(x, y, label, weights);
  friend bool operator==(const Point&, const Point&) = default;
};

// The process's children not yet reaped (zombies included), from /proc.
std::set<int> live_children();
// The number of open file descriptors of this process.
std::size_t open_fd_count();
// A fresh empty directory under the build's temporary directory.
std::string make_temp_dir();

// The program sigint_test.cc interrupts: a run with two workers busy in cancellable calls
// that never end. It writes "busy" to `report` once both run; after SIGINT, when run() has
// thrown KeyboardInterrupt, it appends "clean" if it has no child left, else "children",
// and returns 130.
int sigint_child_main(const char* report);

}  // namespace trellis::to_process::testing
