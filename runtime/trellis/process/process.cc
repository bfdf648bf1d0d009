// trellis/process/process.cc — see process.h.

#include "trellis/process/process.h"

#include <errno.h>

#include <array>
#include <span>
#include <string>
#include <utility>

#include "trellis/core/cancel_scope.h"
#include "trellis/core/errors.h"
#include "trellis/core/lowlevel.h"
#include "trellis/core/nursery.h"
#include "trellis/core/os_error.h"
#include "trellis/core/run.h"
#include "trellis/core/signal_facet.h"
#include "trellis/sync/lock.h"

namespace trellis {
namespace {

std::string quote_command(const std::vector<std::string>& args) {
  std::string text;
  for (const std::string& arg : args) {
    if (!text.empty()) text += ' ';
    const bool plain = !arg.empty() && arg.find_first_of(" \t\n'\"\\$`") == std::string::npos;
    if (plain) {
      text += arg;
    } else {
      text += '\'';
      for (char c : arg) {
        if (c == '\'') {
          text += "'\\''";
        } else {
          text += c;
        }
      }
      text += '\'';
    }
  }
  return text;
}

std::string describe_returncode(int returncode) {
  if (returncode < 0) {
    return std::string("died with ") + signal_name(-returncode);
  }
  return "returned non-zero exit status " + std::to_string(returncode);
}

ProcessFacet& current_processes(const char* operation) {
  Backend& backend = lowlevel::current_backend();
  ProcessFacet* processes = backend.processes();
  if (processes == nullptr || backend.io() == nullptr) {
    throw UsageError(std::string(operation) + ": the " + std::string(backend.name()) +
                     " backend cannot run processes");
  }
  return *processes;
}

}  // namespace

struct Process::State {
  // Closed when the run ends: the facet and the pipes' IoFacet are gone then (the backend
  // killed and reaped the child on its way out).
  RunToken run;
  ProcessFacet* facet = nullptr;
  std::uint64_t id = 0;
  int pid = 0;
  std::vector<std::string> args;
  std::optional<PipeSendStream> stdin_pipe;
  std::optional<PipeReceiveStream> stdout_pipe;
  std::optional<PipeReceiveStream> stderr_pipe;
  Lock wait_lock;  // one task talks to the facet; the others queue behind it (Trio's)

