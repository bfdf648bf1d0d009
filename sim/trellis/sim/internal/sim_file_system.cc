#include "trellis/sim/internal/sim_file_system.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "trellis/base/assert.h"
#include "trellis/core/cancel_scope.h"
#include "trellis/core/errors.h"
#include "trellis/core/run.h"
#include "trellis/sim/trace.h"

namespace trellis::sim::internal {
namespace {

template <class T>
IoResult<T> failure(int error) {
  IoResult<T> result;
  result.error = error;
  return result;
}

constexpr std::uint64_t kRootInode = 0;
constexpr unsigned kMillion = 1'000'000;

// Drops the bad sectors that lie wholly at or beyond `size` (the file no longer has them).
void forget_sectors_beyond(Disk::Inode& inode, std::uint64_t size, std::uint32_t sector_bytes) {
  const std::uint64_t first_gone = (size + sector_bytes - 1) / sector_bytes;
  inode.bad_sectors.erase(inode.bad_sectors.lower_bound(first_gone), inode.bad_sectors.end());
}

void apply_write(std::vector<std::byte>& data, std::uint64_t offset,
                 const std::vector<std::byte>& bytes, std::size_t length) {
  TRELLIS_ASSERT(length <= bytes.size());
  if (offset + length > data.size()) data.resize(offset + length);
  std::copy_n(bytes.begin(), length, data.begin() + static_cast<std::ptrdiff_t>(offset));
}

}  // namespace

std::string normalize_path(const std::string& path) {
  if (path.empty() || path[0] != '/') return {};
  std::vector<std::string> parts;
  std::size_t i = 0;
  while (i < path.size()) {
    while (i < path.size() && path[i] == '/') ++i;
    const std::size_t start = i;
    while (i < path.size() && path[i] != '/') ++i;
    const std::string part = path.substr(start, i - start);
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      if (parts.empty()) return {};
      parts.pop_back();
      continue;
    }
    parts.push_back(part);
  }
  std::string out;
  for (const std::string& part : parts) out += "/" + part;
  return out.empty() ? "/" : out;
}

std::string parent_path(const std::string& path) {
  const std::size_t slash = path.rfind('/');
  if (slash == 0 || slash == std::string::npos) return "/";
  return path.substr(0, slash);
}

// ---- Disk ------------------------------------------------------------------------------------

Disk::Disk() {
  Inode root;
  root.directory = true;
  root.mode = 0755;
  inodes.emplace(kRootInode, std::move(root));
  names.emplace("/", kRootInode);
  durable_names.emplace("/", kRootInode);
}

void Disk::crash(Prng& prng, const DiskConfig& config) {
  // The durable names, minus those whose directory is not itself durable (sorted order
  // visits a directory before its entries).
  names.clear();
  for (const auto& [name, id] : durable_names) {
    if (name == "/" || names.contains(parent_path(name))) names.emplace(name, id);
  }
  durable_names = names;
  std::map<std::uint64_t, Inode> kept;
  bytes_used = 0;
  for (const auto& [name, id] : names) {
    if (kept.contains(id)) continue;
    Inode inode = std::move(inodes.at(id));
    inode.data = inode.durable;
    if (!inode.unsynced.empty() && prng.chance(config.torn_write_ppm, 1'000'000)) {
      // A prefix of the unsynced writes reached the platter, the last of them torn at a
      // sector boundary.
      const std::size_t reached = 1 + prng.below(inode.unsynced.size());
      for (std::size_t i = 0; i < reached; ++i) {
        const Inode::Write& write = inode.unsynced[i];
        std::size_t length = write.bytes.size();
        if (i + 1 == reached) {
          const std::size_t sectors = (length + config.sector_bytes - 1) / config.sector_bytes;
          length = std::min<std::size_t>(length, prng.below(sectors + 1) * config.sector_bytes);
        }
        apply_write(inode.data, write.offset, write.bytes, length);
      }
      inode.durable = inode.data;
    }
    inode.unsynced.clear();
    inode.durable_through = inode.next_sequence;
    inode.truncated_since_sync = false;
    forget_sectors_beyond(inode, inode.data.size(), config.sector_bytes);
    bytes_used += inode.data.size();
    kept.emplace(id, std::move(inode));
  }
  inodes = std::move(kept);
  TRELLIS_ASSERT(names.contains("/") && inodes.contains(kRootInode));
}

