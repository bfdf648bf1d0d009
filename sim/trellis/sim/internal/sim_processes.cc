// trellis/sim/internal/sim_processes.cc — see sim_processes.h.

#include "trellis/sim/internal/sim_processes.h"

#include <errno.h>
#include <signal.h>

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "trellis/base/assert.h"
#include "trellis/core/errors.h"
#include "trellis/core/lowlevel.h"
#include "trellis/core/run.h"
#include "trellis/io/pipe_stream.h"
#include "trellis/sim/internal/sim_backend.h"
#include "trellis/sim/program.h"

namespace trellis::sim::internal {
namespace {

// An inherited or /dev/null stream: reads end of file, swallows writes.
class NullStream final : public SendStream, public ReceiveStream {
 public:
  void send_all(std::span<const std::byte>) override { checkpoint(); }
  void wait_send_all_might_not_block() override { checkpoint(); }
  std::size_t receive_some(std::span<std::byte> buffer) override {
    if (buffer.empty()) throw std::invalid_argument("receive_some: the buffer must not be empty");
    checkpoint();
    return 0;
  }
  void close() override { checkpoint(); }
};

}  // namespace

// What a running program holds: its ends of the pipes and its ProgramIo.
struct ProgramState {
  std::optional<PipeReceiveStream> in_pipe;
  std::optional<PipeSendStream> out_pipe;
  std::optional<PipeSendStream> err_pipe;
  NullStream null;
};

IoResult<std::pair<IoHandle, IoHandle>> SimProcesses::pipe() {
  const HostState* host = current_host_();
  if (host == nullptr) throw UsageError("pipes in a simulation must be made in a host's task");
  if (!host->alive) return {{}, ENETDOWN};  // as spawn(): a crashed host makes nothing
  return {backend_.make_pipe(), 0};
}

void SimProcesses::make_stdio_pipes(const ProcessSpec& spec, ProgramState& state,
                                    SpawnedProcess& spawned, HostState& spawner,
                                    HostState& program) {
  IoFacet& io = *backend_.io();
  if (spec.stdin_mode == Stdio::kPipe) {
    const auto [read_end, write_end] = backend_.make_pipe(program, spawner);
    state.in_pipe.emplace(io, read_end);
    spawned.stdin_pipe = write_end;
  }
  if (spec.stdout_mode == Stdio::kPipe) {
    const auto [read_end, write_end] = backend_.make_pipe(spawner, program);
    state.out_pipe.emplace(io, write_end);
    spawned.stdout_pipe = read_end;
  }
  if (spec.stderr_mode == Stdio::kPipe) {
    const auto [read_end, write_end] = backend_.make_pipe(spawner, program);
    state.err_pipe.emplace(io, write_end);
    spawned.stderr_pipe = read_end;
  }
}

IoResult<HostState*> SimProcesses::program_host(const ProcessSpec& spec, HostState& spawner) {
  if (spec.host.empty()) return {&spawner, 0};
  // Another host: as a remote shell would, over a management network that partitions do
  // not cut; the program is that host's task (its network calls, its crash).
  HostState* host = host_named_ ? host_named_(spec.host) : nullptr;
  if (host == nullptr) return {nullptr, EHOSTUNREACH};
  if (!host->alive) return {nullptr, EHOSTDOWN};
  return {host, 0};
}

IoResult<SpawnedProcess> SimProcesses::spawn(const ProcessSpec& spec) {
  HostState* host = current_host_();
  if (host == nullptr) {
    throw UsageError(
        "open_process in a simulation must run in a host's task (Host::start), not in the "
        "world's driver");
  }
  if (spec.argv.empty() || spec.stdin_mode == Stdio::kStdout ||
      spec.stdout_mode == Stdio::kStdout) {
    return {{}, EINVAL};
  }
  if (!host->alive) return {{}, ENETDOWN};
  HostState* spawner = host;
  const IoResult<HostState*> target_host = program_host(spec, *spawner);
  if (target_host.error != 0) return {{}, target_host.error};
  host = target_host.value;
  auto found = host->programs.find(spec.argv[0]);
  if (found == host->programs.end()) return {{}, ENOENT};
  Program program = found->second;

  auto state = std::make_shared<ProgramState>();
  SpawnedProcess spawned;
  make_stdio_pipes(spec, *state, spawned, *spawner, *host);
  const std::uint64_t id = next_id_++;
  TRELLIS_ASSERT(!records_.contains(id));  // ids are never reused
  Record& rec = records_[id];
  rec.host = host;
  rec.pid = next_pid_++;
  spawned.id = id;
  spawned.pid = rec.pid;

  const bool err_to_out = spec.stderr_mode == Stdio::kStdout;
  auto io_args = std::make_shared<ProcessSpec>(spec);
  HostState* target = host == spawner ? nullptr : host;
  lowlevel::spawn_system_task(
      [this, id, program = std::move(program), state, io_args, err_to_out, target] {
        if (target != nullptr) bind_current_task_(*target);
        SendStream& out = state->out_pipe ? static_cast<SendStream&>(*state->out_pipe)
                                          : static_cast<SendStream&>(state->null);
        SendStream& err = err_to_out        ? out
                          : state->err_pipe ? static_cast<SendStream&>(*state->err_pipe)
                                            : static_cast<SendStream&>(state->null);
        ReceiveStream& in = state->in_pipe ? static_cast<ReceiveStream&>(*state->in_pipe)
                                           : static_cast<ReceiveStream&>(state->null);
        ProgramIo program_io{io_args->argv,
                             io_args->env.value_or(std::vector<std::string>{}),
                             io_args->cwd.value_or(""),
                             in,
                             out,
                             err};
        int returncode = 0;
        CancelScope scope;
        record(id).scope = &scope;
        try {
          scope.run([&] { returncode = program(program_io); });
        } catch (...) {
          // An uncaught exception aborts a real program.
          returncode = -SIGABRT;
        }
        record(id).scope = nullptr;
        if (record(id).killed_by != 0) returncode = -record(id).killed_by;
        // The program's ends close as it exits (readers see end of file).
        state->in_pipe.reset();
        state->out_pipe.reset();
        state->err_pipe.reset();
        finished(id, returncode);
      },
      "program " + spec.argv[0]);
  return {spawned, 0};
}

SimProcesses::Record& SimProcesses::record(std::uint64_t id) {
  auto it = records_.find(id);
  if (it == records_.end()) throw UsageError("process " + std::to_string(id) + " is unknown");
  return it->second;
}

void SimProcesses::finished(std::uint64_t id, int returncode) {
  Record& rec = record(id);
  TRELLIS_ASSERT(!rec.returncode.has_value());  // a program exits once
  TRELLIS_ASSERT(rec.scope == nullptr);         // and only after its scope is gone
  rec.returncode = returncode;
  if (rec.waiter != nullptr) lowlevel::reschedule(*std::exchange(rec.waiter, nullptr));
  if (rec.released) records_.erase(id);
}

std::optional<int> SimProcesses::poll(std::uint64_t id) {
  return record(id).returncode;
}

int SimProcesses::wait(std::uint64_t id) {
  Record& rec = record(id);
  if (rec.returncode.has_value()) return *rec.returncode;
  if (rec.waiter != nullptr)
    throw BusyResourceError("another task is already waiting for this process");
  rec.waiter = &lowlevel::current_task();
  lowlevel::wait_task_rescheduled(
      [this, id](std::exception_ptr) {
        record(id).waiter = nullptr;
        return lowlevel::Abort::kSucceeded;
      },
      "fake program exit");
  // Rescheduled only by finished(), which set the code first.
  TRELLIS_ASSERT(record(id).returncode.has_value());
  return *record(id).returncode;
}

void SimProcesses::terminate(Record& rec, int signo) {
  if (rec.returncode.has_value() || rec.killed_by != 0) return;
  TRELLIS_ASSERT(signo > 0 && signo < NSIG);
  rec.killed_by = signo;
  if (rec.scope != nullptr) rec.scope->cancel();
}

int SimProcesses::send_signal(std::uint64_t id, int signo) {
  Record& rec = record(id);
  if (signo < 0 || signo >= NSIG) return EINVAL;
  if (signo == 0 || rec.returncode.has_value()) return 0;
  if (signo == SIGSTOP || signo == SIGCONT || signo == SIGCHLD || signo == SIGWINCH ||
      signo == SIGURG) {
    return 0;  // stopping is not modelled; these are ignored by default
  }
  terminate(rec, signo);
  return 0;
}

void SimProcesses::release(std::uint64_t id) noexcept {
  auto it = records_.find(id);
  if (it == records_.end()) return;
  if (it->second.returncode.has_value()) {
    records_.erase(it);
    return;
  }
  // Killed; the record goes when its task has unwound.
  it->second.released = true;
  terminate(it->second, SIGKILL);
  TRELLIS_ASSERT(it->second.killed_by != 0);
}

void SimProcesses::host_crashed(const HostState& host) {
  for (auto& [id, rec] : records_) {
    if (rec.host == &host) terminate(rec, SIGKILL);
    // Nothing of a crashed host runs on: every program is dead or dying.
    TRELLIS_ASSERT(rec.host != &host || rec.returncode.has_value() || rec.killed_by != 0);
  }
}

int SimProcesses::kill_running(const HostState& host, std::uint32_t which, int signo) {
  std::vector<Record*> candidates;  // ordered by id: spawn order
  for (auto& [id, rec] : records_) {
    if (rec.host == &host && !rec.returncode.has_value() && rec.killed_by == 0) {
      candidates.push_back(&rec);
    }
  }
  if (candidates.empty()) return 0;
  Record& chosen = *candidates[which % candidates.size()];
  terminate(chosen, signo);
  TRELLIS_ASSERT(chosen.killed_by == signo);
  return chosen.pid;
}

std::size_t SimProcesses::running() const noexcept {
  std::size_t n = 0;
  for (const auto& [id, rec] : records_) n += rec.returncode.has_value() ? 0 : 1;
  return n;
}

}  // namespace trellis::sim::internal
