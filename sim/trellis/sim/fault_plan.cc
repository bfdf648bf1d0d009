#include "trellis/sim/fault_plan.h"

#include <stdexcept>

namespace trellis::sim {
namespace {

std::string format_duration(Duration d) {
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(d).count();
  if (us % 1000 == 0) return std::to_string(us / 1000) + "ms";
  return std::to_string(us) + "us";
}

}  // namespace

std::string_view planned_fault_name(PlannedFault::Kind kind) {
  switch (kind) {
    case PlannedFault::Kind::kCrash:
      return "crash";
    case PlannedFault::Kind::kPartition:
      return "partition";
    case PlannedFault::Kind::kPartitionOneWay:
      return "partition_one_way";
    case PlannedFault::Kind::kClog:
      return "clog";
    case PlannedFault::Kind::kSlowLink:
      return "slow_link";
    case PlannedFault::Kind::kCount:
      break;
  }
  return "?";
}

PlannedFault::Kind parse_planned_fault_name(std::string_view name) {
  std::string valid;
  for (std::uint32_t k = 0; k < static_cast<std::uint32_t>(PlannedFault::Kind::kCount); ++k) {
    const auto kind = static_cast<PlannedFault::Kind>(k);
    if (planned_fault_name(kind) == name) return kind;
    valid += (valid.empty() ? "" : ", ") + std::string(planned_fault_name(kind));
  }
  throw std::invalid_argument("unknown fault kind '" + std::string(name.substr(0, 40)) +
                              "' (valid: " + valid + ")");
}

std::string describe(const PlannedFault& fault) {
  std::string out(planned_fault_name(fault.kind));
  out += " host " + std::to_string(fault.a);
  if (fault.kind != PlannedFault::Kind::kCrash) out += " and host " + std::to_string(fault.b);
  out += " at " + format_duration(fault.at) + " for " + format_duration(fault.duration);
  if (fault.kind == PlannedFault::Kind::kSlowLink) {
    out += " (latency " + format_duration(fault.latency) + ")";
  }
  return out;
}

}  // namespace trellis::sim