// ---- SimFileSystem ---------------------------------------------------------------------------

SimFileSystem::SimFileSystem(SimClock& clock, Prng& prng, DiskConfig config,
                             std::function<HostState*()> current_host,
                             std::function<bool()> caller_is_stale, Trace* trace)
    : clock_(clock),
      prng_(prng),
      config_(config),
      current_host_(std::move(current_host)),
      caller_is_stale_(std::move(caller_is_stale)),
      trace_(trace) {
  TRELLIS_ASSERT(config_.latency_min <= config_.latency_max);
  TRELLIS_ASSERT(config_.sector_bytes > 0);
}

std::int64_t SimFileSystem::now_ns() const {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(clock_.now().time_since_epoch())
      .count();
}

SimFileSystem::Operation SimFileSystem::start_operation(const char* operation) {
  HostState* host = current_host_ ? current_host_() : nullptr;
  if (host == nullptr) {
    throw UsageError(std::string(operation) +
                     ": file calls in a simulation must run in a host's task (Host::start)");
  }
  checkpoint_if_cancelled();
  const auto span = static_cast<std::uint64_t>((config_.latency_max - config_.latency_min).count());
  const Duration latency =
      config_.latency_min + Duration(static_cast<Duration::rep>(prng_.below(span + 1)));
  TRELLIS_ASSERT(latency >= config_.latency_min && latency <= config_.latency_max);
  // The disk takes its time; cancellation waits for the operation (as Trio's file calls).
  CancelScope shielded;
  shielded.set_shield(true);
  shielded.run([&] { sleep(latency); });
  // The host may have crashed meanwhile: then the caller is stale, or the host down.
  const bool down = !host->alive || (caller_is_stale_ && caller_is_stale_());
  return Operation{host, &disks_[host->index], down ? EIO : 0};
}

SimFileSystem::PathOperation SimFileSystem::start_path_operation(const char* operation,
                                                                 const std::string& raw_path) {
  const Operation started = start_operation(operation);
  if (started.error != 0) return PathOperation{started.disk, {}, started.error};
  std::string path = normalize_path(raw_path);
  const int error = path.empty() ? EINVAL : 0;
  return PathOperation{started.disk, std::move(path), error};
}

SimFileSystem::FileOperation SimFileSystem::start_file_operation(const char* operation,
                                                                 IoHandle file, bool with_latency) {
  HostState* host = nullptr;
  if (with_latency) {
    const Operation started = start_operation(operation);
    if (started.error != 0) return FileOperation{nullptr, started.disk, started.error};
    host = started.host;
  } else {
    host = current_host_ ? current_host_() : nullptr;
    if (host == nullptr) {
      throw UsageError(std::string(operation) +
                       ": file calls in a simulation must run in a host's task (Host::start)");
    }
    if (!host->alive || (caller_is_stale_ && caller_is_stale_())) return FileOperation{{}, {}, EIO};
  }
  auto it = open_files_.find(file.value);
  if (it == open_files_.end() || it->second.host != host ||
      it->second.incarnation != host->incarnation) {
    return FileOperation{nullptr, nullptr, EBADF};
  }
  Disk& disk = disks_[host->index];
  // An open file's inode lives while it is open (unlinked or not); a crash closes them all.
  TRELLIS_ASSERT(disk.inodes.contains(it->second.inode));
  return FileOperation{&it->second, &disk, 0};
}

void SimFileSystem::set_planned_errors(const HostState& host, std::uint32_t which, bool failing) {
  Disk& disk = disks_[host.index];
  const std::uint32_t cls = which % 4;  // DiskErrorClass: all, reads, writes, syncs
  for (std::uint32_t op = 0; op < disk.failing.size(); ++op) {
    if (cls != 0 && cls != op + 1) continue;
    if (failing) {
      ++disk.failing[op];
    } else {
      TRELLIS_ASSERT(disk.failing[op] > 0);
      --disk.failing[op];
    }
  }
}

bool SimFileSystem::planned_eio(const Disk& disk, Disk::Op op) {
  if (disk.failing[static_cast<std::size_t>(op)] == 0) return false;
  if (trace_ != nullptr) trace_->record("disk EIO (planned)", static_cast<std::uint64_t>(op));
  return true;
}

