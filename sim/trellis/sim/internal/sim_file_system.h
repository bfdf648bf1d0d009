// trellis/sim/internal/sim_file_system.h — the simulated disks behind FileSystemFacet: one
// Disk per host (see disk_config.h for the fault model), dispatched on the calling task's
// host.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "trellis/base/prng.h"
#include "trellis/core/file_system_facet.h"
#include "trellis/sim/disk_config.h"
#include "trellis/sim/internal/host_state.h"
#include "trellis/sim/internal/sim_clock.h"

namespace trellis::sim {
class Trace;
}

namespace trellis::sim::internal {

class Disk {
 public:
  struct Inode {
    bool directory = false;
    std::uint32_t mode = 0644;
    std::int64_t modified_ns = 0;
    std::vector<std::byte> data;     // what reads see (page cache)
    std::vector<std::byte> durable;  // what survives a crash
    // Every change of data (a write or a truncation) takes the next number.
    std::uint64_t next_sequence = 0;
    // Invariant: the changes numbered below durable_through are in `durable`; an fsync
    // called before that point has nothing left to do (a later one got there first).
    std::uint64_t durable_through = 0;
    // 1 + the number of the last truncation (0: none), so an fsync knows whether the file
    // was truncated while it ran.
    std::uint64_t truncated_after = 0;
    // Writes not known durable, in order (for torn writes on a crash), each with its
    // number. Invariant: numbers increase and are all >= durable_through.
    struct Write {
      std::uint64_t offset;
      std::vector<std::byte> bytes;
      std::uint64_t sequence = 0;
    };
    std::vector<Write> unsynced;
    bool truncated_since_sync = false;
    // Latent sector errors (latent_sector_error_ppm): sector indexes (offset / sector_bytes)
    // whose reads fail with EIO until a write covers them. Media damage: survives crashes.
    std::set<std::uint64_t> bad_sectors;
  };

  // The classes of operation a planned disk-error window (FaultPlan's kDiskErrors) fails.
  enum class Op : std::uint8_t { kRead, kWrite, kSync };

  Disk();
  // Keeps the durable state only (tearing unsynced writes as configured).
  void crash(Prng& prng, const DiskConfig& config);

  // Invariant: "/" is in both namespaces; every name's parent is a directory in the same
  // namespace; inode ids are never reused.
  std::map<std::string, std::uint64_t> names;          // volatile
  std::map<std::string, std::uint64_t> durable_names;  // after the last fsync_directory
  std::map<std::uint64_t, Inode> inodes;
  std::uint64_t next_inode = 1;
  std::uint64_t bytes_used = 0;  // sum of data sizes
  // Planned disk-error windows open now, per Op: while one is, every such operation fails
  // with EIO. Hardware: a crash does not close them.
  std::array<std::uint32_t, 3> failing{};
};

class SimFileSystem final : public FileSystemFacet {
 public:
  SimFileSystem(SimClock& clock, Prng& prng, DiskConfig config,
                std::function<HostState*()> current_host, std::function<bool()> caller_is_stale,
                Trace* trace);

  IoResult<IoHandle> open(const std::string& path, int flags, std::uint32_t mode) override;
  int close_file(IoHandle file) override;
  IoResult<std::size_t> read_file(IoHandle file, void* buffer, std::size_t size) override;
  IoResult<std::size_t> write_file(IoHandle file, const void* data, std::size_t size) override;
  IoResult<std::size_t> pread(IoHandle file, void* buffer, std::size_t size,
                              std::uint64_t offset) override;
  IoResult<std::size_t> pwrite(IoHandle file, const void* data, std::size_t size,
                               std::uint64_t offset) override;
  IoResult<std::uint64_t> seek(IoHandle file, std::int64_t offset, int whence) override;
  int fsync(IoHandle file) override;
  int fdatasync(IoHandle file) override;
  int truncate_file(IoHandle file, std::uint64_t size) override;
  IoResult<FileStatus> file_status(IoHandle file) override;
  IoResult<FileStatus> status(const std::string& path) override;
  int make_directory(const std::string& path, std::uint32_t mode) override;
  int remove_directory(const std::string& path) override;
  int unlink(const std::string& path) override;
  int rename(const std::string& from, const std::string& to) override;
  IoResult<std::vector<std::string>> list_directory(const std::string& path) override;
  int fsync_directory(const std::string& path) override;

