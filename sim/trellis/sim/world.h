// trellis/sim/world.h — World: a deterministic simulated cluster. One virtual clock, one run
// loop, many hosts; the network between them is simulated behind the same Backend facets the
// real epoll backend offers, so production code runs unchanged.
//
//   trellis::sim::World world({.seed = 42});
//   trellis::sim::Host& server = world.add_host("server", "10.0.0.1");
//   trellis::sim::Host& client = world.add_host("client", "10.0.0.2");
//   server.start([] { serve_echo(7); });           // production code
//   client.start([] { talk_to("server", 7); });
//   world.run([&] {                                  // the driver: faults and checks
//     trellis::sleep(std::chrono::seconds(5));
//     world.partition(server, client);
//     trellis::sleep(std::chrono::seconds(5));
//     world.heal_all();
//   });
//
// Everything comes from Config::seed: the schedule (Config::policy), latencies, faults. The
// same seed and program give the same run, event for event (trace().hash()). Virtual time
// moves only when every task is blocked, straight to the next event: hours of timeouts take
// milliseconds.
//
// Hosts: each host's tasks (its main and everything they spawn) know their host
// (current_host()); a host's network calls use its address. crash() cancels all its tasks
// and drops its sockets without a FIN; every network call of a crashed host fails with
// ENETDOWN until restart() runs its main again; its disk keeps only what was durable
// (disk_config.h). send_signal() delivers a signal to the host's open_signal_receiver blocks
// (or its default action). The driver runs outside every host: it
// injects faults and checks invariants; it does not use the network itself.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "trellis/base/prng.h"
#include "trellis/core/cancel_scope.h"
#include "trellis/core/nursery.h"
#include "trellis/core/schedule_policy.h"
#include "trellis/core/task_local.h"
#include "trellis/sim/cpu_config.h"
#include "trellis/sim/disk_config.h"
#include "trellis/sim/fault_config.h"
#include "trellis/sim/fault_plan.h"
#include "trellis/sim/internal/cancel_fault_injector.h"
#include "trellis/sim/internal/host_clock.h"
#include "trellis/sim/internal/host_cpu_policy.h"
#include "trellis/sim/internal/host_state.h"
#include "trellis/sim/internal/sim_backend.h"
#include "trellis/sim/internal/sim_clock.h"
#include "trellis/sim/internal/sim_file_system.h"
#include "trellis/sim/network_config.h"
#include "trellis/sim/trace.h"

namespace trellis::sim {

class Host;
Host* current_host();

enum class PolicyKind { kFifo, kRandom, kPct, kDecisions };

struct Config {
  std::uint64_t seed = 1;
  PolicyKind policy = PolicyKind::kRandom;
  int pct_depth = 3;  // kPct
  // kPct: expected steps of a run; 0 = not given: the harness (gtest.h, `trellis`) learns it
  // from a first run (learn_pct_steps, policy_spec.h), a World alone uses
  // kPctStepsEstimateDefault.
  std::uint64_t pct_steps_estimate = 0;
  std::vector<std::uint32_t> decisions{};  // kDecisions
  // When set, makes the run's policy instead of `policy` (given the policy's seed): the
  // exhaustive explorer (explore.h) drives each run's choices through it.
  std::function<std::unique_ptr<SchedulePolicy>(std::uint64_t policy_seed)> policy_factory{};
  NetworkConfig network{};
  DiskConfig disk{};
  // Virtual CPU time of hosts' steps (cpu_config.h): on by default.
  CpuConfig cpu{};
  // Fault points (buggify.h): each point is enabled in a seed with this chance, and an
  // enabled point fires with this chance per evaluation (parts per million). 0 disables.
  unsigned buggify_enable_ppm = 250'000;
  unsigned buggify_fire_ppm = 250'000;
  // Trace events kept in memory for reports and Chrome traces (the hash covers all).
  std::size_t trace_events_kept = Trace::kEventsKeptMaxDefault;
  // Swarm testing and cancellation as a fault (fault_config.h).
  bool swarm = false;
  CancelFaultConfig cancel_faults{};
  // Faults the world injects by itself at given times (fault_plan.h).
  FaultPlan fault_plan{};
  // Lock order is always checked in a World (sync/lock_order.h). false: an inversion does not
  // throw LockOrderError; locks are still tracked, so a resulting deadlock is reported (when
  // the driver returns, or when the whole run blocks) with each lock's holder.
  bool lock_order_errors = true;
};

class World;

class Host {
 public:
  const std::string& name() const noexcept { return state_.name; }
  const std::string& address() const noexcept { return state_.address; }
  bool alive() const noexcept { return state_.alive; }
  // Crashes so far.
  std::uint64_t incarnation() const noexcept { return state_.incarnation; }