bool SimFileSystem::inject_eio(const Disk& disk, Disk::Op op) {
  if (planned_eio(disk, op)) return true;
  if (!prng_.chance(config_.eio_ppm, kMillion)) return false;
  if (trace_ != nullptr) trace_->record("disk EIO injected");
  return true;
}

bool SimFileSystem::inject(unsigned ppm, const char* what) {
  if (ppm == 0 || !prng_.chance(ppm, kMillion)) return false;
  if (trace_ != nullptr) trace_->record(what);
  return true;
}

IoResult<IoHandle> SimFileSystem::open(const std::string& raw_path, int flags, std::uint32_t mode) {
  const Operation started = start_operation("open");
  if (started.error != 0) return failure<IoHandle>(started.error);
  HostState* host = started.host;
  Disk& disk = *started.disk;
  const std::string path = normalize_path(raw_path);
  if (path.empty()) return failure<IoHandle>(EINVAL);
  auto name = disk.names.find(path);
  std::uint64_t id = 0;
  if (name == disk.names.end()) {
    if ((flags & O_CREAT) == 0) return failure<IoHandle>(ENOENT);
    auto parent = disk.names.find(parent_path(path));
    if (parent == disk.names.end()) return failure<IoHandle>(ENOENT);
    if (!disk.inodes.at(parent->second).directory) return failure<IoHandle>(ENOTDIR);
    id = disk.next_inode++;
    Disk::Inode inode;
    inode.mode = mode & 07777;
    inode.modified_ns = now_ns();
    disk.inodes.emplace(id, std::move(inode));
    disk.names.emplace(path, id);
  } else {
    if ((flags & O_CREAT) != 0 && (flags & O_EXCL) != 0) return failure<IoHandle>(EEXIST);
    id = name->second;
    Disk::Inode& inode = disk.inodes.at(id);
    if (inode.directory && (flags & O_ACCMODE) != O_RDONLY) return failure<IoHandle>(EISDIR);
    if ((flags & O_TRUNC) != 0 && (flags & O_ACCMODE) != O_RDONLY && !inode.data.empty()) {
      disk.bytes_used -= inode.data.size();
      inode.data.clear();
      inode.unsynced.clear();
      inode.truncated_after = ++inode.next_sequence;
      inode.truncated_since_sync = true;
      inode.bad_sectors.clear();
      inode.modified_ns = now_ns();
    }
  }
  const std::int64_t handle = next_handle_++;
  const bool fresh =
      open_files_.emplace(handle, OpenFile{host, host->incarnation, id, flags, 0}).second;
  TRELLIS_ASSERT(fresh);
  return {IoHandle{handle}, 0};
}

int SimFileSystem::close_file(IoHandle file) {
  const FileOperation op = start_file_operation("close", file, false);
  if (op.error != 0) return op.error;
  open_files_.erase(file.value);  // closing does not sync (as close(2))
  return 0;
}

IoResult<std::size_t> SimFileSystem::read_file(IoHandle file, void* buffer, std::size_t size) {
  const FileOperation op = start_file_operation("read", file, true);
  if (op.error != 0) return failure<std::size_t>(op.error);
  IoResult<std::size_t> got = read_at(*op.disk, *op.open, buffer, size, op.open->position);
  if (got.ok()) op.open->position += got.value;
  return got;
}

IoResult<std::size_t> SimFileSystem::pread(IoHandle file, void* buffer, std::size_t size,
                                           std::uint64_t offset) {
  const FileOperation op = start_file_operation("pread", file, true);
  if (op.error != 0) return failure<std::size_t>(op.error);
  return read_at(*op.disk, *op.open, buffer, size, offset);
}

