// trellis/posix/internal/posix_processes.cc — see posix_processes.h.

#include "trellis/posix/internal/posix_processes.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "trellis/base/assert.h"
#include "trellis/core/errors.h"
#include "trellis/core/lowlevel.h"
#include "trellis/core/os_error.h"
#include "trellis/posix/internal/epoll_io.h"

extern char** environ;

namespace trellis::posix::internal {
namespace {

// A descriptor closed on every path out of spawn() unless released.
class OwnedFd {
 public:
  OwnedFd() = default;
  explicit OwnedFd(int fd) : fd_(fd) {}
  OwnedFd(const OwnedFd&) = delete;
  OwnedFd& operator=(const OwnedFd&) = delete;
  ~OwnedFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const noexcept { return fd_; }
  int release() noexcept { return std::exchange(fd_, -1); }
  void reset(int fd) noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

int set_nonblocking(int fd) {
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) return errno;
  return 0;
}

// The return code of a reaped child: exit status, or -signal.
int returncode_of(const siginfo_t& info) {
  if (info.si_code == CLD_EXITED) return info.si_status;
  return -info.si_status;  // CLD_KILLED, CLD_DUMPED
}

int open_pidfd(int pid) {
#ifdef SYS_pidfd_open
  const long fd = ::syscall(SYS_pidfd_open, pid, 0);
  if (fd >= 0) {
    ::fcntl(static_cast<int>(fd), F_SETFD, FD_CLOEXEC);
    return static_cast<int>(fd);
  }
#else
  (void)pid;
#endif
  return -1;
}

// RAII for the posix_spawn attribute objects.
struct SpawnSetup {
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attributes;
  SpawnSetup() {
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attributes);
  }
  ~SpawnSetup() {
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attributes);
  }
};

using StdioModes = std::array<Stdio, 3>;  // stdin, stdout, stderr
using StdioFds = std::array<OwnedFd, 3>;

// Makes a pipe for every stream whose mode is kPipe: the parent's end (nonblocking) and the
// child's end. Returns 0 or an errno; the ends made so far close with the arrays.
int open_pipes(const StdioModes& modes, StdioFds& parent_end, StdioFds& child_end) {
  for (int stream = 0; stream < 3; ++stream) {
    if (modes[stream] != Stdio::kPipe) continue;
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return errno;
    // stdin: the child reads fds[0]; stdout/stderr: the child writes fds[1].
    const bool child_reads = stream == 0;
    parent_end[stream].reset(child_reads ? fds[1] : fds[0]);
    child_end[stream].reset(child_reads ? fds[0] : fds[1]);
    if (const int error = set_nonblocking(parent_end[stream].get())) return error;
  }
  return 0;
}

// Adds the actions that give the child its stdin, stdout and stderr. Returns 0 or an errno.
int add_stdio_actions(posix_spawn_file_actions_t& actions, const StdioModes& modes,
                      const StdioFds& child_end) {
  for (int stream = 0; stream < 3; ++stream) {
    int error = 0;
    switch (modes[stream]) {
      case Stdio::kInherit:
        break;
      case Stdio::kPipe:
        // dup2 clears FD_CLOEXEC on the copy; the original closes at exec.
        error = posix_spawn_file_actions_adddup2(&actions, child_end[stream].get(), stream);
        break;
      case Stdio::kDevNull:
        error = posix_spawn_file_actions_addopen(&actions, stream, "/dev/null",
                                                 stream == 0 ? O_RDONLY : O_WRONLY, 0);
        break;
      case Stdio::kStdout:
        error = posix_spawn_file_actions_adddup2(&actions, 1, 2);
        break;
    }
    if (error != 0) return error;
  }
  return 0;
}

// The child starts with no signal blocked and every signal at its default action: the
// handlers and mask of the run are not the program's business.
void reset_signals_in_child(posix_spawnattr_t& attributes) {
  sigset_t all;
  sigset_t none;
  sigfillset(&all);
  sigemptyset(&none);
  posix_spawnattr_setsigdefault(&attributes, &all);
  posix_spawnattr_setsigmask(&attributes, &none);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
}

// `strings` as the null-terminated array of C strings that exec takes (pointing into them).
std::vector<char*> c_string_array(const std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (const std::string& s : strings) out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

}  // namespace

PosixProcesses::PosixProcesses(EpollIo& io, ThreadFacet& threads)
    : io_(io), threads_(threads), use_pidfd_(std::getenv("TRELLIS_NO_PIDFD") == nullptr) {}

PosixProcesses::~PosixProcesses() {
  while (!children_.empty()) release(children_.begin()->first);
}

IoResult<std::pair<IoHandle, IoHandle>> PosixProcesses::pipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) return {{}, errno};
  return {{IoHandle{fds[0]}, IoHandle{fds[1]}}, 0};
}

