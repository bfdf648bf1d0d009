#include "trellis/sim/internal/trace_key.h"

#include <algorithm>
#include <cstdint>
#include <map>

#include "trellis/base/assert.h"

namespace trellis::sim::internal {
namespace {

void put(std::string& out, std::uint64_t value) {
  out += std::to_string(value);
  out += ',';
}

// Per step: its index within its task, and per task the number of that task's steps that
// happen before it or are it (program order, wake-ups, dependence).
struct Orders {
  std::vector<std::uint64_t> index_in_task;
  std::vector<std::map<std::uint64_t, std::uint64_t>> counts;
};

Orders orders_of(const std::vector<StepRecord>& steps) {
  Orders out;
  out.index_in_task.resize(steps.size());
  out.counts.resize(steps.size());
  std::map<std::uint64_t, std::uint64_t> taken;  // task -> steps so far
  std::map<std::uint64_t, std::size_t> last;     // task -> its last step
  for (std::size_t j = 0; j < steps.size(); ++j) {
    const StepRecord& step = steps[j];
    std::map<std::uint64_t, std::uint64_t>& clock = out.counts[j];
    auto join = [&](std::size_t i) {
      for (const auto& [task, count] : out.counts[i]) clock[task] = std::max(clock[task], count);
    };
    if (auto it = last.find(step.task); it != last.end()) join(it->second);
    for (std::size_t w : step.woken_by) {
      TRELLIS_ASSERT(w < j);
      join(w);
    }
    for (std::size_t i = 0; i < j; ++i) {
      if (steps[i].task != step.task && dependent(steps[i], step)) join(i);
    }
    out.index_in_task[j] = taken[step.task]++;
    clock[step.task] = out.index_in_task[j] + 1;
    last[step.task] = j;
  }
  return out;
}

}  // namespace

std::vector<std::string> prefix_trace_keys(const DporLog& log, std::size_t from) {
  std::vector<std::string> keys(log.nodes.size() > from ? log.nodes.size() - from : 0);
  std::size_t end = from;  // nodes from `from` to end get keys
  while (end < log.nodes.size() && log.nodes[end].task_choice) ++end;
  for (std::size_t k = 0; k < from && end > from; ++k) {
    if (!log.nodes[k].task_choice) end = from;  // an earlier non-task choice: no keys at all
  }
  if (end == from) return keys;
  const std::size_t steps_needed = log.nodes[end - 1].step;
  const std::vector<StepRecord> steps(
      log.steps.begin(),
      log.steps.begin() + static_cast<std::ptrdiff_t>(std::min(steps_needed, log.steps.size())));
  const Orders orders = orders_of(steps);
  for (std::size_t i = from; i < end; ++i) {
    const DporNode& node = log.nodes[i];
    const std::size_t m = std::min(node.step, steps.size());
    std::vector<std::size_t> order(m);
    for (std::size_t j = 0; j < m; ++j) order[j] = j;
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      return steps[a].task != steps[b].task ? steps[a].task < steps[b].task
                                            : orders.index_in_task[a] < orders.index_in_task[b];
    });
    std::string key;
    for (std::size_t j : order) {
      const StepRecord& step = steps[j];
      put(key, step.task);
      put(key, step.opaque ? 1 : 0);
      for (const StepAccess& access : step.accesses) {
        put(key, access.object);
        put(key, static_cast<std::uint64_t>(access.access));
      }
      key += ':';
      for (const auto& [task, count] : orders.counts[j]) {
        put(key, task);
        put(key, count);
      }
      key += ';';
    }
    // The context: the task that ran last (its run of steps is compared apart, by the
    // explorer) and the runnable tasks.
    key += '|';
    if (node.last_task.has_value()) put(key, *node.last_task + 1);
    key += '|';
    std::vector<std::uint64_t> runnable = node.runnable;
    std::sort(runnable.begin(), runnable.end());
    for (std::uint64_t task : runnable) put(key, task);
    keys[i - from] = std::move(key);
  }
  return keys;
}

}  // namespace trellis::sim::internal