IoResult<std::size_t> SimFileSystem::read_at(Disk& disk, const OpenFile& open, void* buffer,
                                             std::size_t size, std::uint64_t offset) {
  if ((open.flags & O_ACCMODE) == O_WRONLY) return failure<std::size_t>(EBADF);
  const Disk::Inode& inode = disk.inodes.at(open.inode);
  if (inode.directory) return failure<std::size_t>(EISDIR);
  if (inject_eio(disk, Disk::Op::kRead)) return failure<std::size_t>(EIO);
  if (offset >= inode.data.size()) return {0, 0};
  const std::size_t n = std::min<std::uint64_t>(size, inode.data.size() - offset);
  // A latent sector error shows on the first read that touches the sector.
  if (n > 0) {
    const std::uint64_t first = offset / config_.sector_bytes;
    auto bad = inode.bad_sectors.lower_bound(first);
    if (bad != inode.bad_sectors.end() && *bad <= (offset + n - 1) / config_.sector_bytes) {
      if (trace_ != nullptr) trace_->record("disk latent sector error read", *bad);
      return failure<std::size_t>(EIO);
    }
  }
  std::memcpy(buffer, inode.data.data() + offset, n);
  if (n > 0 && inject(config_.read_corruption_ppm, "disk read corrupted")) {
    // One bit flips on the way to the caller; the disk's copy stays as it was.
    const std::uint64_t bit = prng_.below(std::uint64_t{n} * 8);
    static_cast<unsigned char*>(buffer)[bit / 8] ^= static_cast<unsigned char>(1u << (bit % 8));
  }
  return {n, 0};
}

IoResult<std::size_t> SimFileSystem::write_at(Disk& disk, Disk::Inode& inode, const void* data,
                                              std::size_t size, std::uint64_t offset) {
  if (inject_eio(disk, Disk::Op::kWrite)) return failure<std::size_t>(EIO);
  const std::uint64_t end = offset + size;
  const std::uint64_t growth = end > inode.data.size() ? end - inode.data.size() : 0;
  std::size_t n = size;
  if (disk.bytes_used + growth > config_.capacity_bytes) {
    // Fill what fits, as a real disk does; nothing fits: ENOSPC.
    const std::uint64_t room =
        config_.capacity_bytes > disk.bytes_used ? config_.capacity_bytes - disk.bytes_used : 0;
    const std::uint64_t fits = (inode.data.size() > offset ? inode.data.size() - offset : 0) + room;
    n = static_cast<std::size_t>(std::min<std::uint64_t>(size, fits));
    if (n == 0) return failure<std::size_t>(ENOSPC);
  }
  if (inject(config_.lost_write_ppm, "disk write lost")) return {n, 0};  // acknowledged, gone
  if (offset + n > inode.data.size()) {
    disk.bytes_used += offset + n - inode.data.size();
    inode.data.resize(offset + n);
  }
  const auto* bytes = static_cast<const std::byte*>(data);
  std::uint64_t landed = offset;
  std::size_t landed_size = n;
  if (n > 0 && inject(config_.misdirected_write_ppm, "disk write misdirected")) {
    // The file's size is as asked; the bytes land at another sector boundary of the file,
    // cut at its end (none other exists: they land outside the file, lost).
    const std::uint64_t sectors =
        (inode.data.size() + config_.sector_bytes - 1) / config_.sector_bytes;
    landed = prng_.below(sectors) * config_.sector_bytes;
    if (landed == offset)
      landed = (landed + config_.sector_bytes) % (sectors * config_.sector_bytes);
    landed_size = landed == offset ? 0 : std::min<std::uint64_t>(n, inode.data.size() - landed);
    TRELLIS_ASSERT(landed + landed_size <= inode.data.size());
  }
  std::memcpy(inode.data.data() + landed, data, landed_size);
  // The sectors written are rewritten: a drive remaps the bad ones among them.
  if (landed_size > 0) {
    const std::uint64_t first = landed / config_.sector_bytes;
    const std::uint64_t last = (landed + landed_size - 1) / config_.sector_bytes;
    inode.bad_sectors.erase(inode.bad_sectors.lower_bound(first),
                            inode.bad_sectors.upper_bound(last));
    if (inject(config_.latent_sector_error_ppm, "disk latent sector error")) {
      inode.bad_sectors.insert(first + prng_.below(last - first + 1));
    }
  }
  inode.unsynced.push_back(
      {landed, std::vector<std::byte>(bytes, bytes + landed_size), inode.next_sequence++});
  inode.modified_ns = now_ns();
  return {n, 0};
}

IoResult<std::size_t> SimFileSystem::write_file(IoHandle file, const void* data, std::size_t size) {
  const FileOperation op = start_file_operation("write", file, true);
  if (op.error != 0) return failure<std::size_t>(op.error);
  OpenFile& open = *op.open;
  if ((open.flags & O_ACCMODE) == O_RDONLY) return failure<std::size_t>(EBADF);
  Disk::Inode& inode = op.disk->inodes.at(open.inode);
  if ((open.flags & O_APPEND) != 0) open.position = inode.data.size();
  IoResult<std::size_t> wrote = write_at(*op.disk, inode, data, size, open.position);
  if (wrote.ok()) open.position += wrote.value;
  return wrote;
}