  void host_crashed(HostState& host);
  // The host's disk (created on first use), for tests and fault plans.
  Disk& disk(const HostState& host) { return disks_[host.index]; }
  // A planned disk-error window opens (failing) or closes on host's disk for the operation
  // classes of `which` (DiskErrorClass in fault_plan.h, taken % 4).
  void set_planned_errors(const HostState& host, std::uint32_t which, bool failing);

 private:
  struct OpenFile {
    HostState* host = nullptr;
    std::uint64_t incarnation = 0;
    std::uint64_t inode = 0;
    int flags = 0;
    std::uint64_t position = 0;
  };

  // Every operation's prologue, in the order of world_view.h: (1) the caller must be a
  // host's task (else UsageError); then, for the operations that touch the disk,
  // checkpoint_if_cancelled (a cancel point, as Trio's to_thread) and the disk's latency (a
  // schedule point cancellation does not interrupt); (2) the host must be up and the caller
  // of its current incarnation (else EIO: a crashed host's disk fails every call); (3) for
  // handle operations, the handle must be the caller's, of this incarnation (else EBADF).
  struct Operation {
    HostState* host = nullptr;
    Disk* disk = nullptr;
    int error = 0;  // EIO: step 2 failed
  };
  Operation start_operation(const char* operation);
  // start_operation, then the normalized path (EINVAL if not absolute or it climbs above /).
  struct PathOperation {
    Disk* disk = nullptr;
    std::string path;
    int error = 0;
  };
  PathOperation start_path_operation(const char* operation, const std::string& raw_path);
  // start_operation (with_latency: else step 1 only, for the calls that never reach the
  // disk: seek, file_status, close_file), then step 3.
  struct FileOperation {
    OpenFile* open = nullptr;
    Disk* disk = nullptr;
    int error = 0;  // EIO or EBADF
  };
  FileOperation start_file_operation(const char* operation, IoHandle file, bool with_latency);
  // EIO for an operation of class op on disk: always while a planned window fails that
  // class (no draw), else with chance eio_ppm.
  bool inject_eio(const Disk& disk, Disk::Op op);
  // The planned part alone (traced); draws nothing.
  bool planned_eio(const Disk& disk, Disk::Op op);
  // A storage fault with chance ppm (disk_config.h), traced as `what`. Draws nothing when
  // ppm is 0, so a knob left off leaves every other draw, and the trace, as they were.
  bool inject(unsigned ppm, const char* what);
  // What an fsync promises durable, fixed when it is called (before its latency): the file's
  // data then, and the number of the next change. Empty if the handle is not the caller's
  // (the operation then fails in start_file_operation).
  struct SyncPoint {
    std::vector<std::byte> data;
    std::uint64_t sequence = 0;
  };
  std::optional<SyncPoint> sync_point(IoHandle file) const;
  // The fsync's end: the point's data becomes durable, and of the writes that started while
  // the fsync ran, a prefix the seed chooses (none if a truncation came between).
  void complete_sync(Disk::Inode& inode, SyncPoint point);
  IoResult<std::size_t> read_at(Disk& disk, const OpenFile& open, void* buffer, std::size_t size,
                                std::uint64_t offset);
  IoResult<std::size_t> write_at(Disk& disk, Disk::Inode& inode, const void* data, std::size_t size,
                                 std::uint64_t offset);
  std::int64_t now_ns() const;

  SimClock& clock_;
  Prng& prng_;
  DiskConfig config_;
  std::function<HostState*()> current_host_;
  std::function<bool()> caller_is_stale_;
  Trace* trace_;
  std::map<std::uint32_t, Disk> disks_;
  std::map<std::int64_t, OpenFile> open_files_;
  std::int64_t next_handle_ = 1'000'000;  // apart from socket handles, for readable dumps
};

// "/a/./b//c/../d" -> "/a/b/d"; empty if not absolute or it climbs above "/".
std::string normalize_path(const std::string& path);
// "/a/b" -> "/a"; "/a" -> "/".
std::string parent_path(const std::string& path);

}  // namespace trellis::sim::internal
