// trellis/sim/trace.h — Trace: the run as a sequence of events with a running hash, for the
// determinism self-check (same seed twice -> same hash) and for showing where two runs
// diverge.
//
//   trellis::sim::Trace trace;
//   trellis::run(main, {.clock = &clock, .policy = &policy, .instruments = {&trace}});
//   trace.hash();   // equal for equal (seed, program), across processes
//
// What is hashed is deterministic by construction: event kind, task id (spawn order), the
// run's clock reading (virtual under MockClock or the simulator) and user details — never
// addresses. Only the last events_kept_max events are kept in memory (for reports); the
// hash covers all of them. Hooks run on the run-loop thread; record() from tasks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "trellis/core/instrument.h"
#include "trellis/core/time.h"

namespace trellis::sim {

enum class TraceEventKind : std::uint8_t {
  kTaskSpawned,
  kTaskScheduled,
  kStepBegin,
  kStepEnd,
  kTaskExited,
  kUser,  // record(): a simulator or user event (message sent, fault injected, ...)
};

struct TraceEvent {
  std::uint64_t index = 0;  // position in the run, from 0
  TraceEventKind kind = TraceEventKind::kUser;
  std::uint64_t task_id = 0;
  Duration time{};  // the run's clock, since its epoch
  std::uint64_t detail = 0;
  std::string text;  // task name or user text (hashed for kUser only)
  std::uint64_t hash_after = 0;
};

class Trace final : public Instrument {
 public:
  static constexpr std::size_t kEventsKeptMaxDefault = 4096;
  explicit Trace(std::size_t events_kept_max = kEventsKeptMaxDefault);

  // Adds a user event (hashed: what, detail, and the current task and time if in a run).
  void record(std::string_view what, std::uint64_t detail = 0);
  // A detail naming two small numbers: a pair of host indices (a link's ends), or a host and
  // a signal. first * 65536 + second, so a dump in hex reads as the pair. second < 65536.
  static constexpr std::uint64_t detail_pair(std::uint64_t first, std::uint64_t second) noexcept {
    return first * 65536 + second;
  }

  std::uint64_t hash() const noexcept { return hash_; }
  std::uint64_t event_count() const noexcept { return count_; }
  // The last events (at most events_kept_max), oldest first (a copy: for reports).
  std::vector<TraceEvent> recent() const;
  // The name a task had when spawned (empty if unknown).
  std::string_view task_name(std::uint64_t task_id) const;
  // Which group (a simulated host: index + 1; 0 for none) a task was spawned in, as told by
  // the group function the World installs.
  std::uint32_t task_group(std::uint64_t task_id) const;
  void set_group_function(std::function<std::uint32_t()> group) { group_ = std::move(group); }

  void task_spawned(lowlevel::Task& task) override;
  void task_scheduled(lowlevel::Task& task) override;
  void before_task_step(lowlevel::Task& task) override;
  void after_task_step(lowlevel::Task& task) override;
  void task_exited(lowlevel::Task& task) override;

 private:
  void add(TraceEventKind kind, std::uint64_t task_id, std::uint64_t detail, std::string text,
           bool hash_text);

  std::size_t events_kept_max_;
  std::uint64_t hash_;
  std::uint64_t count_ = 0;
  // The last events, a ring: slot (index % events_kept_max_) holds event `index`.
  // Invariant: ring_.size() == min(count_, events_kept_max_).
  std::vector<TraceEvent> ring_;
  // The slot of the next event: count_ % events_kept_max_, kept without a division.
  std::size_t ring_next_ = 0;
  std::map<std::uint64_t, std::string> task_names_;
  std::map<std::uint64_t, std::uint32_t> task_groups_;
  std::function<std::uint32_t()> group_;
};

// One line for an event: "#12 t=1.5s step-begin task 3 (worker)".
std::string describe(const TraceEvent& event, std::string_view task_name = {});

// Where two traces part: the index of the first event that differs, if both still hold it
// (nullopt when identical, or when the divergence fell out of both windows: compare hashes).
std::optional<std::uint64_t> first_divergence(const Trace& a, const Trace& b);

// The two traces side by side around their first divergence, for a failure message.
std::string divergence_report(const Trace& a, const Trace& b, std::size_t context = 5);

}  // namespace trellis::sim

namespace trellis::sim {

// The trace as Chrome Trace Event JSON (opens in Perfetto and chrome://tracing): one process
// per group (group_names[g], "world" for 0), one thread per task, a slice per task step, an
// instant per recorded event, and flow arrows from each "send" event to the "deliver" event
// with the same detail. Times are virtual microseconds; events at the same virtual instant
// are spread by 1 ns each so their order stays visible. Only the events the trace kept.
std::string chrome_trace_json(const Trace& trace, const std::vector<std::string>& group_names);

}  // namespace trellis::sim