IoResult<std::size_t> SimFileSystem::pwrite(IoHandle file, const void* data, std::size_t size,
                                            std::uint64_t offset) {
  const FileOperation op = start_file_operation("pwrite", file, true);
  if (op.error != 0) return failure<std::size_t>(op.error);
  if ((op.open->flags & O_ACCMODE) == O_RDONLY) return failure<std::size_t>(EBADF);
  return write_at(*op.disk, op.disk->inodes.at(op.open->inode), data, size, offset);
}

IoResult<std::uint64_t> SimFileSystem::seek(IoHandle file, std::int64_t offset, int whence) {
  const FileOperation op = start_file_operation("lseek", file, false);
  if (op.error != 0) return failure<std::uint64_t>(op.error);
  OpenFile* open = op.open;
  Disk* disk = op.disk;
  std::int64_t base = 0;
  if (whence == SEEK_CUR) {
    base = static_cast<std::int64_t>(open->position);
  } else if (whence == SEEK_END) {
    base = static_cast<std::int64_t>(disk->inodes.at(open->inode).data.size());
  } else if (whence != SEEK_SET) {
    return failure<std::uint64_t>(EINVAL);
  }
  if (base + offset < 0) return failure<std::uint64_t>(EINVAL);
  open->position = static_cast<std::uint64_t>(base + offset);
  return {open->position, 0};
}

std::optional<SimFileSystem::SyncPoint> SimFileSystem::sync_point(IoHandle file) const {
  const HostState* host = current_host_ ? current_host_() : nullptr;
  auto it = open_files_.find(file.value);
  if (host == nullptr || it == open_files_.end() || it->second.host != host ||
      it->second.incarnation != host->incarnation) {
    return std::nullopt;
  }
  const Disk::Inode& inode = disks_.at(host->index).inodes.at(it->second.inode);
  return SyncPoint{inode.data, inode.next_sequence};
}

void SimFileSystem::complete_sync(Disk::Inode& inode, SyncPoint point) {
  TRELLIS_ASSERT(point.sequence <= inode.next_sequence);
  if (point.sequence <= inode.durable_through) return;  // a later fsync got there first
  inode.durable = std::move(point.data);
  inode.durable_through = point.sequence;
  auto later =
      std::find_if(inode.unsynced.begin(), inode.unsynced.end(),
                   [&](const Disk::Inode::Write& w) { return w.sequence >= point.sequence; });
  const bool truncated_meanwhile = inode.truncated_after > point.sequence;
  if (later != inode.unsynced.end() && !truncated_meanwhile) {
    // The kernel may flush pages dirtied while the fsync ran: a prefix of those writes, in
    // order, as the seed says.
    const auto count = static_cast<std::uint64_t>(inode.unsynced.end() - later);
    const std::uint64_t reached = prng_.below(count + 1);
    for (std::uint64_t i = 0; i < reached; ++i, ++later) {
      apply_write(inode.durable, later->offset, later->bytes, later->bytes.size());
      inode.durable_through = later->sequence + 1;
    }
  }
  inode.unsynced.erase(inode.unsynced.begin(), later);
  if (!truncated_meanwhile) inode.truncated_since_sync = false;
  TRELLIS_ASSERT(inode.unsynced.empty() ||
                 inode.unsynced.front().sequence >= inode.durable_through);
}

int SimFileSystem::fsync(IoHandle file) {
  // POSIX promises durable what was written before the call; writes that start while it runs
  // may or may not be. So the promise is fixed now, before the disk's latency.
  std::optional<SyncPoint> point = sync_point(file);
  const FileOperation op = start_file_operation("fsync", file, true);
  if (op.error != 0) return op.error;
  if (inject_eio(*op.disk, Disk::Op::kSync)) return EIO;
  // Handles are never reused: valid now means it was valid at the call.
  TRELLIS_ASSERT(point.has_value());
  complete_sync(op.disk->inodes.at(op.open->inode), std::move(*point));
  return 0;
}

int SimFileSystem::fdatasync(IoHandle file) {
  return fsync(file);
}

