// tests/cli/cli_process.h — running the `trellis` tool (or a shell script that runs it) as a
// child process with an environment the test controls, and reading what it wrote.
//
// The child's environment is this process's without any sharding variable (GTEST_SHARD_INDEX,
// GTEST_TOTAL_SHARDS, JOB_COMPLETION_INDEX, TRELLIS_SHARDS: a test binary run under CTest or
// GoogleTest sharding must not shard the sweeps it starts), plus `env`; the trellis tool's
// folder is first on PATH, so scripts can call it `trellis`.
#pragma once

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#ifndef TRELLIS_CLI_PATH
#error "TRELLIS_CLI_PATH names the trellis tool (set by tests/CMakeLists.txt)"
#endif

extern char** environ;

namespace trellis::cli_testing {

struct ChildResult {
  int exit_code = -1;  // -1: did not exit normally
  std::string output;  // stdout and stderr
};

inline std::vector<std::string> child_environment(const std::map<std::string, std::string>& env) {
  static const char* const kDropped[] = {"GTEST_SHARD_INDEX", "GTEST_TOTAL_SHARDS",
                                         "JOB_COMPLETION_INDEX", "TRELLIS_SHARDS", "PATH"};
  std::vector<std::string> out;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry = *e;
    const std::string name = entry.substr(0, entry.find('='));
    bool dropped = env.count(name) != 0;
    for (const char* d : kDropped) dropped = dropped || name == d;
    if (!dropped) out.push_back(entry);
  }
  const std::string tool_dir = std::filesystem::path(TRELLIS_CLI_PATH).parent_path().string();
  const char* path = std::getenv("PATH");
  if (env.count("PATH") == 0) {
    out.push_back("PATH=" + tool_dir + ":" + (path != nullptr ? path : "/usr/bin:/bin"));
  }
  for (const auto& [name, value] : env) out.push_back(name + "=" + value);
  return out;
}

// Runs argv (argv[0] a path) in `cwd` with child_environment(env); waits for it.
inline ChildResult run_child(const std::vector<std::string>& argv,
                             const std::map<std::string, std::string>& env = {},
                             const std::string& cwd = ".") {
  std::vector<std::string> environment = child_environment(env);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<char*> envp;
  for (std::string& e : environment) envp.push_back(e.data());
  envp.push_back(nullptr);
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return {};
  const pid_t pid = ::fork();
  if (pid < 0) return {};
  if (pid == 0) {
    ::dup2(fds[1], STDOUT_FILENO);
    ::dup2(fds[1], STDERR_FILENO);
    if (::chdir(cwd.c_str()) != 0) ::_exit(127);
    ::execve(args[0], args.data(), envp.data());
    ::_exit(127);
  }
  ::close(fds[1]);
  ChildResult result;
  std::array<char, 4096> buffer{};
  ssize_t n = 0;
  while ((n = ::read(fds[0], buffer.data(), buffer.size())) > 0) {
    result.output.append(buffer.data(), static_cast<std::size_t>(n));
  }
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  return result;
}

// `trellis args...`
inline ChildResult run_trellis(std::vector<std::string> args,
                               const std::map<std::string, std::string>& env = {},
                               const std::string& cwd = ".") {
  args.insert(args.begin(), TRELLIS_CLI_PATH);
  return run_child(args, env, cwd);
}

// A bash script (with -euo pipefail).
inline ChildResult run_bash(const std::string& script,
                            const std::map<std::string, std::string>& env = {},
                            const std::string& cwd = ".") {
  return run_child({"/bin/bash", "-euo", "pipefail", "-c", script}, env, cwd);
}

inline std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// A fresh folder, removed with the object.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "trellis-cli-XXXXXX").string();
    if (::mkdtemp(pattern.data()) != nullptr) path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    if (!path_.empty()) std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

}  // namespace trellis::cli_testing
