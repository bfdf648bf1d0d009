#include "trellis/sim/world.h"

#include <signal.h>

#include <algorithm>
#include <stdexcept>
#include <string>

#include "trellis/base/assert.h"
#include "trellis/core/errors.h"
#include "trellis/core/lowlevel.h"
#include "trellis/core/run.h"
#include "trellis/core/signal_facet.h"
#include "trellis/core/socket_address.h"
#include "trellis/sim/buggify.h"
#include "trellis/sim/decision_policy.h"
#include "trellis/sim/fifo_policy.h"
#include "trellis/sim/pct_policy.h"
#include "trellis/sim/random_policy.h"
#include "trellis/sync/lock_order.h"

namespace trellis::sim {
namespace {

thread_local World* current_world = nullptr;

std::unique_ptr<SchedulePolicy> make_policy(const Config& config, std::uint64_t seed) {
  if (config.policy_factory) return config.policy_factory(seed);
  switch (config.policy) {
    case PolicyKind::kFifo:
      return std::make_unique<FifoPolicy>();
    case PolicyKind::kRandom:
      return std::make_unique<RandomPolicy>(seed);
    case PolicyKind::kPct:
      return std::make_unique<PctPolicy>(
          seed,
          PctOptions{.depth = config.pct_depth,
                     .steps_estimate = config.pct_steps_estimate == 0 ? kPctStepsEstimateDefault
                                                                      : config.pct_steps_estimate});
    case PolicyKind::kDecisions:
      return std::make_unique<DecisionPolicy>(config.decisions);
  }
  throw std::invalid_argument("sim::Config: unknown policy kind");
}

}  // namespace

// ---- Host ----------------------------------------------------------------------------------

Host::Host(World& world, std::uint32_t index, std::string name, std::string address)
    : world_(world) {
  state_.index = index;
  state_.name = std::move(name);
  state_.address = std::move(address);
}

void Host::start(std::function<void()> main) {
  if (main_) throw UsageError("host " + state_.name + " was started already");
  if (!main) throw std::invalid_argument("Host::start: empty main");
  main_ = std::move(main);
  if (world_.nursery_ != nullptr) launch();
}

void Host::launch() {
  TRELLIS_ASSERT(world_.nursery_ != nullptr);
  TRELLIS_ASSERT(!loop_running_);
  loop_running_ = true;
  world_.nursery_->start_soon(SpawnOptions{.name = "host " + state_.name}, [this] { host_loop(); });
}

void Host::host_loop() {
  for (;;) {
    // Crashed and not restarted yet — or restarted and crashed again before this task ran:
    // wait for restart().
    while (!state_.alive) {
      waiting_for_restart_ = &lowlevel::current_task();
      lowlevel::wait_task_rescheduled(
          [this](std::exception_ptr) {
            waiting_for_restart_ = nullptr;
            return lowlevel::Abort::kSucceeded;
          },
          "crashed host waiting for restart()");
    }
    const std::uint64_t incarnation = state_.incarnation;
    // Tasks spawned from here on belong to this incarnation of the host.
    world_.current_host_.set(World::HostBinding{this, incarnation});
    CancelScope scope;
    scope_ = &scope;
    world_.trace_.record("host up", state_.index);
    try {
      scope.run([&] {
        open_nursery([&](Nursery& n) {
          n.start_soon(SpawnOptions{.name = state_.name + " main"}, [this] { main_(); });
        });
      });
    } catch (...) {
      // A crashed incarnation's tasks fail as they unwind (their files and sockets are
      // gone): the process is dead, nobody hears about it. A live host's error is real.
      if (state_.incarnation == incarnation) throw;
      world_.trace_.record("crashed host's error dropped", state_.index);
    }
    scope_ = nullptr;
    if (state_.incarnation == incarnation) break;  // main returned: the host idles
  }
  loop_running_ = false;
}

void Host::install_program(std::string name, Program program) {
  if (name.empty()) throw std::invalid_argument("install_program: the name is empty");
  if (!program) throw std::invalid_argument("install_program: no program");
  state_.programs[std::move(name)] = std::move(program);
}

void Host::crash() {
  if (!state_.alive) return;
  state_.alive = false;
  ++state_.incarnation;
  world_.trace_.record("host crash", state_.index);
  if (scope_ != nullptr) scope_->cancel();
  world_.backend_->host_crashed(state_);
  world_.file_system_->host_crashed(state_);
}

void Host::restart() {
  if (state_.alive) throw UsageError("host " + state_.name + " is alive: crash() it first");
  if (!main_) throw UsageError("host " + state_.name + " was never started");
  world_.trace_.record("host restart", state_.index);
  state_.alive = true;
  if (waiting_for_restart_ != nullptr) {
    lowlevel::reschedule(*std::exchange(waiting_for_restart_, nullptr));
  } else if (!loop_running_ && world_.nursery_ != nullptr) {
    launch();
  }
  // Otherwise the crashed incarnation is still unwinding; its loop starts the next one.
}

void Host::send_signal(int signo) {
  if (signo <= 0 || signo >= SignalFacet::kSignalLimit || signo >= NSIG) {
    throw std::invalid_argument("Host::send_signal: " + std::to_string(signo) +
                                " is not a signal number (1..64)");
  }
  if (World::current() != &world_ || world_.nursery_ == nullptr) {
    throw UsageError("Host::send_signal: call it from a task while the world runs");
  }
  world_.trace_.record("signal sent",
                       Trace::detail_pair(state_.index, static_cast<std::uint64_t>(signo)));
  world_.backend_->sim_signals().send(state_, signo);
}

void Host::set_clock(std::int64_t drift_ppm, Duration offset) {
  if (world_.ran_) {
    throw UsageError("Host::set_clock: set " + state_.name + "'s clock before run()");
  }
  if (drift_ppm < -internal::HostClock::kDriftPpmMax ||
      drift_ppm > internal::HostClock::kDriftPpmMax || offset < Duration::zero()) {
    throw std::invalid_argument("Host::set_clock: need |drift_ppm| <= 500'000 and offset >= 0");
  }
  clock_ = internal::HostClock(drift_ppm, offset);
}

Time Host::clock_now() const {
  return clock_.local(world_.clock_.now());
}

// ---- World ---------------------------------------------------------------------------------

World::World(Config config)
    : config_(std::move(config)), prng_(0), trace_(config_.trace_events_kept) {
  if (config_.network.latency_min > config_.network.latency_max) {
    throw std::invalid_argument("sim::Config: network.latency_min > network.latency_max");
  }
  if (config_.network.latency_min < Duration::zero()) {
    throw std::invalid_argument("sim::Config: negative network latency");
  }
  // Independent streams from the one seed: the policy's and the world's.
  std::uint64_t x = config_.seed;
  const std::uint64_t policy_seed = Prng::split_mix64(x);
  prng_ = Prng(Prng::split_mix64(x));
  Prng faults(Prng::split_mix64(x));
  const std::uint64_t cpu_seed = Prng::split_mix64(x);
  policy_ = make_policy(config_, policy_seed);
  cpu_policy_ = std::make_unique<internal::HostCpuPolicy>(*policy_, config_.cpu, cpu_seed, [this] {
    return current_host_state() != nullptr && !current_task_is_stale();
  });
  apply_fault_choices(faults);
  clock_.set_task_clock([this]() -> const internal::HostClock* {
    const Host* host = current_host_.get().host;
    return host == nullptr ? nullptr : &host->clock_;
  });
  backend_ = std::make_unique<internal::SimBackend>(clock_, *policy_, prng_, config_.network,
                                                    make_world_view(), &trace_);
  if (config_.disk.latency_min > config_.disk.latency_max || config_.disk.sector_bytes == 0) {
    throw std::invalid_argument("sim::Config: disk latency_min > latency_max or sector_bytes 0");
  }
  file_system_ = std::make_unique<internal::SimFileSystem>(
      clock_, prng_, config_.disk,
      [this] {
        lowlevel::record_opaque();
        return current_host_state();
      },
      [this] { return current_task_is_stale(); }, &trace_);
  backend_->set_file_system(file_system_.get());
  // Libraries with randomness of their own (OpenSSL) draw from a stream of the seed's.
  std::uint64_t library_seed = config_.seed ^ 0x6c69627261727921ULL;  // "library!"
  backend_->set_library_seed(Prng::split_mix64(library_seed));
  trace_.set_group_function([this]() -> std::uint32_t {
    const internal::HostState* host = current_host_state();
    return host == nullptr ? 0 : host->index + 1;
  });
}

World::~World() = default;

internal::WorldView World::make_world_view() {
  internal::WorldView view;
  // Every simulated facet call asks for its caller's host first: exploration records the
  // step as opaque there (a socket, pipe, disk or signal is state the reduction does not
  // model object by object; core/access_recorder.h).
  view.current_host = [this] {
    lowlevel::record_opaque();
    return current_host_state();
  };
  view.caller_is_stale = [this] { return current_task_is_stale(); };
  view.host_by_address = [this](const std::string& address) -> internal::HostState* {
    auto it = by_address_.find(address);
    return it == by_address_.end() ? nullptr : &it->second->state_;
  };
  view.resolve_name = [this](const std::string& name) -> std::vector<std::string> {
    auto it = by_name_.find(name);
    if (it == by_name_.end()) return {};
    return {it->second->address()};
  };
  view.crash_host = [this](internal::HostState& host) { hosts_.at(host.index)->crash(); };
  view.host_named = [this](const std::string& name_or_address) -> internal::HostState* {
    if (auto it = by_name_.find(name_or_address); it != by_name_.end()) return &it->second->state_;
    auto it = by_address_.find(name_or_address);
    return it == by_address_.end() ? nullptr : &it->second->state_;
  };
  view.bind_current_task = [this](internal::HostState& host) {
    Host* bound = hosts_.at(host.index).get();
    TRELLIS_ASSERT(&bound->state_ == &host);
    current_host_.set(HostBinding{bound, host.incarnation});
  };
  return view;
}

void World::apply_fault_choices(Prng& faults) {
  constexpr auto kKinds = static_cast<std::uint32_t>(FaultKind::kCount);
  swarm_mask_ = (1u << kKinds) - 1;
  if (config_.swarm) {
    // Each kind on with probability 1/2; all off would test nothing, so redraw then.
    do {
      swarm_mask_ = static_cast<std::uint32_t>(faults.below(std::uint64_t{1} << kKinds));
    } while (swarm_mask_ == 0);
    if (!fault_enabled(FaultKind::kDiskError)) {
      config_.disk.eio_ppm = 0;
      config_.disk.read_corruption_ppm = 0;
      config_.disk.misdirected_write_ppm = 0;
      config_.disk.lost_write_ppm = 0;
      config_.disk.latent_sector_error_ppm = 0;
    }
    if (!fault_enabled(FaultKind::kTornWrite)) config_.disk.torn_write_ppm = 0;
    if (!fault_enabled(FaultKind::kDatagramFaults)) {
      config_.network.datagram_loss_ppm = 0;
      config_.network.datagram_duplicate_ppm = 0;
      config_.network.datagram_reorder_ppm = 0;
    }
    if (!fault_enabled(FaultKind::kBuggify)) config_.buggify_enable_ppm = 0;
    if (!fault_enabled(FaultKind::kCancellation)) config_.cancel_faults.enable_ppm = 0;
  }
  const CancelFaultConfig& cancel = config_.cancel_faults;
  if (cancel.enable_ppm == 0) return;
  if (cancel.faults_max == 0 || cancel.step_window == 0) {
    throw std::invalid_argument("sim::Config: cancel_faults needs faults_max and step_window > 0");
  }
  if (!faults.chance(cancel.enable_ppm, 1'000'000)) return;
  std::vector<std::uint64_t> steps(1 + faults.below(cancel.faults_max));
  for (std::uint64_t& step : steps) step = 1 + faults.below(cancel.step_window);
  std::sort(steps.begin(), steps.end());
  cancel_faults_ = std::make_unique<internal::CancelFaultInjector>(
      std::move(steps), Prng(faults.next()),
      [this](const CancelScope* scope) {
        for (const auto& host : hosts_) {
          if (host->scope_ == scope) return true;
        }
        return false;
      },
      &trace_);
}

void World::run_fault_plan(Time start) {
  struct Step {
    Duration at;
    std::size_t fault;
    bool undo;
  };
  const std::vector<PlannedFault>& faults = config_.fault_plan.faults;
  std::vector<Step> steps;
  for (std::size_t i = 0; i < faults.size(); ++i) {
    steps.push_back({faults[i].at, i, false});
    steps.push_back({faults[i].at + faults[i].duration, i, true});
  }
  std::stable_sort(steps.begin(), steps.end(),
                   [](const Step& x, const Step& y) { return x.at < y.at; });
  for (const Step& step : steps) {
    sleep_until(start + step.at);
    if (hosts_.empty()) return;
    const PlannedFault& f = faults[step.fault];
    Host& a = *hosts_[f.a % hosts_.size()];
    Host& b = *hosts_[f.b % hosts_.size()];
    const auto ia = a.state_.index;
    const auto ib = b.state_.index;
    switch (f.kind) {
      case PlannedFault::Kind::kCrash:
        if (!a.main_) break;
        if (!step.undo && a.alive()) a.crash();
        if (step.undo && !a.alive()) a.restart();
        break;
      case PlannedFault::Kind::kPartition:
        if (&a == &b) break;
        if (step.undo) {
          heal(a, b);
        } else {
          partition(a, b);
        }
        break;
      case PlannedFault::Kind::kPartitionOneWay:
        if (&a == &b) break;
        trace_.record(step.undo ? "heal one-way" : "partition one-way", Trace::detail_pair(ia, ib));
        backend_->set_partitioned(ia, ib, !step.undo);
        break;
      case PlannedFault::Kind::kClog:
        if (&a != &b && !step.undo) clog(a, b, f.duration);
        break;
      case PlannedFault::Kind::kSlowLink: {
        if (&a == &b) break;
        if (step.undo) {
          reset_link_latency(a, b);
          reset_link_latency(b, a);
        } else {
          const Duration low = std::max(f.latency, Duration(std::chrono::microseconds(1)));
          set_link_latency(a, b, low, 2 * low);
          set_link_latency(b, a, low, 2 * low);
        }
        break;
      }
      case PlannedFault::Kind::kKillProcess:
      case PlannedFault::Kind::kDiskErrors:
      case PlannedFault::Kind::kSignal:
        apply_host_fault(f, a, step.undo);
        break;
      case PlannedFault::Kind::kCount:
        TRELLIS_ASSERT(false);
    }
  }
}

void World::apply_host_fault(const PlannedFault& f, Host& a, bool undo) {
  const auto ia = a.state_.index;
  switch (f.kind) {
    case PlannedFault::Kind::kKillProcess:
      if (undo || !a.alive()) break;
      if (const int pid = backend_->kill_program(a.state_, f.b); pid != 0) {
        trace_.record("program killed", Trace::detail_pair(ia, static_cast<std::uint64_t>(pid)));
      }
      break;
    case PlannedFault::Kind::kDiskErrors:
      // The disk is hardware: its window opens and closes whether the host is up or not.
      trace_.record(undo ? "disk errors end" : "disk errors begin",
                    Trace::detail_pair(ia, f.b % 4));
      file_system_->set_planned_errors(a.state_, f.b, !undo);
      break;
    case PlannedFault::Kind::kSignal:
      if (undo) break;
      if (f.b == 0 || f.b > kPlannedSignalMax || f.b >= static_cast<std::uint32_t>(NSIG)) {
        trace_.record("planned signal ignored (not a signal number)", Trace::detail_pair(ia, f.b));
        break;
      }
      trace_.record("signal sent", Trace::detail_pair(ia, f.b));
      backend_->sim_signals().send(a.state_, static_cast<int>(f.b));
      break;
    default:
      TRELLIS_ASSERT(false);
  }
}

std::uint64_t World::cancel_faults_injected() const noexcept {
  return cancel_faults_ == nullptr ? 0 : cancel_faults_->cancellations();
}

std::vector<std::string> World::host_names() const {
  std::vector<std::string> names;
  for (const auto& host : hosts_) names.push_back(host->name());
  return names;
}

Host& World::add_host(std::string name, std::string address) {
  if (name.empty()) throw std::invalid_argument("add_host: empty host name");
  if (by_name_.contains(name)) throw std::invalid_argument("add_host: duplicate host name " + name);
  const std::optional<SocketAddress> parsed = SocketAddress::parse(address, 0);
  if (!parsed.has_value() || parsed->family() != AF_INET || address == "0.0.0.0" ||
      address.starts_with("127.")) {
    throw std::invalid_argument("add_host: " + name +
                                ": address must be a numeric IPv4 host "
                                "address (not 0.0.0.0 or loopback), got '" +
                                address + "'");
  }
  if (by_address_.contains(address)) {
    throw std::invalid_argument("add_host: address " + address + " is taken by " +
                                by_address_.at(address)->name());
  }
  const auto index = static_cast<std::uint32_t>(hosts_.size());
  hosts_.push_back(std::unique_ptr<Host>(new Host(*this, index, name, address)));
  Host& host = *hosts_.back();
  by_name_.emplace(std::move(name), &host);
  by_address_.emplace(std::move(address), &host);
  return host;
}

Host& World::host(std::string_view name) {
  auto it = by_name_.find(name);
  if (it == by_name_.end()) throw std::out_of_range("no host named '" + std::string(name) + "'");
  return *it->second;
}

internal::HostState* World::current_host_state() const {
  Host* host = current_host_.get().host;
  return host == nullptr ? nullptr : &host->state_;
}

bool World::current_task_is_stale() const {
  const HostBinding binding = current_host_.get();
  return binding.host != nullptr && binding.incarnation != binding.host->state_.incarnation;
}

World* World::current() noexcept {
  return current_world;
}

Host* current_host() {
  World* world = World::current();
  return world == nullptr ? nullptr : world->current_host_.get().host;
}

void World::run_erased(const std::function<void()>& driver) {
  if (ran_) throw UsageError("a World runs once; build a new one for another run");
  if (current_world != nullptr) throw UsageError("a World is already running on this thread");
  ran_ = true;
  current_world = this;
  struct Reset {
    World* world;
    ~Reset() {
      current_world = nullptr;
      world->nursery_ = nullptr;
    }
  } reset{this};
  RunOptions options;
  options.clock = &clock_;
  options.backend = backend_.get();
  options.policy = cpu_policy_.get();
  options.instruments = {&trace_};
  if (cancel_faults_ != nullptr) options.instruments.push_back(cancel_faults_.get());
  options.check_lock_order = true;  // lock-order inversions fail the run (sync/lock_order.h)
  options.main_name = "driver";
  // The driver's own exception comes out of run() as it is (not wrapped in the nursery's
  // ExceptionGroup); a host's comes out in an ExceptionGroup, like any child task's.
  std::exception_ptr driver_error;
  trellis::run(
      [&] {
        if (!config_.lock_order_errors) lowlevel::set_lock_order_errors(false);
        open_nursery([&](Nursery& n) {
          nursery_ = &n;
          for (auto& host : hosts_) {
            if (host->main_) host->launch();
          }
          if (!config_.fault_plan.empty()) {
            n.start_soon(SpawnOptions{.name = "fault plan"},
                         [this, start = clock_.now()] { run_fault_plan(start); });
          }
          try {
            driver();
            // Cancelling the hosts would wake tasks that nothing else ever could: a deadlock
            // among them would pass unnoticed. Report the ones that are sure.
            if (std::string report = lowlevel::lock_deadlock_report(); !report.empty()) {
              throw DeadlockError(report + "\n(found when the world's driver returned)");
            }
          } catch (...) {
            driver_error = std::current_exception();
          }
          n.cancel_scope().cancel();  // the driver is done: stop every host
        });
      },
      std::move(options));
  if (driver_error != nullptr) std::rethrow_exception(driver_error);
}

bool World::buggify_point(std::string_view point, unsigned fire_ppm) {
  auto it = buggify_points_.find(point);
  if (it == buggify_points_.end()) {
    // Enabled or not from (seed, name) alone: FNV-1a of the name mixed into the seed.
    std::uint64_t h = 0xcbf29ce484222325ULL;
    for (char c : point) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ULL;
    std::uint64_t x = config_.seed ^ h;
    const bool enabled = Prng::split_mix64(x) % 1'000'000 < config_.buggify_enable_ppm;
    it = buggify_points_.emplace(std::string(point), enabled).first;
    trace_.record(enabled ? "buggify point enabled" : "buggify point disabled", h);
  }
  if (!it->second) return false;
  const bool fire = prng_.chance(std::min(fire_ppm, 1'000'000u), 1'000'000);
  if (fire) trace_.record("buggify fired");
  return fire;
}

bool buggify(std::string_view point) {
  World* world = World::current();
  if (world == nullptr) return false;
  return world->buggify_point(point, world->config().buggify_fire_ppm);
}

bool buggify(std::string_view point, double probability) {
  World* world = World::current();
  if (world == nullptr) return false;
  const double clamped = std::clamp(probability, 0.0, 1.0);
  return world->buggify_point(point, static_cast<unsigned>(clamped * 1'000'000.0));
}

void World::partition(const Host& a, const Host& b, bool one_way) {
  trace_.record(one_way ? "partition one-way" : "partition",
                Trace::detail_pair(a.state_.index, b.state_.index));
  backend_->set_partitioned(a.state_.index, b.state_.index, true);
  if (!one_way) backend_->set_partitioned(b.state_.index, a.state_.index, true);
}

void World::heal(const Host& a, const Host& b) {
  trace_.record("heal", Trace::detail_pair(a.state_.index, b.state_.index));
  backend_->set_partitioned(a.state_.index, b.state_.index, false);
  backend_->set_partitioned(b.state_.index, a.state_.index, false);
}

void World::heal_all() {
  trace_.record("heal all");
  for (auto& a : hosts_) {
    for (auto& b : hosts_) backend_->set_partitioned(a->state_.index, b->state_.index, false);
  }
}

void World::set_link_latency(const Host& a, const Host& b, Duration low, Duration high) {
  if (low < Duration::zero() || high < low) {
    throw std::invalid_argument("set_link_latency: need 0 <= low <= high");
  }
  trace_.record("link latency", Trace::detail_pair(a.state_.index, b.state_.index));
  backend_->set_link_latency(a.state_.index, b.state_.index, low, high);
}

void World::reset_link_latency(const Host& a, const Host& b) {
  trace_.record("link latency reset", Trace::detail_pair(a.state_.index, b.state_.index));
  backend_->set_link_latency(a.state_.index, b.state_.index, Duration::zero(), Duration::zero());
}

void World::clog(const Host& a, const Host& b, Duration d) {
  trace_.record("clog", Trace::detail_pair(a.state_.index, b.state_.index));
  backend_->clog(a.state_.index, b.state_.index, clock_.now() + d);
}

}  // namespace trellis::sim