int SimFileSystem::truncate_file(IoHandle file, std::uint64_t size) {
  const FileOperation op = start_file_operation("ftruncate", file, true);
  if (op.error != 0) return op.error;
  OpenFile* open = op.open;
  Disk* disk = op.disk;
  if ((open->flags & O_ACCMODE) == O_RDONLY) return EINVAL;
  if (planned_eio(*disk, Disk::Op::kWrite)) return EIO;  // eio_ppm never drew here
  Disk::Inode& inode = disk->inodes.at(open->inode);
  if (size > inode.data.size() &&
      disk->bytes_used + (size - inode.data.size()) > config_.capacity_bytes) {
    return ENOSPC;
  }
  disk->bytes_used = disk->bytes_used - inode.data.size() + size;
  inode.data.resize(size);
  // A truncation is not replayed piecemeal on a crash: it is all or (with the rest of the
  // unsynced state) nothing.
  inode.unsynced.clear();
  inode.truncated_after = ++inode.next_sequence;
  inode.truncated_since_sync = true;
  forget_sectors_beyond(inode, size, config_.sector_bytes);
  inode.modified_ns = now_ns();
  return 0;
}

IoResult<FileStatus> SimFileSystem::file_status(IoHandle file) {
  const FileOperation op = start_file_operation("fstat", file, false);
  if (op.error != 0) return failure<FileStatus>(op.error);
  const Disk::Inode& inode = op.disk->inodes.at(op.open->inode);
  return {FileStatus{inode.data.size(), inode.directory, !inode.directory, inode.mode,
                     inode.modified_ns},
          0};
}

IoResult<FileStatus> SimFileSystem::status(const std::string& raw_path) {
  const PathOperation op = start_path_operation("stat", raw_path);
  if (op.error != 0) return failure<FileStatus>(op.error);
  Disk& disk = *op.disk;
  const std::string& path = op.path;
  auto name = disk.names.find(path);
  if (name == disk.names.end()) return failure<FileStatus>(ENOENT);
  const Disk::Inode& inode = disk.inodes.at(name->second);
  return {FileStatus{inode.data.size(), inode.directory, !inode.directory, inode.mode,
                     inode.modified_ns},
          0};
}

int SimFileSystem::make_directory(const std::string& raw_path, std::uint32_t mode) {
  const PathOperation op = start_path_operation("mkdir", raw_path);
  if (op.error != 0) return op.error;
  Disk& disk = *op.disk;
  const std::string& path = op.path;
  if (disk.names.contains(path)) return EEXIST;
  auto parent = disk.names.find(parent_path(path));
  if (parent == disk.names.end()) return ENOENT;
  if (!disk.inodes.at(parent->second).directory) return ENOTDIR;
  const std::uint64_t id = disk.next_inode++;
  Disk::Inode inode;
  inode.directory = true;
  inode.mode = mode & 07777;
  inode.modified_ns = now_ns();
  disk.inodes.emplace(id, std::move(inode));
  disk.names.emplace(path, id);
  return 0;
}

namespace {

bool has_children(const std::map<std::string, std::uint64_t>& names, const std::string& dir) {
  const std::string prefix = dir == "/" ? "/" : dir + "/";
  auto it = names.upper_bound(prefix);
  if (dir != "/") it = names.lower_bound(prefix);
  for (; it != names.end() && it->first.starts_with(prefix); ++it) {
    if (it->first != dir) return true;
  }
  return false;
}

}  // namespace

int SimFileSystem::remove_directory(const std::string& raw_path) {
  const PathOperation op = start_path_operation("rmdir", raw_path);
  if (op.error != 0) return op.error;
  Disk& disk = *op.disk;
  const std::string& path = op.path;
  if (path == "/") return EBUSY;
  auto name = disk.names.find(path);
  if (name == disk.names.end()) return ENOENT;
  if (!disk.inodes.at(name->second).directory) return ENOTDIR;
  if (has_children(disk.names, path)) return ENOTEMPTY;
  disk.names.erase(name);
  return 0;
}

int SimFileSystem::unlink(const std::string& raw_path) {
  const PathOperation op = start_path_operation("unlink", raw_path);
  if (op.error != 0) return op.error;
  Disk& disk = *op.disk;
  const std::string& path = op.path;
  auto name = disk.names.find(path);
  if (name == disk.names.end()) return ENOENT;
  if (disk.inodes.at(name->second).directory) return EISDIR;
  // The inode lives on while open (its data still counts, as on a real disk).
  disk.names.erase(name);
  return 0;
}

