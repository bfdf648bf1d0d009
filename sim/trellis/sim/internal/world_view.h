// trellis/sim/internal/world_view.h — WorldView: what the simulated backend's parts need
// from the world, and the one prologue every call on a host's handle starts with.
//
// The prologue's order, the same in every part (TCP, UDP, pipes; the disks in
// sim_file_system.h follow it too):
//   1. the caller must be a host's task — otherwise UsageError (misuse, never an errno);
//   2. the host must be up and the caller of its current incarnation — otherwise the facet's
//      "host is down" errno (ENETDOWN for sockets and pipes): a crashed host's calls all
//      report the crash, never a use-after-close they did not commit;
//   3. the handle must be the caller host's — otherwise EBADF.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "trellis/core/errors.h"
#include "trellis/sim/internal/host_state.h"

namespace trellis::sim::internal {

struct WorldView {
  // The host the running task belongs to (nullptr: outside every host).
  std::function<HostState*()> current_host;
  // True if the running task belongs to a crashed incarnation of its host.
  std::function<bool()> caller_is_stale;
  // The host with this numeric address, or nullptr.
  std::function<HostState*(const std::string& address)> host_by_address;
  // Addresses a name resolves to (empty: unknown name).
  std::function<std::vector<std::string>(const std::string& name)> resolve_name;
  // Crashes a host (Host::crash): a terminating signal's default action.
  std::function<void(HostState&)> crash_host;
  // The host with this name or numeric address, or nullptr.
  std::function<HostState*(const std::string& name_or_address)> host_named;
  // Makes the running task (and the tasks it spawns from now on) a task of host's current
  // incarnation: a program started on another host (ProcessSpec::host).
  std::function<void(HostState&)> bind_current_task;

  // Prologue step 1: the caller's host; throws UsageError outside every host.
  HostState& caller(const char* operation) const {
    HostState* host = current_host ? current_host() : nullptr;
    if (host == nullptr) {
      throw UsageError(std::string(operation) +
                       ": network calls in a simulation must run in a host's task "
                       "(Host::start), not in the world's driver");
    }
    return *host;
  }
  // Prologue step 2: true if host is down or the caller belongs to a crashed incarnation.
  bool caller_down(const HostState& host) const {
    return !host.alive || (caller_is_stale && caller_is_stale());
  }
};

}  // namespace trellis::sim::internal