  ~State() {
    if (!run.run_active()) {
      // Outlived its run: nothing to close or release any more.
      for (PipeEnd* end : std::initializer_list<PipeEnd*>{stdin_pipe ? &*stdin_pipe : nullptr,
                                                          stdout_pipe ? &*stdout_pipe : nullptr,
                                                          stderr_pipe ? &*stderr_pipe : nullptr}) {
        if (end != nullptr) end->abandon();
      }
      return;
    }
    // Pipes first (their handles belong to the IoFacet), then the child: killed if running.
    stdin_pipe.reset();
    stdout_pipe.reset();
    stderr_pipe.reset();
    if (facet != nullptr) facet->release(id);
  }
};

Process::Process(std::unique_ptr<State> state) : state_(std::move(state)) {}
Process::Process(Process&&) noexcept = default;
Process& Process::operator=(Process&&) noexcept = default;
Process::~Process() = default;

Process::State& Process::state() const {
  if (state_ == nullptr) throw UsageError("Process: used after being moved from");
  if (!state_->run.run_active()) {
    throw UsageError(
        "Process " + std::to_string(state_->pid) +
        ": the run that opened it has ended (a child still running then was killed and reaped)");
  }
  return *state_;
}

int Process::pid() const {
  if (state_ == nullptr) throw UsageError("Process: used after being moved from");
  return state_->pid;
}
const std::vector<std::string>& Process::args() const {
  if (state_ == nullptr) throw UsageError("Process: used after being moved from");
  return state_->args;
}

std::optional<int> Process::returncode() {
  State& s = state();
  return s.facet->poll(s.id);
}

int Process::wait() {
  State& s = state();
  if (std::optional<int> code = s.facet->poll(s.id)) {
    checkpoint();
    return *code;
  }
  s.wait_lock.acquire();
  struct Release {
    Lock& lock;
    ~Release() { lock.release(); }
  } release{s.wait_lock};
  // Another waiter may have seen the exit while we queued.
  if (std::optional<int> code = s.facet->poll(s.id)) return *code;
  return s.facet->wait(s.id);
}

void Process::send_signal(int signo) {
  State& s = state();
  if (const int error = s.facet->send_signal(s.id, signo)) {
    throw OSError(error,
                  std::string("kill pid ") + std::to_string(s.pid) + " with " + signal_name(signo));
  }
}

PipeSendStream* Process::stdin_stream() {
  State& s = state();
  return s.stdin_pipe.has_value() ? &*s.stdin_pipe : nullptr;
}
PipeReceiveStream* Process::stdout_stream() {
  State& s = state();
  return s.stdout_pipe.has_value() ? &*s.stdout_pipe : nullptr;
}
PipeReceiveStream* Process::stderr_stream() {
  State& s = state();
  return s.stderr_pipe.has_value() ? &*s.stderr_pipe : nullptr;
}

void Process::close() {
  State& s = state();
  CancelScope shield(kNoDeadline, true);
  shield.run([&] {
    if (s.stdin_pipe) s.stdin_pipe->close();
    if (s.stdout_pipe) s.stdout_pipe->close();
    if (s.stderr_pipe) s.stderr_pipe->close();
  });
  try {
    wait();
  } catch (...) {
    if (!s.facet->poll(s.id).has_value()) {
      kill();
      CancelScope waiting(kNoDeadline, true);
      waiting.run([&] { wait(); });
    }
    throw;
  }
}

Process open_process(std::vector<std::string> argv, ProcessOptions options) {
  if (argv.empty()) throw std::invalid_argument("open_process: the command is empty");
  if (options.stdin_mode == Stdio::kStdout || options.stdout_mode == Stdio::kStdout) {
    throw std::invalid_argument("open_process: only stderr can go to stdout (Stdio::kStdout)");
  }
  ProcessFacet& facet = current_processes("open_process");
  IoFacet& io = lowlevel::current_io();
  ProcessSpec spec;
  spec.argv = argv;
  spec.cwd = std::move(options.cwd);
  spec.host = std::move(options.host);
  if (options.env.has_value()) {
    std::vector<std::string> entries;
    for (const auto& [name, value] : *options.env) {
      if (name.empty() || name.find('=') != std::string::npos) {
        throw std::invalid_argument("open_process: bad environment variable name '" + name + "'");
      }
      entries.push_back(name + "=" + value);
    }
    spec.env = std::move(entries);
  }
  spec.stdin_mode = options.stdin_mode;
  spec.stdout_mode = options.stdout_mode;
  spec.stderr_mode = options.stderr_mode;
  IoResult<SpawnedProcess> spawned = facet.spawn(spec);
  if (!spawned.ok()) {
    std::string what = "start " + quote_command(argv);
    if (spec.cwd.has_value()) what += " in " + *spec.cwd;
    throw OSError(spawned.error, what);
  }
  auto state = std::make_unique<Process::State>();
  state->run = lowlevel::current_run_token();
  state->facet = &facet;
  state->id = spawned.value.id;
  state->pid = spawned.value.pid;
  state->args = std::move(argv);
  if (spawned.value.stdin_pipe.valid()) state->stdin_pipe.emplace(io, spawned.value.stdin_pipe);
  if (spawned.value.stdout_pipe.valid()) {
    state->stdout_pipe.emplace(io, spawned.value.stdout_pipe);
  }
  if (spawned.value.stderr_pipe.valid()) {
    state->stderr_pipe.emplace(io, spawned.value.stderr_pipe);
  }
  return Process(std::move(state));
}

CalledProcessError::CalledProcessError(CompletedProcess completed)
    : std::runtime_error("command '" + quote_command(completed.args) + "' " +
                         describe_returncode(completed.returncode)),
      completed_(std::move(completed)) {}

namespace {

// run_process's checks of its options, and the options of the open_process under it.
ProcessOptions process_options_for_run(RunProcessOptions& options) {
  if (options.input.has_value() ? false : options.stdin_mode == Stdio::kPipe) {
    throw std::invalid_argument(
        "run_process: stdin_mode kPipe has no one to write it; pass `input` instead");
  }
  if (options.stdout_mode == Stdio::kPipe || options.stderr_mode == Stdio::kPipe) {
    throw std::invalid_argument(
        "run_process: use capture_stdout / capture_stderr to read the child's output");
  }
  ProcessOptions process_options;
  process_options.cwd = std::move(options.cwd);
  process_options.env = std::move(options.env);
  process_options.host = std::move(options.host);
  process_options.stdin_mode = options.input.has_value() ? Stdio::kPipe : options.stdin_mode;
  process_options.stdout_mode = options.capture_stdout ? Stdio::kPipe : options.stdout_mode;
  process_options.stderr_mode = options.capture_stderr ? Stdio::kPipe : options.stderr_mode;
  return process_options;
}

// Trio's default deliver_cancel: SIGTERM, then SIGKILL after `grace`.
std::function<void(Process&)> terminate_then_kill(Duration grace) {
  return [grace](Process& child) {
    try {
      child.terminate();
      sleep(grace);
      child.kill();
    } catch (const OSError&) {
      // The child is gone or unreachable: run_process's wait() ends either way.
    }
  };
}

// Reads `stream` to its end into `into`, then closes it.
void read_all(PipeReceiveStream& stream, std::string& into) {
  std::array<std::byte, 65536> buffer;
  for (;;) {
    const std::size_t got = stream.receive_some(buffer);
    if (got == 0) break;
    into.append(reinterpret_cast<const char*>(buffer.data()), got);
  }
  stream.close();
}

}  // namespace

CompletedProcess run_process(std::vector<std::string> argv, RunProcessOptions options) {
  ProcessOptions process_options = process_options_for_run(options);
  checkpoint_if_cancelled();
  Process process = open_process(std::move(argv), std::move(process_options));
  CompletedProcess completed;
  std::function<void(Process&)> deliver_cancel = options.deliver_cancel
                                                     ? std::move(options.deliver_cancel)
                                                     : terminate_then_kill(options.terminate_grace);
  // Shielded: it must run while everything around it is being cancelled. It outlives the
  // nursery below, where its task runs.
  CancelScope killer_scope(kNoDeadline, true);

  open_nursery([&](Nursery& nursery) {
    try {
      if (options.input.has_value()) {
        nursery.start_soon([&process, &options] {
          PipeSendStream& stream = *process.stdin_stream();
          try {
            stream.send_all(std::as_bytes(std::span(*options.input)));
          } catch (const BrokenResourceError&) {
            // The child exited without reading everything: not an error (as Trio).
          }
          stream.close();
        });
      }
      if (options.capture_stdout) {
        nursery.start_soon([&] { read_all(*process.stdout_stream(), completed.stdout_data); });
      }
      if (options.capture_stderr) {
        nursery.start_soon([&] { read_all(*process.stderr_stream(), completed.stderr_data); });
      }
      process.wait();
    } catch (...) {
      CancelScope shield(kNoDeadline, true);
      shield.run([&] {
        nursery.start_soon([&] { killer_scope.run([&] { deliver_cancel(process); }); });
        process.wait();
        killer_scope.cancel();
      });
      throw;
    }
  });

  completed.args = process.args();
  completed.returncode = *process.returncode();
  if (options.check && completed.returncode != 0) throw CalledProcessError(std::move(completed));
  return completed;
}

}  // namespace trellis
