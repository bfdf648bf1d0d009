// trellis/scenarios/lease/lease_checker.h — the lease scenario's invariant: never two nodes
// leader at the same instant of true time. Each accepted grant is recorded as an interval of
// true time (from when the node accepted it to when its lease ends, by its clock, converted
// to true time); a crashed node stops being leader when it crashes. Harness code, shared by
// the simulation and the real-mode test; single-threaded (one run).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "trellis/core/time.h"

namespace trellis::scenarios::lease {

class LeaseChecker {
 public:
  // node believes it is leader over [start, end) of true time.
  void granted(const std::string& node, Time start, Time end);
  // node stopped acting at `at` (crashed): its intervals end there at the latest.
  void stopped(const std::string& node, Time at);

  // Two intervals of different nodes that overlap, described; nullopt if none.
  std::optional<std::string> overlap() const;
  std::uint64_t grants() const noexcept { return intervals_.size(); }
  // The true time of the last grant (Time{} if none).
  Time last_grant() const noexcept { return last_grant_; }

 private:
  struct Interval {
    std::string node;
    Time start;
    Time end;
  };
  std::vector<Interval> intervals_;
  Time last_grant_{};
};

}  // namespace trellis::scenarios::lease
