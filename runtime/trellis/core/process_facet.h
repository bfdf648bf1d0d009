// trellis/core/process_facet.h — the Backend facet for child processes and pipes.
//
// open_process / run_process (process/process.h) stand on it. The facet spawns a program
// with its standard streams inherited, redirected to /dev/null, or connected to pipes whose
// parent ends are IoFacet handles (nonblocking), waits for it to exit, signals it, and reaps
// it. Like the other facets it reports errno values and knows nothing of streams or
// cancellation policy (kill-on-cancel lives above it).
//
// Invariant (real backend): every child spawned is reaped — by wait/poll once it exited, or
// by release(), which kills a child still running and reaps it. No zombie is left behind.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "trellis/core/io_facet.h"

namespace trellis {

// What a child's standard stream is connected to.
enum class Stdio {
  kInherit,  // the parent's
  kPipe,     // a new pipe; the parent end is handed back
  kDevNull,  // /dev/null
  kStdout,   // stderr only: the same as the child's stdout (2>&1)
};

struct ProcessSpec {
  // argv[0] is the program: a path, or a name searched in PATH if it has no '/'.
  std::vector<std::string> argv{};
  std::optional<std::string> cwd{};               // unset: the parent's
  std::optional<std::vector<std::string>> env{};  // "NAME=value" entries; unset: the parent's
  Stdio stdin_mode = Stdio::kInherit;
  Stdio stdout_mode = Stdio::kInherit;
  Stdio stderr_mode = Stdio::kInherit;
  // Empty: this machine. Otherwise the host to start the program on, by name or address: a
  // simulated World's facet starts it there (it runs as that host's task, dies with that
  // host); a real facet has one machine only and refuses it (UsageError).
  std::string host{};
};

struct SpawnedProcess {
  std::uint64_t id = 0;  // the facet's name for the child
  int pid = 0;
  IoHandle stdin_pipe;  // valid iff that stream is kPipe: the parent's end
  IoHandle stdout_pipe;
  IoHandle stderr_pipe;
};

class ProcessFacet {
 public:
  virtual ~ProcessFacet() = default;

  // Starts the program. Errors are errno values: ENOENT (no such program), EACCES, E2BIG,
  // EMFILE... (nothing is left open or running then). Run-loop thread only; never blocks.
  virtual IoResult<SpawnedProcess> spawn(const ProcessSpec& spec) = 0;
  // The child's return code if it has exited (and is now reaped): its exit status, or minus
  // the number of the signal that killed it (as Python's subprocess). Never blocks.
  virtual std::optional<int> poll(std::uint64_t id) = 0;
  // Parks the calling task until the child exits; returns its return code. A cancel point
  // (Cancelled leaves the child running and the facet waiting for nothing); not a checkpoint
  // by itself.
  virtual int wait(std::uint64_t id) = 0;
  // Sends signo to the child; does nothing once it was reaped (the pid may be reused).
  // Returns 0 or an errno.
  virtual int send_signal(std::uint64_t id, int signo) = 0;
  // The caller is done with the child: if still running it is killed (SIGKILL) and reaped.
  // Never throws; blocks only for the moment a killed child takes to die.
  virtual void release(std::uint64_t id) noexcept = 0;
  // A new pipe: {read end, write end}, both nonblocking IoFacet handles.
  virtual IoResult<std::pair<IoHandle, IoHandle>> pipe() = 0;
};

}  // namespace trellis
