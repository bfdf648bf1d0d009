#include "trellis/sim/fault_plan.h"

#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <stdexcept>

namespace trellis::sim {
namespace {

std::string format_duration(Duration d) {
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(d).count();
  if (us % 1000 == 0) return std::to_string(us / 1000) + "ms";
  return std::to_string(us) + "us";
}

// Seconds with millisecond precision and no trailing zeros: "1.2s", "0.045s", "2s".
std::string format_seconds(Duration d) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%lld.%03lld", static_cast<long long>(ms / 1000),
                static_cast<long long>(ms % 1000));
  std::string out = buffer;
  while (out.back() == '0') out.pop_back();
  if (out.back() == '.') out.pop_back();
  return out + "s";
}

std::string host_name(std::uint32_t host, const std::vector<std::string>& host_names) {
  if (host_names.empty()) return "host" + std::to_string(host);
  return host_names[host % host_names.size()];
}

// kDiskErrors's b: which operations fail.
const char* disk_error_class_name(std::uint32_t b) {
  switch (static_cast<DiskErrorClass>(b % 4)) {
    case DiskErrorClass::kAll:
      return "reads, writes and syncs";
    case DiskErrorClass::kReads:
      return "reads";
    case DiskErrorClass::kWrites:
      return "writes";
    case DiskErrorClass::kSyncs:
      return "syncs";
  }
  return "?";
}

// "SIGTERM" for the usual ones, else "signal 12"-style "12".
std::string signal_name(std::uint32_t b) {
  switch (b) {
    case SIGHUP:
      return "SIGHUP";
    case SIGINT:
      return "SIGINT";
    case SIGKILL:
      return "SIGKILL";
    case SIGUSR1:
      return "SIGUSR1";
    case SIGUSR2:
      return "SIGUSR2";
    case SIGTERM:
      return "SIGTERM";
    default:
      return std::to_string(b);
  }
}

std::string summarize_one(const PlannedFault& f, const std::vector<std::string>& host_names) {
  const std::string a = host_name(f.a, host_names);
  const std::string b = host_name(f.b, host_names);
  const std::string window =
      " at " + format_seconds(f.at) + "-" + format_seconds(f.at + f.duration);
  switch (f.kind) {
    case PlannedFault::Kind::kCrash:
      return "crash " + a + " at " + format_seconds(f.at) + ", restart at " +
             format_seconds(f.at + f.duration);
    case PlannedFault::Kind::kPartition:
      return "partition " + a + "|" + b + window;
    case PlannedFault::Kind::kPartitionOneWay:
      return "partition " + a + "->" + b + window;
    case PlannedFault::Kind::kClog:
      return "clog " + a + "->" + b + window;
    case PlannedFault::Kind::kSlowLink:
      return "slow link " + a + "|" + b + " (" + format_duration(f.latency) + ")" + window;
    case PlannedFault::Kind::kKillProcess:
      return "kill program " + std::to_string(f.b) + " of " + a + " at " + format_seconds(f.at);
    case PlannedFault::Kind::kDiskErrors:
      return "disk " + std::string(disk_error_class_name(f.b)) + " fail (EIO) on " + a + window;
    case PlannedFault::Kind::kSignal:
      return "signal " + signal_name(f.b) + " to " + a + " at " + format_seconds(f.at);
    case PlannedFault::Kind::kCount:
      break;
  }
  return "?";
}

}  // namespace

Duration FaultPlan::end() const noexcept {
  Duration out{};
  for (const PlannedFault& f : faults) out = std::max(out, f.at + f.duration);
  return out;
}

std::string summarize(const FaultPlan& plan, const std::vector<std::string>& host_names) {
  if (plan.empty()) return "no faults";
  std::string out;
  for (const PlannedFault& f : plan.faults) {
    out += (out.empty() ? "" : "; ") + summarize_one(f, host_names);
  }
  return out;
}

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
    case PlannedFault::Kind::kKillProcess:
      return "kill_process";
    case PlannedFault::Kind::kDiskErrors:
      return "disk_errors";
    case PlannedFault::Kind::kSignal:
      return "signal";
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
  if (fault.kind == PlannedFault::Kind::kKillProcess) {
    return out + " " + std::to_string(fault.b) + " on host " + std::to_string(fault.a) + " at " +
           format_duration(fault.at);
  }
  if (fault.kind == PlannedFault::Kind::kSignal) {
    return out + " " + signal_name(fault.b) + " to host " + std::to_string(fault.a) + " at " +
           format_duration(fault.at);
  }
  if (fault.kind == PlannedFault::Kind::kDiskErrors) {
    return out + " (" + disk_error_class_name(fault.b) + ") host " + std::to_string(fault.a) +
           " at " + format_duration(fault.at) + " for " + format_duration(fault.duration);
  }
  out += " host " + std::to_string(fault.a);
  if (fault.kind != PlannedFault::Kind::kCrash) out += " and host " + std::to_string(fault.b);
  out += " at " + format_duration(fault.at) + " for " + format_duration(fault.duration);
  if (fault.kind == PlannedFault::Kind::kSlowLink) {
    out += " (latency " + format_duration(fault.latency) + ")";
  }
  return out;
}

}  // namespace trellis::sim
