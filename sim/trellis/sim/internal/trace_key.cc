#include "trellis/sim/internal/trace_key.h"

#include <algorithm>
#include <cstdint>
#include <map>
#include <utility>

#include "trellis/base/assert.h"
#include "trellis/base/prng.h"

namespace trellis::sim::internal {
namespace {

// Two independent 64-bit hashes of a sequence of words.
struct Hash2 {
  std::uint64_t a = 0x243f6a8885a308d3ULL;
  std::uint64_t b = 0x13198a2e03707344ULL;
  void add(std::uint64_t word) {
    std::uint64_t x = a ^ word;
    a = Prng::split_mix64(x);
    std::uint64_t y = b ^ (word * 0x9e3779b97f4a7c15ULL + 1);
    b = Prng::split_mix64(y) ^ (b << 7);
  }
};

// Per step: its descriptor's two hashes — the step (task, index in the task, what it
// touched) and, per task, how many of that task's steps happen before it or are it (program
// order, wake-ups, dependence) — computed with running joins: a step depends on every
// earlier opaque step, on every earlier step if it is opaque, else on the earlier steps
// that touched one of its objects in a conflicting way.
std::vector<std::pair<std::uint64_t, std::uint64_t>> step_hashes(
    const std::vector<StepRecord>& steps) {
  std::map<std::uint64_t, std::size_t> dense;  // task id -> clock slot
  for (const StepRecord& step : steps) dense.try_emplace(step.task, dense.size());
  const std::size_t tasks = dense.size();
  using Clock = std::vector<std::uint64_t>;
  std::vector<Clock> clocks(steps.size());
  Clock all(tasks, 0);     // the join of every step so far
  Clock opaque(tasks, 0);  // the join of the opaque steps so far
  std::vector<std::uint64_t> taken(tasks, 0);
  std::vector<std::size_t> last(tasks, SIZE_MAX);
  std::map<lowlevel::ObjectId, std::vector<std::size_t>> touched;  // object -> steps
  std::vector<std::pair<std::uint64_t, std::uint64_t>> out(steps.size());
  std::vector<std::pair<std::uint64_t, std::size_t>> order;  // (task id, slot), by id
  for (const auto& [id, slot] : dense) order.emplace_back(id, slot);
  for (std::size_t j = 0; j < steps.size(); ++j) {
    const StepRecord& step = steps[j];
    const std::size_t me = dense.at(step.task);
    Clock clock(tasks, 0);
    auto join = [&](const Clock& other) {
      for (std::size_t t = 0; t < tasks; ++t) clock[t] = std::max(clock[t], other[t]);
    };
    if (last[me] != SIZE_MAX) join(clocks[last[me]]);
    for (std::size_t w : step.woken_by) {
      TRELLIS_ASSERT(w < j);
      join(clocks[w]);
    }
    join(step.opaque ? all : opaque);
    if (!step.opaque) {
      for (const StepAccess& access : step.accesses) {
        auto it = touched.find(access.object);
        if (it == touched.end()) continue;
        for (std::size_t i : it->second) {
          if (steps[i].task != step.task && dependent(steps[i], step)) join(clocks[i]);
        }
      }
    }
    clock[me] = ++taken[me];
    Hash2 hash;
    hash.add(step.task);
    hash.add(clock[me]);
    hash.add(step.opaque ? 1 : 0);
    for (const StepAccess& access : step.accesses) {
      hash.add(access.object);
      hash.add(static_cast<std::uint64_t>(access.access));
    }
    for (const auto& [id, slot] : order) {
      if (clock[slot] == 0) continue;
      hash.add(id);
      hash.add(clock[slot]);
    }
    out[j] = {hash.a, hash.b};
    for (std::size_t t = 0; t < tasks; ++t) all[t] = std::max(all[t], clock[t]);
    if (step.opaque) {
      for (std::size_t t = 0; t < tasks; ++t) opaque[t] = std::max(opaque[t], clock[t]);
    }
    for (const StepAccess& access : step.accesses) touched[access.object].push_back(j);
    clocks[j] = std::move(clock);
    last[me] = j;
  }
  return out;
}

void put(std::string& out, std::uint64_t value) {
  out += std::to_string(value);
  out += ',';
}

}  // namespace

std::vector<std::string> prefix_trace_keys(const DporLog& log, std::size_t from) {
  std::vector<std::string> keys(log.nodes.size() > from ? log.nodes.size() - from : 0);
  for (std::size_t k = 0; k < from; ++k) {
    if (!log.nodes[k].task_choice) return keys;  // an earlier non-task choice: no keys
  }
  std::size_t end = from;  // nodes from `from` to end get keys
  while (end < log.nodes.size() && log.nodes[end].task_choice) ++end;
  if (end == from) return keys;
  const std::size_t steps_needed = std::min(log.nodes[end - 1].step, log.steps.size());
  const std::vector<StepRecord> steps(
      log.steps.begin(), log.steps.begin() + static_cast<std::ptrdiff_t>(steps_needed));
  const auto hashes = step_hashes(steps);
  // A trace is the multiset of its step descriptors: their hashes' sums (each lane).
  std::uint64_t sum_a = 0;
  std::uint64_t sum_b = 0;
  std::size_t summed = 0;
  for (std::size_t i = from; i < end; ++i) {
    const DporNode& node = log.nodes[i];
    const std::size_t m = std::min(node.step, steps.size());
    TRELLIS_ASSERT(m >= summed);  // nodes come in step order
    for (; summed < m; ++summed) {
      sum_a += hashes[summed].first;
      sum_b += hashes[summed].second;
    }
    std::string key;
    put(key, m);
    put(key, sum_a);
    put(key, sum_b);
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