  // Sets the host's main (its init process) and starts it: now if the world is running,
  // else when run() begins. Run again by restart(). Throws UsageError if already started.
  void start(std::function<void()> main);
  // Installs a fake program under `name` (argv[0] of open_process / run_process in this
  // host's tasks; see program.h). Replaces one of the same name; survives crashes.
  void install_program(std::string name, Program program);
  // Cancels every task of the host, drops its sockets (peers are not told), and makes its
  // network calls fail with ENETDOWN. Idempotent. Callable from any task, the host's own
  // included (it then unwinds at its next checkpoint).
  void crash();
  // Runs main again (once the crashed incarnation's tasks have unwound). Throws UsageError
  // if the host is alive or was never started.
  void restart();
  // Sends signo to the host's process, as kill(2) would (sim/internal/sim_signals.h): the
  // innermost open_signal_receiver block of the host listening for it gets it; with none,
  // SIGCHLD, SIGURG, SIGWINCH, SIGCONT (and the stop signals, not simulated) are ignored and
  // every other signal crashes the host (as crash(): unsynced disk data is lost). Dropped
  // if the host is down. Delivered at once, recorded in the trace. Callable from any task of
  // the running world (the driver, a fault-injecting task, a host's own task). Not a
  // checkpoint. Throws std::invalid_argument unless 1 <= signo <= 64 (0, kill's existence
  // probe, has nothing to probe here: ask alive()), UsageError outside the world's run.
  void send_signal(int signo);

  // The host's own clock (internal/host_clock.h): it runs at (1 + drift_ppm / 1e6) times the
  // world's rate and reads `offset` more than the world's at its start. current_time(),
  // sleeps and deadlines in the host's tasks follow it; the driver, the network's and the
  // disks' latencies keep world time. Monotonic: it never steps (a wall-clock NTP step has
  // nothing to act on, the runtime reads no wall clock). Configuration: throws UsageError
  // once the world has started running, std::invalid_argument unless
  // |drift_ppm| <= 500'000 and offset >= 0.
  void set_clock(std::int64_t drift_ppm, Duration offset = Duration::zero());
  // The host's clock at the world's current time (any task, the driver's included), and
  // the first world time at which it reads `local` (for checkers comparing hosts' times).
  Time clock_now() const;
  Time world_time_of(Time local) const { return clock_.world_time_of(local); }

 private:
  friend class World;
  Host(World& world, std::uint32_t index, std::string name, std::string address);
  void launch();
  void host_loop();

  World& world_;
  internal::HostState state_;
  internal::HostClock clock_;
  std::function<void()> main_;
  // Invariant: non-null while the host's main runs (in host_loop).
  CancelScope* scope_ = nullptr;
  bool loop_running_ = false;
  lowlevel::Task* waiting_for_restart_ = nullptr;
};

class World {
 public:
  // Throws std::invalid_argument for an inconsistent config (latency_min > latency_max...).
  explicit World(Config config);
  ~World();
  World(const World&) = delete;
  World& operator=(const World&) = delete;

  // name must be unique, address a unique numeric IPv4 address (std::invalid_argument
  // otherwise). The name resolves to the address through the world's DNS.
  Host& add_host(std::string name, std::string address);
  // Throws std::out_of_range naming the unknown host.
  Host& host(std::string_view name);

  // Runs driver() in the simulated world (the run loop of this world); returns its result.
  // When the driver returns, every host is cancelled and the run ends. A World runs once.
  // The driver's task is named "driver", a host's main "<host> main". The run checks lock
  // order (RunOptions::check_lock_order: an inversion throws LockOrderError in the task that
  // completes it), and when the driver returns, tasks that wait for locks in a cycle nothing
  // can end (lowlevel::lock_deadlock_report()) make run() throw DeadlockError naming the
  // locks and their holders, instead of being cancelled unseen. Waits on Events, channels or
  // sockets are not judged there: whether a live task could still signal one is not decidable
  // from the waits alone (a server waiting in accept() is fine).
  template <class F>
  decltype(auto) run(F&& driver) {
    using R = std::invoke_result_t<F&>;
    if constexpr (std::is_void_v<R>) {
      run_erased([&] { driver(); });
    } else {
      std::optional<R> result;
      run_erased([&] { result.emplace(driver()); });
      return std::move(*result);
    }
  }