IoResult<SpawnedProcess> PosixProcesses::spawn(const ProcessSpec& spec) {
  if (!spec.host.empty()) {
    throw UsageError("open_process: cannot start '" + (spec.argv.empty() ? "" : spec.argv[0]) +
                     "' on host '" + spec.host +
                     "': the real backend starts processes on this machine only (hosts "
                     "exist in a simulated World)");
  }
  if (spec.argv.empty()) return {{}, EINVAL};
  if (spec.stdin_mode == Stdio::kStdout || spec.stdout_mode == Stdio::kStdout) {
    return {{}, EINVAL};
  }
  SpawnSetup setup;
  // Parent ends (returned) and child ends (closed after the spawn), per stream.
  StdioFds parent_end;
  StdioFds child_end;
  const StdioModes modes = {spec.stdin_mode, spec.stdout_mode, spec.stderr_mode};
  if (const int error = open_pipes(modes, parent_end, child_end)) return {{}, error};
  if (const int error = add_stdio_actions(setup.actions, modes, child_end)) return {{}, error};
  if (spec.cwd.has_value()) {
    if (const int error = posix_spawn_file_actions_addchdir_np(&setup.actions, spec.cwd->c_str())) {
      return {{}, error};
    }
  }
  reset_signals_in_child(setup.attributes);

  std::vector<char*> argv = c_string_array(spec.argv);
  std::vector<char*> envp;
  char** env = environ;
  if (spec.env.has_value()) {
    envp = c_string_array(*spec.env);
    env = envp.data();
  }
  pid_t pid = 0;
  // glibc's posix_spawnp reports exec failures (ENOENT, EACCES) as its result.
  if (const int error =
          posix_spawnp(&pid, argv[0], &setup.actions, &setup.attributes, argv.data(), env)) {
    return {{}, error};
  }
  Child record;
  record.pid = pid;
  record.pidfd = use_pidfd_ ? open_pidfd(pid) : -1;
  const std::uint64_t id = next_id_++;
  children_.emplace(id, record);

  SpawnedProcess spawned;
  spawned.id = id;
  spawned.pid = pid;
  spawned.stdin_pipe = IoHandle{parent_end[0].release()};
  spawned.stdout_pipe = IoHandle{parent_end[1].release()};
  spawned.stderr_pipe = IoHandle{parent_end[2].release()};
  return {spawned, 0};
}

PosixProcesses::Child& PosixProcesses::child(std::uint64_t id) {
  auto it = children_.find(id);
  if (it == children_.end()) throw UsageError("process " + std::to_string(id) + " is unknown");
  return it->second;
}

bool PosixProcesses::try_reap(Child& record) {
  if (record.returncode.has_value()) return true;
  siginfo_t info{};
  if (::waitid(P_PID, static_cast<id_t>(record.pid), &info, WEXITED | WNOHANG) != 0) {
    if (errno == EINTR) return false;
    throw OSError(errno, "waitid for pid " + std::to_string(record.pid));
  }
  if (info.si_pid == 0) return false;  // still running
  record.returncode = returncode_of(info);
  close_pidfd(record);
  return true;
}

void PosixProcesses::close_pidfd(Child& record) noexcept {
  if (record.pidfd >= 0) {
    io_.close(IoHandle{record.pidfd});
    record.pidfd = -1;
  }
}

std::optional<int> PosixProcesses::poll(std::uint64_t id) {
  Child& record = child(id);
  try_reap(record);
  return record.returncode;
}

int PosixProcesses::wait(std::uint64_t id) {
  if (child(id).waiting) {
    throw BusyResourceError("another task is already waiting for this process");
  }
  child(id).waiting = true;
  struct Clear {
    PosixProcesses& self;
    std::uint64_t id;
    ~Clear() {
      if (auto it = self.children_.find(id); it != self.children_.end()) {
        it->second.waiting = false;
      }
    }
  } clear{*this, id};
  // Look the child up again after every park (never keep a reference across one).
  while (!try_reap(child(id))) {
    if (const int pidfd = child(id).pidfd; pidfd >= 0) {
      try {
        io_.wait_readable(IoHandle{pidfd});
      } catch (const ClosedResourceError&) {
        // Another task's poll() reaped the child and closed its pidfd under us: the exit
        // code is recorded, and the next try_reap() returns it.
        TRELLIS_ASSERT(child(id).returncode.has_value());
      }
      continue;
    }
    // No pidfd: a worker thread blocks until the child has exited (without reaping it), then
    // the loop reaps. A cancelled wait abandons the job; the thread ends when the child does.
    struct Waiter {
      lowlevel::Task* task;
    };
    auto waiter = std::make_shared<Waiter>(Waiter{&lowlevel::current_task()});
    const int pid = child(id).pid;
    const ThreadFacet::JobId job = threads_.start_job(
        [pid] {
          siginfo_t info{};
          while (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOWAIT) != 0 &&
                 errno == EINTR) {
          }
        },
        [waiter] {
          if (lowlevel::Task* task = std::exchange(waiter->task, nullptr)) {
            lowlevel::reschedule(*task);
          }
        });
    lowlevel::wait_task_rescheduled(
        [&](std::exception_ptr) {
          waiter->task = nullptr;
          threads_.abandon_job(job);
          return lowlevel::Abort::kSucceeded;
        },
        "process exit");
  }
  return *child(id).returncode;
}

int PosixProcesses::send_signal(std::uint64_t id, int signo) {
  Child& record = child(id);
  if (try_reap(record)) return 0;
  // Not reaped: the pid is still ours (at worst a zombie), so it names this child.
  if (::kill(record.pid, signo) != 0) return errno;
  return 0;
}

void PosixProcesses::release(std::uint64_t id) noexcept {
  auto it = children_.find(id);
  if (it == children_.end()) return;
  Child& record = it->second;
  if (!record.returncode.has_value()) {
    ::kill(record.pid, SIGKILL);
    siginfo_t info{};
    while (::waitid(P_PID, static_cast<id_t>(record.pid), &info, WEXITED) != 0 && errno == EINTR) {
    }
  }
  close_pidfd(record);
  children_.erase(it);
}

}  // namespace trellis::posix::internal
