#include "trellis/sim/trace.h"

#include <algorithm>
#include <cstdio>
#include <utility>

#include "trellis/base/assert.h"
#include "trellis/core/lowlevel.h"
#include "trellis/core/task.h"

namespace trellis::sim {
namespace {

constexpr std::uint64_t kFnvOffset = 0xcbf29ce484222325ULL;
constexpr std::uint64_t kFnvPrime = 0x100000001b3ULL;

std::uint64_t mix(std::uint64_t hash, std::uint64_t value) {
  for (int i = 0; i < 8; ++i) {
    hash ^= (value >> (8 * i)) & 0xff;
    hash *= kFnvPrime;
  }
  return hash;
}

std::uint64_t mix(std::uint64_t hash, std::string_view text) {
  for (char c : text) {
    hash ^= static_cast<unsigned char>(c);
    hash *= kFnvPrime;
  }
  return mix(hash, text.size());
}

const char* kind_name(TraceEventKind kind) {
  switch (kind) {
    case TraceEventKind::kTaskSpawned:
      return "spawned";
    case TraceEventKind::kTaskScheduled:
      return "scheduled";
    case TraceEventKind::kStepBegin:
      return "step-begin";
    case TraceEventKind::kStepEnd:
      return "step-end";
    case TraceEventKind::kTaskExited:
      return "exited";
    case TraceEventKind::kUser:
      return "event";
  }
  return "?";
}

Duration clock_reading() {
  if (!lowlevel::in_run()) return Duration::zero();
  return lowlevel::current_clock().now().time_since_epoch();
}

}  // namespace

Trace::Trace(std::size_t events_kept_max)
    : events_kept_max_(std::max<std::size_t>(events_kept_max, 1)), hash_(kFnvOffset) {}

void Trace::add(TraceEventKind kind, std::uint64_t task_id, std::uint64_t detail, std::string text,
                bool hash_text) {
  TraceEvent event;
  event.index = count_++;
  event.kind = kind;
  event.task_id = task_id;
  event.time = clock_reading();
  event.detail = detail;
  hash_ = mix(hash_, static_cast<std::uint64_t>(kind));
  hash_ = mix(hash_, task_id);
  hash_ = mix(hash_, static_cast<std::uint64_t>(event.time.count()));
  hash_ = mix(hash_, detail);
  if (hash_text) hash_ = mix(hash_, text);
  event.text = std::move(text);
  event.hash_after = hash_;
  if (recent_.size() == events_kept_max_) recent_.pop_front();
  recent_.push_back(std::move(event));
  TRELLIS_ASSERT(recent_.size() <= events_kept_max_);
  TRELLIS_ASSERT(recent_.back().index + 1 == count_);
}

void Trace::record(std::string_view what, std::uint64_t detail) {
  const std::uint64_t task = lowlevel::in_run() ? lowlevel::current_task().id() : 0;
  add(TraceEventKind::kUser, task, detail, std::string(what), true);
}

void Trace::task_spawned(lowlevel::Task& task) {
  add(TraceEventKind::kTaskSpawned, task.id(), 0, task.name(), false);
}
void Trace::task_scheduled(lowlevel::Task& task) {
  add(TraceEventKind::kTaskScheduled, task.id(), 0, task.name(), false);
}
void Trace::before_task_step(lowlevel::Task& task) {
  add(TraceEventKind::kStepBegin, task.id(), 0, task.name(), false);
}
void Trace::after_task_step(lowlevel::Task& task) {
  add(TraceEventKind::kStepEnd, task.id(), 0, task.name(), false);
}
void Trace::task_exited(lowlevel::Task& task) {
  add(TraceEventKind::kTaskExited, task.id(), 0, task.name(), false);
}

std::string describe(const TraceEvent& event) {
  char time[64];
  std::snprintf(time, sizeof time, "%.9f", static_cast<double>(event.time.count()) / 1e9);
  std::string out = "#" + std::to_string(event.index) + " t=" + time + "s " +
                    kind_name(event.kind) + " task " + std::to_string(event.task_id);
  if (!event.text.empty()) out += " (" + event.text + ")";
  if (event.detail != 0) out += " detail=" + std::to_string(event.detail);
  return out;
}

std::optional<std::uint64_t> first_divergence(const Trace& a, const Trace& b) {
  if (a.hash() == b.hash() && a.event_count() == b.event_count()) return std::nullopt;
  // Compare the events both windows hold, by index.
  const auto& ra = a.recent();
  const auto& rb = b.recent();
  if (ra.empty() || rb.empty()) return std::nullopt;
  const std::uint64_t first = std::max(ra.front().index, rb.front().index);
  const std::uint64_t end = std::min(ra.back().index, rb.back().index) + 1;
  for (std::uint64_t i = first; i < end; ++i) {
    const TraceEvent& ea = ra[i - ra.front().index];
    const TraceEvent& eb = rb[i - rb.front().index];
    if (ea.hash_after != eb.hash_after) return i;
  }
  // One run is a prefix of the other within the windows.
  if (a.event_count() != b.event_count() && end > first) return end;
  return std::nullopt;
}

std::string divergence_report(const Trace& a, const Trace& b, std::size_t context) {
  const std::optional<std::uint64_t> at = first_divergence(a, b);
  if (!at.has_value()) {
    if (a.hash() == b.hash()) return "traces are identical";
    return "traces differ before the kept window (" + std::to_string(a.event_count()) + " vs " +
           std::to_string(b.event_count()) + " events); keep more events to see where";
  }
  std::string out = "first divergence at event #" + std::to_string(*at) + ":\n";
  auto line = [&](const Trace& t, std::uint64_t i) -> std::string {
    const auto& r = t.recent();
    if (r.empty() || i < r.front().index || i > r.back().index) return "(none)";
    return describe(r[i - r.front().index]);
  };
  const std::uint64_t from = *at >= context ? *at - context : 0;
  for (std::uint64_t i = from; i <= *at; ++i) {
    const std::string la = line(a, i);
    const std::string lb = line(b, i);
    out += (i == *at ? ">> " : "   ") + la;
    out += la == lb ? "\n" : "\n   | other run: " + lb + "\n";
  }
  return out;
}

}  // namespace trellis::sim
