// trellis/sim/disk_config.h — DiskConfig: the simulated disks' knobs.
//
// Fault model. Each host has its own disk with a durable state and a volatile page cache.
// write/pwrite change the cache; fsync/fdatasync make a file's data durable; a name created,
// renamed or unlinked becomes durable when its directory is fsynced (fsync_directory) —
// POSIX's promise, nothing more. crash() keeps only the durable state; with torn_write_ppm,
// a file's unsynced writes may also partly reach the disk on a crash: a prefix of them, in
// order, the last one cut at a sector boundary (sector_bytes). Every operation takes a
// latency in [latency_min, latency_max]; reads, writes and fsyncs fail with EIO with
// probability eio_ppm; writes beyond capacity_bytes of file data fail with ENOSPC. What
// stays recoverable: data fsynced (and names whose directory was fsynced) always survive.
#pragma once

#include <chrono>
#include <cstdint>

#include "trellis/core/time.h"

namespace trellis::sim {

struct DiskConfig {
  Duration latency_min = std::chrono::microseconds(20);
  Duration latency_max = std::chrono::microseconds(500);
  unsigned eio_ppm = 0;
  std::uint64_t capacity_bytes = std::uint64_t{1} << 30;
  unsigned torn_write_ppm = 0;
  std::uint32_t sector_bytes = 512;
};

}  // namespace trellis::sim
