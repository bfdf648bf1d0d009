// trellis/io/file.h — files and paths (Trio's open_file / AsyncFile / Path), over the
// backend's FileSystemFacet: real files on the epoll backend, a host's simulated disk in a
// sim::World.
//
//   trellis::AsyncFile log = trellis::open_file("/data/wal", "a");
//   log.write(record);
//   log.fsync();                                   // durable from here on
//   trellis::Path("/data").fsync_directory();      // and so is the file's name
//   std::string text = trellis::Path("/etc/hostname").read_text();
//
// Every operation blocks the calling task until done and is a checkpoint like Trio's file
// wrappers: Cancelled before it starts if the task is already cancelled; once started it is
// not interrupted, and a cancellation arriving meanwhile is delivered at the next checkpoint.
// Errors are OSError naming the operation and path; using a closed AsyncFile throws
// ClosedResourceError. Unbuffered: each write is one facet write (looping until all is
// written), so flush() only checks the file is open.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "trellis/core/file_system_facet.h"
#include "trellis/core/io_facet.h"

namespace trellis {

class AsyncFile {
 public:
  AsyncFile() = default;  // closed
  AsyncFile(AsyncFile&& other) noexcept;
  AsyncFile& operator=(AsyncFile&& other) noexcept;
  AsyncFile(const AsyncFile&) = delete;
  AsyncFile& operator=(const AsyncFile&) = delete;
  // Closes the file if open (inside a run; errors are ignored, as close(2)'s often are).
  ~AsyncFile();

  // Up to buffer.size() bytes at the file position; 0 at end of file.
  std::size_t read(std::span<std::byte> buffer);
  // Everything from the file position to the end.
  std::string read_all();
  // All of data at the file position (or the end, in append mode).
  void write(std::span<const std::byte> data);
  void write(std::string_view text);
  // At an offset, position unchanged. pread may return fewer bytes at end of file.
  std::size_t pread(std::span<std::byte> buffer, std::uint64_t offset);
  void pwrite(std::span<const std::byte> data, std::uint64_t offset);
  // SEEK_SET / SEEK_CUR / SEEK_END; returns the new position.
  std::uint64_t seek(std::int64_t offset, int whence = 0);
  void flush();
  void fsync();
  void fdatasync();
  void truncate(std::uint64_t size);
  FileStatus stat();
  // Idempotent. A checkpoint only when it actually closes.
  void close();

  bool is_open() const noexcept { return handle_.valid(); }
  const std::string& path() const noexcept { return path_; }

 private:
  friend AsyncFile open_file(const std::string& path, std::string_view mode);
  AsyncFile(IoHandle handle, std::string path) : handle_(handle), path_(std::move(path)) {}
  IoHandle checked(const char* operation) const;

  IoHandle handle_;
  std::string path_;
};

// Python's modes: "r", "w", "a", "x", each optionally with "+", and an ignored "b"/"t".
// Throws std::invalid_argument for any other mode, OSError if the open fails.
AsyncFile open_file(const std::string& path, std::string_view mode = "r");

// A file-system path with pathlib-like blocking operations (no checkpoint for the pure
// string operations).
class Path {
 public:
  Path() = default;
  Path(std::string path) : path_(std::move(path)) {}  // NOLINT: implicit, like pathlib
  Path(const char* path) : path_(path) {}             // NOLINT

  const std::string& string() const noexcept { return path_; }
  Path operator/(std::string_view child) const;
  Path parent() const;
  std::string name() const;

  bool exists() const;
  bool is_file() const;
  bool is_dir() const;
  FileStatus stat() const;
  std::string read_text() const;
  std::vector<std::byte> read_bytes() const;
  void write_text(std::string_view text) const;
  void write_bytes(std::span<const std::byte> data) const;
  // parents: create missing parents; exist_ok: an existing directory is fine.
  void mkdir(bool parents = false, bool exist_ok = false, std::uint32_t mode = 0777) const;
  void rmdir() const;
  void unlink(bool missing_ok = false) const;
  // Atomic; replaces an existing target. Returns the target.
  Path rename(const Path& target) const;
  // Entries of this directory, sorted, as paths.
  std::vector<Path> iterdir() const;
  // Makes this directory's entries durable (creations, renames, unlinks in it).
  void fsync_directory() const;

  friend bool operator==(const Path&, const Path&) = default;

 private:
  std::string path_;
};

}  // namespace trellis