  // Network faults (any task, during run()). partition(a, b) cuts both directions;
  // one_way cuts only a -> b.
  void partition(const Host& a, const Host& b, bool one_way = false);
  void heal(const Host& a, const Host& b);
  void heal_all();
  // Stalls a -> b for d (FoundationDB's clog): delayed, never lost.
  void clog(const Host& a, const Host& b, Duration d);
  // Per-link latency (one direction, a -> b): packets take a uniform [low, high] instead of
  // NetworkConfig's latency_min..latency_max — a far-away or congested peer. TCP keeps its
  // order. reset_link_latency goes back to the config's. Throws std::invalid_argument unless
  // 0 <= low <= high.
  void set_link_latency(const Host& a, const Host& b, Duration low, Duration high);
  void reset_link_latency(const Host& a, const Host& b);

  const Config& config() const noexcept { return config_; }
  // The world's random source (after the policy's): for drivers choosing faults.
  Prng& prng() noexcept { return prng_; }
  // Whether this seed injects faults of this kind: always true without Config::swarm; with
  // it, the seed's choice (fault_config.h). Scenario nemeses ask before injecting.
  bool fault_enabled(FaultKind kind) const noexcept {
    return (swarm_mask_ >> static_cast<std::uint32_t>(kind) & 1u) != 0;
  }
  // The seed's fault kinds as a bit mask over FaultKind (all ones without swarm).
  std::uint32_t swarm_mask() const noexcept { return swarm_mask_; }
  // Cancel scopes the simulator cancelled as faults so far.
  std::uint64_t cancel_faults_injected() const noexcept;
  SchedulePolicy& policy() noexcept { return *policy_; }
  // Steps of hosts' tasks held back as virtual CPU time so far (cpu_config.h).
  std::uint64_t steps_held() const noexcept { return cpu_policy_->steps_held(); }
  Trace& trace() noexcept { return trace_; }
  // Host names in add_host order (host index i is group i + 1 in the trace).
  std::vector<std::string> host_names() const;
  Time now() const noexcept { return clock_.now(); }
  std::uint64_t messages_delivered() const noexcept { return backend_->messages_delivered(); }
  // A host's simulated disk, for checks and fault plans.
  internal::Disk& disk(const Host& host) { return file_system_->disk(host.state_); }

  // The world running on this thread, or nullptr.
  static World* current() noexcept;

  // buggify(): whether `point` is enabled in this seed, and whether it fires now.
  bool buggify_point(std::string_view point, unsigned fire_ppm);
  // The points evaluated so far and whether each is enabled, for reports.
  const std::map<std::string, bool, std::less<>>& buggify_points() const noexcept {
    return buggify_points_;
  }

 private:
  friend class Host;
  friend Host* current_host();
  void run_erased(const std::function<void()>& driver);
  // Injects config_.fault_plan, timed from start (a task in the world's nursery).
  void run_fault_plan(Time start);
  // One step of the plan for the kinds that act on one host (kKillProcess, kDiskErrors,
  // kSignal): the fault's start, or (undo) its end.
  void apply_host_fault(const PlannedFault& fault, Host& host, bool undo);
  // Draws the seed's swarm mask and cancellation faults (constructor only).
  void apply_fault_choices(Prng& faults);
  // What the simulated backend may ask of the world (its hosts, names, the running task's).
  internal::WorldView make_world_view();
  internal::HostState* current_host_state() const;
  // True if the running task belongs to an incarnation of its host that has crashed since
  // (a task still unwinding): its operations fail as if the host were down.
  bool current_task_is_stale() const;

  // Which host, and which incarnation of it, a task belongs to (inherited at spawn).
  struct HostBinding {
    Host* host = nullptr;
    std::uint64_t incarnation = 0;
  };

  Config config_;
  Prng prng_;
  std::unique_ptr<SchedulePolicy> policy_;
  // What the run loop asks: policy_'s choices, plus hosts' virtual CPU time.
  std::unique_ptr<internal::HostCpuPolicy> cpu_policy_;
  std::uint32_t swarm_mask_ = 0;
  // Present iff this seed cancels scopes as faults.
  std::unique_ptr<internal::CancelFaultInjector> cancel_faults_;
  internal::SimClock clock_;
  Trace trace_;
  std::unique_ptr<internal::SimBackend> backend_;
  std::unique_ptr<internal::SimFileSystem> file_system_;
  // Ordered by index: iteration is deterministic.
  std::vector<std::unique_ptr<Host>> hosts_;
  std::map<std::string, Host*, std::less<>> by_name_;
  std::map<std::string, Host*> by_address_;
  TaskLocal<HostBinding> current_host_{HostBinding{}};
  Nursery* nursery_ = nullptr;  // while running: where host loops run
  std::map<std::string, bool, std::less<>> buggify_points_;
  bool ran_ = false;
};

// The host the running task belongs to, or nullptr (outside every host or a world).
Host* current_host();

}  // namespace trellis::sim
