// trellis/posix/internal/posix_file_system.h — EpollBackend's FileSystemFacet: the POSIX
// file calls, each run on a worker thread through to_thread::run_sync (the run's default
// limiter, no abandon), errno-exact.
//
// Every call but close_file starts with checkpoint_if_cancelled and, once its thread runs,
// is not interrupted (FileSystemFacet's contract). close_file runs close(2) on the loop
// thread: it never blocks for long on a regular file and must work in destructors.
// Handles are the file descriptors (opened O_CLOEXEC).
#pragma once

#include "trellis/core/file_system_facet.h"

namespace trellis::posix::internal {

class PosixFileSystem final : public FileSystemFacet {
 public:
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
};

}  // namespace trellis::posix::internal
