// trellis/core/file_system_facet.h — the Backend facet for files and directories.
//
// Syscall-shaped and errno-exact like the other facets, so the simulator's per-host disks
// (a durable state plus a volatile page cache, crashes, torn writes, EIO/ENOSPC) stand
// behind the same calls as the real file system. Every call blocks the calling task until
// the operation is done (the real backend runs it on a worker thread) and is a checkpoint
// the way Trio's file wrappers are (to_thread without abandon): it starts with
// checkpoint_if_cancelled (Cancelled if already cancelled, nothing done), and once started
// the operation is not interrupted — a cancel arriving meanwhile is delivered at the
// caller's next checkpoint.
//
// Durability is POSIX's, strictly: write/pwrite reach the page cache; fsync(file) makes the
// file's data durable; a created, renamed or unlinked name is durable only once its
// directory is fsynced (fsync_directory). rename() is atomic. The layers above (Path,
// AsyncFile in io/file.h) add nothing to this.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "trellis/core/io_facet.h"

namespace trellis {

struct FileStatus {
  std::uint64_t size = 0;
  bool is_directory = false;
  bool is_regular = false;
  std::uint32_t mode = 0;        // permission bits
  std::int64_t modified_ns = 0;  // on the run's clock for the simulator, CLOCK_REALTIME for real
};

class FileSystemFacet {
 public:
  virtual ~FileSystemFacet() = default;

  // open(2) with O_RDONLY / O_WRONLY / O_RDWR and O_CREAT, O_EXCL, O_TRUNC, O_APPEND.
  virtual IoResult<IoHandle> open(const std::string& path, int flags, std::uint32_t mode) = 0;
  virtual int close_file(IoHandle file) = 0;
  // At the file position (which they advance) / at an offset (position unchanged).
  virtual IoResult<std::size_t> read_file(IoHandle file, void* buffer, std::size_t size) = 0;
  virtual IoResult<std::size_t> write_file(IoHandle file, const void* data, std::size_t size) = 0;
  virtual IoResult<std::size_t> pread(IoHandle file, void* buffer, std::size_t size,
                                      std::uint64_t offset) = 0;
  virtual IoResult<std::size_t> pwrite(IoHandle file, const void* data, std::size_t size,
                                       std::uint64_t offset) = 0;
  // lseek(2): SEEK_SET, SEEK_CUR, SEEK_END; returns the new position.
  virtual IoResult<std::uint64_t> seek(IoHandle file, std::int64_t offset, int whence) = 0;
  virtual int fsync(IoHandle file) = 0;
  virtual int fdatasync(IoHandle file) = 0;
  virtual int truncate_file(IoHandle file, std::uint64_t size) = 0;
  virtual IoResult<FileStatus> file_status(IoHandle file) = 0;

  virtual IoResult<FileStatus> status(const std::string& path) = 0;  // stat(2)
  virtual int make_directory(const std::string& path, std::uint32_t mode) = 0;
  virtual int remove_directory(const std::string& path) = 0;  // must be empty
  virtual int unlink(const std::string& path) = 0;
  virtual int rename(const std::string& from, const std::string& to) = 0;
  // Entry names (not "." or ".."), sorted.
  virtual IoResult<std::vector<std::string>> list_directory(const std::string& path) = 0;
  // Makes the directory's entries (creations, renames, unlinks in it) durable.
  virtual int fsync_directory(const std::string& path) = 0;
};

}  // namespace trellis
