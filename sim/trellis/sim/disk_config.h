// trellis/sim/disk_config.h — DiskConfig: the simulated disks' knobs.
//
// Fault model. Each host has its own disk with a durable state and a volatile page cache.
// write/pwrite change the cache; fsync/fdatasync make durable what the file held when fsync
// was *called*; writes that start while it runs may or may not become durable with it (a
// prefix of them, in order, as the seed says) — POSIX's promise, nothing more. A name
// created, renamed or unlinked becomes durable when its directory is fsynced
// (fsync_directory). crash() keeps only the durable state; with torn_write_ppm, a file's
// unsynced writes may also partly reach the disk on a crash: a prefix of them, in order, the
// last one cut at a sector boundary (sector_bytes). Every operation takes a latency in
// [latency_min, latency_max]; reads, writes and fsyncs fail with EIO with probability
// eio_ppm; writes beyond capacity_bytes of file data fail with ENOSPC.
//
// Storage corruption (TigerBeetle's storage simulator is the model), each a chance per
// operation in parts per million, 0 (the default) turns it off and draws nothing:
// - read_corruption_ppm: a read returns its bytes with one bit flipped. Transient: the
//   disk's copy is intact, so a re-read (after a checksum mismatch) can succeed.
// - misdirected_write_ppm: a write succeeds, the file's size is as asked, but its bytes land
//   at another sector boundary of the same file (cut at the file's end; lost if the file has
//   no other sector), overwriting what was there; the intended range keeps its old bytes.
// - lost_write_ppm: a write is acknowledged (returns its full size) and changes nothing,
//   neither the cache nor the disk.
// - latent_sector_error_ppm: a write damages one of the sectors it wrote: every later read
//   touching that sector fails with EIO until a write covers (part of) it again. Media
//   damage, so it survives crashes (dropped only when the file shrinks below it).
// Planned disk errors (FaultPlan's kDiskErrors, fault_plan.h): for a window of virtual time
// a host's disk fails every operation of a class (reads; writes and truncations; fsyncs,
// fdatasyncs and directory fsyncs; or all three) with EIO, no draw involved, as a disk that
// has gone bad for a while and comes back. A failed write changes nothing; a failed fsync
// makes nothing durable and leaves the unsynced writes as they were, so a later fsync that
// succeeds still makes them durable (a crash before it loses them). Real kernels may instead
// drop the dirty pages after a failed fsync (Linux's "fsyncgate"); a program that retries
// fsync and trusts the retry is right here and may not be there. Opening, renaming,
// unlinking and listing are answered from the page cache and keep working.
// What stays recoverable: with the corruption knobs at 0, data fsynced (and names whose
// directory was fsynced) always survive. With them on, durability holds only for what a
// checksum verifies: a program must detect corruption (checksums, with the offset inside
// the checked bytes against misdirection), and repair from a replica or by rewriting.
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
  // Storage corruption (see above): per read, per write, per write, per write.
  unsigned read_corruption_ppm = 0;
  unsigned misdirected_write_ppm = 0;
  unsigned lost_write_ppm = 0;
  unsigned latent_sector_error_ppm = 0;
};

}  // namespace trellis::sim
