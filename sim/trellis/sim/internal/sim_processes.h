// trellis/sim/internal/sim_processes.h — the simulator's ProcessFacet: fake programs
// (sim/program.h) run as tasks of the spawning host (or of the host ProcessSpec::host names),
// connected by the backend's pipes.
//
// Deterministic: a spawn starts the program's task in the run's system nursery (it inherits
// the spawner's host binding), ids come from a counter, and every record lives in an ordered
// map. Waiting parks on the record; a signal cancels the program's scope.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <utility>

#include "trellis/core/cancel_scope.h"
#include "trellis/core/process_facet.h"
#include "trellis/core/task.h"
#include "trellis/sim/internal/host_state.h"

namespace trellis::sim::internal {

class SimBackend;
struct ProgramState;

class SimProcesses final : public ProcessFacet {
 public:
  SimProcesses(SimBackend& backend, std::function<HostState*()> current_host,
               std::function<HostState*(const std::string&)> host_named,
               std::function<void(HostState&)> bind_current_task)
      : backend_(backend),
        current_host_(std::move(current_host)),
        host_named_(std::move(host_named)),
        bind_current_task_(std::move(bind_current_task)) {}

  // Throws UsageError outside a host's task.
  IoResult<SpawnedProcess> spawn(const ProcessSpec& spec) override;
  std::optional<int> poll(std::uint64_t id) override;
  int wait(std::uint64_t id) override;
  int send_signal(std::uint64_t id, int signo) override;
  void release(std::uint64_t id) noexcept override;
  IoResult<std::pair<IoHandle, IoHandle>> pipe() override;

  // The host crashed: its running programs are killed (SIGKILL).
  void host_crashed(const HostState& host);
  // Terminates program `which` % n of the n that host runs and no signal has terminated yet,
  // counted in spawn order, as by signo. Returns its pid; 0 (and nothing done) if n is 0.
  int kill_running(const HostState& host, std::uint32_t which, int signo);
  std::size_t running() const noexcept;

 private:
  struct Record {
    const HostState* host = nullptr;
    int pid = 0;
    std::optional<int> returncode;
    CancelScope* scope = nullptr;  // the program's, while it runs
    int killed_by = 0;             // the first signal that terminated it
    lowlevel::Task* waiter = nullptr;
    bool released = false;
  };
  // The spawned program's ends of the pipes spec asks for (in state), the spawner's in
  // spawned.
  // spawner: the spawner's host (its ends), program: the program's host (its ends).
  void make_stdio_pipes(const ProcessSpec& spec, ProgramState& state, SpawnedProcess& spawned,
                        HostState& spawner, HostState& program);
  // The host the program runs on: the spawner's, or the one spec.host names (EHOSTUNREACH:
  // no such host, EHOSTDOWN: it is down).
  IoResult<HostState*> program_host(const ProcessSpec& spec, HostState& spawner);
  Record& record(std::uint64_t id);
  void terminate(Record& record, int signo);
  void finished(std::uint64_t id, int returncode);

  SimBackend& backend_;
  std::function<HostState*()> current_host_;
  std::function<HostState*(const std::string&)> host_named_;
  std::function<void(HostState&)> bind_current_task_;
  std::uint64_t next_id_ = 1;
  int next_pid_ = 1000;
  std::map<std::uint64_t, Record> records_;
};

}  // namespace trellis::sim::internal
