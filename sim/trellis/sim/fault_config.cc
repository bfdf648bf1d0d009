#include "trellis/sim/fault_config.h"

namespace trellis::sim {

std::string_view fault_kind_name(FaultKind kind) {
  switch (kind) {
    case FaultKind::kCrash:
      return "crash";
    case FaultKind::kPartition:
      return "partition";
    case FaultKind::kClog:
      return "clog";
    case FaultKind::kSlowLink:
      return "slow_link";
    case FaultKind::kDiskError:
      return "disk_error";
    case FaultKind::kTornWrite:
      return "torn_write";
    case FaultKind::kDatagramFaults:
      return "datagram_faults";
    case FaultKind::kBuggify:
      return "buggify";
    case FaultKind::kCancellation:
      return "cancellation";
    case FaultKind::kCount:
      break;
  }
  return "?";
}

}  // namespace trellis::sim
