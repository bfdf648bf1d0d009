#include "trellis/sim/trace.h"

#include <algorithm>
#include <cstdio>
#include <utility>

#include "trellis/base/assert.h"
#include "trellis/core/lowlevel.h"
#include "trellis/core/task.h"

namespace trellis::sim {
namespace {

constexpr std::uint64_t kHashSeed = 0xcbf29ce484222325ULL;

// One 64-bit word into the running hash (a multiply-xorshift mixer: cheap, and every input
// bit reaches every output bit).
std::uint64_t mix(std::uint64_t hash, std::uint64_t value) {
  hash ^= value + 0x9e3779b97f4a7c15ULL + (hash << 6) + (hash >> 2);
  hash *= 0xbf58476d1ce4e5b9ULL;
  return hash ^ (hash >> 31);
}

std::uint64_t mix(std::uint64_t hash, std::string_view text) {
  std::uint64_t word = 0;
  std::size_t filled = 0;
  for (char c : text) {
    word = (word << 8) | static_cast<unsigned char>(c);
    if (++filled == 8) {
      hash = mix(hash, word);
      word = 0;
      filled = 0;
    }
  }
  return mix(mix(hash, word), text.size());
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
    : events_kept_max_(std::max<std::size_t>(events_kept_max, 1)), hash_(kHashSeed) {}

void Trace::add(TraceEventKind kind, std::uint64_t task_id, std::uint64_t detail, std::string text,
                bool hash_text) {
  const Duration time = clock_reading();
  // Two mixes per event: (kind, task) and (time, detail).
  hash_ = mix(hash_, (task_id << 8) | static_cast<std::uint64_t>(kind));
  hash_ = mix(hash_, static_cast<std::uint64_t>(time.count()) ^ (detail * 0x9e3779b97f4a7c15ULL));
  if (hash_text) hash_ = mix(hash_, text);
  const std::uint64_t index = count_++;
  if (ring_.size() < events_kept_max_) ring_.emplace_back();
  TraceEvent& event = ring_[ring_next_];
  if (++ring_next_ == events_kept_max_) ring_next_ = 0;
  event.index = index;
  event.kind = kind;
  event.task_id = task_id;
  event.time = time;
  event.detail = detail;
  event.text = std::move(text);
  event.hash_after = hash_;
  TRELLIS_ASSERT(ring_.size() == std::min<std::uint64_t>(count_, events_kept_max_));
}

std::vector<TraceEvent> Trace::recent() const {
  std::vector<TraceEvent> out;
  out.reserve(ring_.size());
  const std::uint64_t first = count_ - ring_.size();
  for (std::uint64_t i = first; i < count_; ++i) out.push_back(ring_[i % events_kept_max_]);
  return out;
}

void Trace::record(std::string_view what, std::uint64_t detail) {
  const lowlevel::Task* current = lowlevel::current_task_if_any();
  const std::uint64_t task = current != nullptr ? current->id() : 0;
  add(TraceEventKind::kUser, task, detail, std::string(what), true);
}

// Task events carry no text: the name is kept once per task (task_name()).
void Trace::task_spawned(lowlevel::Task& task) {
  task_names_.emplace(task.id(), task.name());
  if (group_) task_groups_.emplace(task.id(), group_());
  add(TraceEventKind::kTaskSpawned, task.id(), 0, {}, false);
}
void Trace::task_scheduled(lowlevel::Task& task) {
  add(TraceEventKind::kTaskScheduled, task.id(), 0, {}, false);
}
void Trace::before_task_step(lowlevel::Task& task) {
  add(TraceEventKind::kStepBegin, task.id(), 0, {}, false);
}
void Trace::after_task_step(lowlevel::Task& task) {
  add(TraceEventKind::kStepEnd, task.id(), 0, {}, false);
}
void Trace::task_exited(lowlevel::Task& task) {
  add(TraceEventKind::kTaskExited, task.id(), 0, {}, false);
}

std::uint32_t Trace::task_group(std::uint64_t task_id) const {
  auto it = task_groups_.find(task_id);
  return it == task_groups_.end() ? 0 : it->second;
}

std::string_view Trace::task_name(std::uint64_t task_id) const {
  auto it = task_names_.find(task_id);
  return it == task_names_.end() ? std::string_view() : std::string_view(it->second);
}

std::string describe(const TraceEvent& event, std::string_view task_name) {
  char time[64];
  std::snprintf(time, sizeof time, "%.9f", static_cast<double>(event.time.count()) / 1e9);
  // Appends only: GCC 12 at -O3 reports a false -Wrestrict for "literal" + std::string.
  std::string out = "#";
  out.append(std::to_string(event.index)).append(" t=").append(time).append("s ");
  out.append(kind_name(event.kind)).append(" task ").append(std::to_string(event.task_id));
  if (!task_name.empty()) out.append(" (").append(task_name).append(")");
  if (!event.text.empty()) out.append(" \"").append(event.text).append("\"");
  if (event.detail != 0) out.append(" detail=").append(std::to_string(event.detail));
  return out;
}

std::optional<std::uint64_t> first_divergence(const Trace& a, const Trace& b) {
  if (a.hash() == b.hash() && a.event_count() == b.event_count()) return std::nullopt;
  // Compare the events both windows hold, by index.
  const std::vector<TraceEvent> ra = a.recent();
  const std::vector<TraceEvent> rb = b.recent();
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
  const std::vector<TraceEvent> recent_a = a.recent();
  const std::vector<TraceEvent> recent_b = b.recent();
  auto line = [&](const Trace& t, std::uint64_t i) -> std::string {
    const std::vector<TraceEvent>& r = &t == &a ? recent_a : recent_b;
    if (r.empty() || i < r.front().index || i > r.back().index) return "(none)";
    const TraceEvent& event = r[i - r.front().index];
    return describe(event, t.task_name(event.task_id));
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

namespace trellis::sim {
namespace {

std::string json_string(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buffer[8];
          std::snprintf(buffer, sizeof buffer, "\\u%04x", static_cast<unsigned>(c));
          out += buffer;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

}  // namespace

namespace {

// The JSON array being written: one event object per emit(), comma-separated.
class ChromeTraceWriter {
 public:
  ChromeTraceWriter() : out_("{\"displayTimeUnit\":\"ns\",\"traceEvents\":[\n") {}
  void emit(const std::string& event) {
    out_ += (first_ ? "" : ",\n") + event;
    first_ = false;
  }
  std::string finish() && { return std::move(out_) + "\n]}\n"; }

 private:
  std::string out_;
  bool first_ = true;
};

// Names every group (a host, or the world) as a process and every task as a thread.
void emit_names(const Trace& trace, const std::vector<TraceEvent>& events,
                const std::vector<std::string>& group_names, ChromeTraceWriter& writer) {
  std::map<std::uint32_t, bool> groups;
  std::map<std::uint64_t, bool> tasks;
  for (const TraceEvent& e : events) {
    groups[trace.task_group(e.task_id)] = true;
    tasks[e.task_id] = true;
  }
  for (const auto& [group, unused] : groups) {
    const std::string name = group == 0                    ? "world"
                             : group <= group_names.size() ? "host " + group_names[group - 1]
                                                           : "group " + std::to_string(group);
    writer.emit("{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":" + std::to_string(group) +
                ",\"args\":{\"name\":" + json_string(name) + "}}");
  }
  for (const auto& [task, unused] : tasks) {
    std::string name(trace.task_name(task));
    if (name.empty()) name = "task " + std::to_string(task);
    writer.emit(
        "{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":" + std::to_string(trace.task_group(task)) +
        ",\"tid\":" + std::to_string(task) + ",\"args\":{\"name\":" + json_string(name) + "}}");
  }
}

// One trace event: a step's begin or end, or a user event (an instant, plus a flow arrow's
// end for a message's send or delivery). `where` holds its pid, tid and timestamp.
void emit_event(const TraceEvent& e, const std::string& where,
                std::map<std::uint64_t, bool>& open_steps, ChromeTraceWriter& writer) {
  switch (e.kind) {
    case TraceEventKind::kStepBegin:
      open_steps[e.task_id] = true;
      writer.emit("{\"ph\":\"B\",\"name\":\"step\"" + where + "}");
      break;
    case TraceEventKind::kStepEnd:
      if (open_steps.erase(e.task_id) > 0) writer.emit("{\"ph\":\"E\"" + where + "}");
      break;
    case TraceEventKind::kUser: {
      writer.emit("{\"ph\":\"i\",\"s\":\"t\",\"name\":" + json_string(e.text) + where +
                  ",\"args\":{\"detail\":" + std::to_string(e.detail) + "}}");
      const bool send = e.text.ends_with(" send");
      const bool deliver = e.text.ends_with(" deliver");
      if (send || deliver) {
        writer.emit(std::string("{\"ph\":\"") + (send ? "s" : "f") +
                    "\",\"bp\":\"e\",\"cat\":\"message\",\"name\":\"message\",\"id\":" +
                    std::to_string(e.detail) + where + "}");
      }
      break;
    }
    case TraceEventKind::kTaskSpawned:
    case TraceEventKind::kTaskScheduled:
    case TraceEventKind::kTaskExited:
      break;
  }
}

}  // namespace

std::string chrome_trace_json(const Trace& trace, const std::vector<std::string>& group_names) {
  const std::vector<TraceEvent> events = trace.recent();
  ChromeTraceWriter writer;
  emit_names(trace, events, group_names, writer);
  std::map<std::uint64_t, bool> open_steps;
  // Events at one virtual instant are spread a nanosecond apart, so the viewer keeps their
  // order.
  Duration instant = Duration::min();
  std::uint64_t within_instant = 0;
  for (const TraceEvent& e : events) {
    within_instant = e.time == instant ? within_instant + 1 : 0;
    instant = e.time;
    char ts[48];
    std::snprintf(
        ts, sizeof ts, "%.3f",
        static_cast<double>(e.time.count() + static_cast<Duration::rep>(within_instant)) / 1000.0);
    const std::string where = ",\"pid\":" + std::to_string(trace.task_group(e.task_id)) +
                              ",\"tid\":" + std::to_string(e.task_id) + ",\"ts\":" + ts;
    emit_event(e, where, open_steps, writer);
  }
  // Steps still open when the window ended.
  for (const auto& [task, unused] : open_steps) {
    const TraceEvent& last = events.back();
    char ts[48];
    std::snprintf(ts, sizeof ts, "%.3f", static_cast<double>(last.time.count()) / 1000.0 + 1.0);
    writer.emit("{\"ph\":\"E\",\"pid\":" + std::to_string(trace.task_group(task)) +
                ",\"tid\":" + std::to_string(task) + ",\"ts\":" + ts + "}");
  }
  return std::move(writer).finish();
}

}  // namespace trellis::sim
