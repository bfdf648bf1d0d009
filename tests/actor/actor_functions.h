// Shared by the actor tests: helpers that look at processes and files.
#pragma once

#include <string>
#include <vector>

namespace trellis::actor::testing {

// The pids of this process's live children (every thread's), from /proc.
std::vector<int> live_children();
// The process no longer runs (gone, or a zombie not ours to reap).
bool process_gone(int pid);
// A fresh empty directory.
std::string make_temp_dir();
// Waits (in a run, with trellis::sleep) until `path` exists; false after `seconds`.
bool wait_for_file(const std::string& path, int seconds = 60);
std::string read_file(const std::string& path);
void write_file(const std::string& path, const std::string& text);
// Waits (in a run) until the process is gone; false after `seconds`.
bool wait_until_gone(int pid, int seconds = 60);
// main() of a misbehaving child actor (the test binary re-executed with
// TRELLIS_ACTOR_TEST_MISBEHAVE=<how>): it connects and says hello as an actor does, then
// breaks the protocol as `how` says. Never returns.
// how == "ghost": ghost_child_main (registry_connection_test.cc).
[[noreturn]] void misbehaving_child_main(int argc, char** argv, const std::string& how);
// Registers a made-up actor "ghost" with the registrar over a connection it then closes
// without unregistering, says hello to its parent, and waits for its cancel request. In a
// run (or a simulated host); returns the exit status.
int ghost_child_main(const std::vector<std::string>& argv);

}  // namespace trellis::actor::testing
