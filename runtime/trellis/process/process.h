// trellis/process/process.h — child processes (Trio's open_process / run_process).
//
//   // Run to completion, capturing output; a non-zero exit throws CalledProcessError.
//   trellis::CompletedProcess done =
//       trellis::run_process({"git", "rev-parse", "HEAD"}, {.capture_stdout = true});
//
//   // Or talk to it while it runs.
//   trellis::Process child = trellis::open_process(
//       {"cat"}, {.stdin_mode = trellis::Stdio::kPipe, .stdout_mode = trellis::Stdio::kPipe});
//   child.stdin_stream()->send_all(bytes);
//   child.stdin_stream()->close();
//   ... child.stdout_stream()->receive_some(buffer) ...
//   int code = child.wait();
//
// Return codes follow Python's subprocess: the exit status, or minus the signal that killed
// the child. No zombie is ever left: wait() reaps; destroying a Process whose child still
// runs kills (SIGKILL) and reaps it; a cancelled run_process terminates the child (SIGTERM,
// then SIGKILL after a grace period) and waits for it before re-raising Cancelled.
//
// A Process belongs to the run that opened it: when the run ends its child is killed and
// reaped, and a Process that outlived the run throws UsageError from every call but pid()
// and args(). Needs a
// backend with processes (the epoll backend, the simulator's fake programs); elsewhere
// open_process throws UsageError.
#pragma once

#include <signal.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "trellis/core/process_facet.h"
#include "trellis/core/time.h"
#include "trellis/io/pipe_stream.h"

namespace trellis {

struct ProcessOptions {
  std::optional<std::string> cwd{};                         // unset: the parent's
  std::optional<std::map<std::string, std::string>> env{};  // the whole environment; unset: ours
  Stdio stdin_mode = Stdio::kInherit;                       // kStdout is for stderr only
  Stdio stdout_mode = Stdio::kInherit;
  Stdio stderr_mode = Stdio::kInherit;
  // Empty: this machine. In a simulated World: the host (name or address) to start the
  // program on; the real backend refuses a host (UsageError). See ProcessSpec::host.
  std::string host{};
};

class Process {
 public:
  Process(Process&&) noexcept;
  Process& operator=(Process&&) noexcept;
  // Closes the pipes; a child still running is killed and reaped. Never blocks for long.
  ~Process();

  int pid() const;
  const std::vector<std::string>& args() const;
  // The return code once the child has exited (and is reaped), else nullopt. Not a
  // checkpoint.
  std::optional<int> returncode();
  // Waits until the child exits and returns its return code. A checkpoint (also when it had
  // exited already); cancellable (the child keeps running). Several tasks may wait.
  int wait();
  // Sends signo; does nothing once the child was reaped. Throws OSError if kill(2) fails.
  void send_signal(int signo);
  void terminate() { send_signal(SIGTERM); }
  void kill() { send_signal(SIGKILL); }
  // The parent's end of a stream opened with Stdio::kPipe, else nullptr.
  PipeSendStream* stdin_stream();
  PipeReceiveStream* stdout_stream();
  PipeReceiveStream* stderr_stream();
  // Trio's Process.aclose: closes the pipes, then waits for the child; if cancelled while
  // waiting, kills it and waits (shielded) before re-raising.
  void close();

 private:
  friend Process open_process(std::vector<std::string>, ProcessOptions);
  struct State;
  explicit Process(std::unique_ptr<State> state);
  State& state() const;

  std::unique_ptr<State> state_;
};

// Starts argv (argv[0]: a path, or a name searched in PATH). Throws std::invalid_argument
// for an empty argv or kStdout as stdin/stdout mode, OSError for a program that cannot be
// started (ENOENT: not found, EACCES: not executable; the message names it), UsageError
// outside a run or on a backend without processes. Not a checkpoint.
Process open_process(std::vector<std::string> argv, ProcessOptions options = {});

struct CompletedProcess {
  std::vector<std::string> args;
  int returncode = 0;
  std::string stdout_data;  // only with capture_stdout
  std::string stderr_data;  // only with capture_stderr
};

// run_process(check = true) saw a non-zero return code.
class CalledProcessError : public std::runtime_error {
 public:
  CalledProcessError(CompletedProcess completed);
  int returncode() const noexcept { return completed_.returncode; }
  const std::vector<std::string>& args() const noexcept { return completed_.args; }
  const std::string& stdout_data() const noexcept { return completed_.stdout_data; }
  const std::string& stderr_data() const noexcept { return completed_.stderr_data; }
  const CompletedProcess& completed() const noexcept { return completed_; }

 private:
  CompletedProcess completed_;
};

struct RunProcessOptions {
  // Bytes written to the child's stdin, which is then closed (the default, as Trio: an empty
  // stdin). nullopt: stdin is `stdin_mode` (kInherit or kDevNull; kPipe makes no sense here).
  std::optional<std::string> input = std::string();
  Stdio stdin_mode = Stdio::kInherit;
  bool capture_stdout = false;          // collect stdout into stdout_data
  bool capture_stderr = false;          // collect stderr into stderr_data
  Stdio stdout_mode = Stdio::kInherit;  // when not captured
  Stdio stderr_mode = Stdio::kInherit;  // when not captured (kStdout: 2>&1)
  bool check = true;                    // non-zero return code -> CalledProcessError
  std::optional<std::string> cwd{};
  std::optional<std::map<std::string, std::string>> env{};
  // How a cancelled run_process stops the child. Unset: SIGTERM, then SIGKILL if it is still
  // running after terminate_grace. run_process waits for the child to exit either way.
  std::function<void(Process&)> deliver_cancel{};
  Duration terminate_grace = std::chrono::seconds(5);
  std::string host{};  // ProcessOptions::host
};

// Runs argv to completion, feeding `input` and collecting what was asked for, as Trio. A
// checkpoint. Cancellation (or an error in a helper task) stops the child as
// `deliver_cancel` says and waits for it, then re-raises. Throws CalledProcessError (check),
// and what open_process throws.
CompletedProcess run_process(std::vector<std::string> argv, RunProcessOptions options = {});

}  // namespace trellis