int SimFileSystem::rename(const std::string& raw_from, const std::string& raw_to) {
  const PathOperation op = start_path_operation("rename", raw_from);
  if (op.error != 0) return op.error;
  Disk& disk = *op.disk;
  const std::string& from = op.path;
  const std::string to = normalize_path(raw_to);
  if (to.empty() || from == "/" || to == "/") return EINVAL;
  auto source = disk.names.find(from);
  if (source == disk.names.end()) return ENOENT;
  if (from == to) return 0;
  auto parent = disk.names.find(parent_path(to));
  if (parent == disk.names.end()) return ENOENT;
  if (!disk.inodes.at(parent->second).directory) return ENOTDIR;
  const bool moving_directory = disk.inodes.at(source->second).directory;
  if (moving_directory && to.starts_with(from + "/")) return EINVAL;
  auto target = disk.names.find(to);
  if (target != disk.names.end()) {
    const bool target_directory = disk.inodes.at(target->second).directory;
    if (moving_directory && !target_directory) return ENOTDIR;
    if (!moving_directory && target_directory) return EISDIR;
    if (target_directory && has_children(disk.names, to)) return ENOTEMPTY;
  }
  // Atomic: the name switches in one step. A directory takes its subtree along.
  std::vector<std::pair<std::string, std::uint64_t>> moved;
  moved.emplace_back(to, source->second);
  if (moving_directory) {
    const std::string prefix = from + "/";
    for (auto it = disk.names.lower_bound(prefix);
         it != disk.names.end() && it->first.starts_with(prefix);) {
      moved.emplace_back(to + it->first.substr(from.size()), it->second);
      it = disk.names.erase(it);
    }
  }
  disk.names.erase(from);
  for (auto& [name, id] : moved) disk.names[name] = id;
  return 0;
}

IoResult<std::vector<std::string>> SimFileSystem::list_directory(const std::string& raw_path) {
  const PathOperation op = start_path_operation("listdir", raw_path);
  if (op.error != 0) return failure<std::vector<std::string>>(op.error);
  Disk& disk = *op.disk;
  const std::string& path = op.path;
  auto name = disk.names.find(path);
  if (name == disk.names.end()) return failure<std::vector<std::string>>(ENOENT);
  if (!disk.inodes.at(name->second).directory) return failure<std::vector<std::string>>(ENOTDIR);
  const std::string prefix = path == "/" ? "/" : path + "/";
  std::vector<std::string> out;
  for (auto it = disk.names.lower_bound(prefix);
       it != disk.names.end() && it->first.starts_with(prefix); ++it) {
    const std::string rest = it->first.substr(prefix.size());
    if (!rest.empty() && rest.find('/') == std::string::npos) out.push_back(rest);
  }
  return {out, 0};
}

int SimFileSystem::fsync_directory(const std::string& raw_path) {
  const PathOperation op = start_path_operation("fsync(directory)", raw_path);
  if (op.error != 0) return op.error;
  Disk& disk = *op.disk;
  const std::string& path = op.path;
  auto name = disk.names.find(path);
  if (name == disk.names.end()) return ENOENT;
  if (!disk.inodes.at(name->second).directory) return ENOTDIR;
  if (inject_eio(disk, Disk::Op::kSync)) return EIO;
  // The directory's entries become durable exactly as they are now: one atomic step.
  auto is_child = [&](const std::string& candidate) {
    return candidate != "/" && candidate != path && parent_path(candidate) == path;
  };
  for (auto it = disk.durable_names.begin(); it != disk.durable_names.end();) {
    it = is_child(it->first) ? disk.durable_names.erase(it) : std::next(it);
  }
  for (const auto& [entry, id] : disk.names) {
    if (is_child(entry)) disk.durable_names[entry] = id;
  }
  // A durable directory's durable subtree stays reachable only under its durable name;
  // entries whose parent is not durable are harmless (dropped by the next crash's walk).
  return 0;
}

void SimFileSystem::host_crashed(HostState& host) {
  for (auto it = open_files_.begin(); it != open_files_.end();) {
    it = it->second.host == &host ? open_files_.erase(it) : std::next(it);
  }
  disks_[host.index].crash(prng_, config_);
  if (trace_ != nullptr) trace_->record("disk crash", host.index);
}

}  // namespace trellis::sim::internal
