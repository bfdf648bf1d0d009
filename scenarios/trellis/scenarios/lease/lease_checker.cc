#include "trellis/scenarios/lease/lease_checker.h"

#include <algorithm>

namespace trellis::scenarios::lease {
namespace {

std::string millis(Time t) {
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch());
  return std::to_string(us.count() / 1000) + "." + std::to_string(us.count() % 1000 / 100) + " ms";
}

}  // namespace

void LeaseChecker::granted(const std::string& node, Time start, Time end) {
  intervals_.push_back({node, start, end});
  last_grant_ = std::max(last_grant_, start);
}

void LeaseChecker::stopped(const std::string& node, Time at) {
  for (Interval& interval : intervals_) {
    if (interval.node == node && interval.start <= at) interval.end = std::min(interval.end, at);
  }
}

std::optional<std::string> LeaseChecker::overlap() const {
  std::vector<Interval> sorted = intervals_;
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const Interval& a, const Interval& b) { return a.start < b.start; });
  // Sweep by start: every interval that begins before the latest end so far (of another
  // node) overlaps it.
  std::optional<Interval> reach;  // the interval ending last among those started so far
  for (const Interval& next : sorted) {
    if (next.end <= next.start) continue;  // empty (e.g. crashed at once)
    if (reach && reach->node != next.node && next.start < reach->end) {
      return reach->node + " is leader until " + millis(reach->end) + " but " + next.node +
             " became leader at " + millis(next.start) + " (" +
             std::to_string(
                 std::chrono::duration_cast<std::chrono::microseconds>(reach->end - next.start)
                     .count()) +
             " us of two leaders)";
    }
    if (!reach || next.end > reach->end) reach = next;
  }
  return std::nullopt;
}

}  // namespace trellis::scenarios::lease
