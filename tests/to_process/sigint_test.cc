// SIGINT to a parent with busy workers: run() throws KeyboardInterrupt and by then every
// worker has been killed and reaped (trio-parallel's test_proc.py, KeyboardInterrupt cases).
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "worker_functions.h"

extern char** environ;

namespace trellis::to_process {
namespace {

namespace fs = std::filesystem;

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST(ToProcessSigint, LeavesNoWorkerAlive) {
  const std::string dir = testing::make_temp_dir();
  const std::string report = dir + "/report";
  const std::string env = "TRELLIS_TO_PROCESS_SIGINT_CHILD=" + report;
  std::vector<char*> envp;
  for (char** e = environ; *e != nullptr; ++e) envp.push_back(*e);
  envp.push_back(const_cast<char*>(env.c_str()));
  envp.push_back(nullptr);
  char self[] = "/proc/self/exe";
  char* argv[] = {self, nullptr};
  pid_t child = 0;
  ASSERT_EQ(::posix_spawn(&child, "/proc/self/exe", nullptr, nullptr, argv, envp.data()), 0);
  // A hang guard, not a timing assertion.
  for (int i = 0; i < 30000 && read_file(report).find("busy") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ASSERT_NE(read_file(report).find("busy"), std::string::npos);
  ASSERT_EQ(::kill(child, SIGINT), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 130);
  EXPECT_EQ(read_file(report), "busy\nclean\n");
  fs::remove_all(dir);
}

}  // namespace
}  // namespace trellis::to_process
