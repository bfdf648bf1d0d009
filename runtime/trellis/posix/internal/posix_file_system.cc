#include "trellis/posix/internal/posix_file_system.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>

#include "trellis/thread/to_thread.h"

namespace trellis::posix::internal {
namespace {

int fd_of(IoHandle file) {
  return file.valid() && file.value <= INT_MAX ? static_cast<int>(file.value) : -1;
}

// Runs a call returning -1/errno on a worker thread; returns 0 or the errno.
template <class Call>
int off_loop(Call call) {
  return to_thread::run_sync([&] {
    int result = -1;
    do {
      result = call();
    } while (result < 0 && errno == EINTR);
    return result < 0 ? errno : 0;
  });
}

// Same for calls returning a count (ssize_t, off_t).
template <class T, class Call>
IoResult<T> count_off_loop(Call call) {
  return to_thread::run_sync([&] {
    IoResult<T> out;
    decltype(call()) result = -1;
    do {
      result = call();
    } while (result < 0 && errno == EINTR);
    if (result < 0) {
      out.error = errno;
    } else {
      out.value = static_cast<T>(result);
    }
    return out;
  });
}

FileStatus to_status(const struct stat& st) {
  FileStatus status;
  status.size = static_cast<std::uint64_t>(st.st_size);
  status.is_directory = S_ISDIR(st.st_mode);
  status.is_regular = S_ISREG(st.st_mode);
  status.mode = static_cast<std::uint32_t>(st.st_mode & 07777);
  status.modified_ns = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 +
                       static_cast<std::int64_t>(st.st_mtim.tv_nsec);
  return status;
}

}  // namespace

IoResult<IoHandle> PosixFileSystem::open(const std::string& path, int flags, std::uint32_t mode) {
  IoResult<int> fd = count_off_loop<int>(
      [&] { return ::open(path.c_str(), flags | O_CLOEXEC, static_cast<mode_t>(mode)); });
  if (!fd.ok()) return {IoHandle{}, fd.error};
  return {IoHandle{fd.value}, 0};
}

int PosixFileSystem::close_file(IoHandle file) {
  // Not retried on EINTR: on Linux the descriptor is gone either way.
  return ::close(fd_of(file)) == 0 ? 0 : errno;
}

IoResult<std::size_t> PosixFileSystem::read_file(IoHandle file, void* buffer, std::size_t size) {
  return count_off_loop<std::size_t>([&] { return ::read(fd_of(file), buffer, size); });
}

IoResult<std::size_t> PosixFileSystem::write_file(IoHandle file, const void* data,
                                                  std::size_t size) {
  return count_off_loop<std::size_t>([&] { return ::write(fd_of(file), data, size); });
}

IoResult<std::size_t> PosixFileSystem::pread(IoHandle file, void* buffer, std::size_t size,
                                             std::uint64_t offset) {
  return count_off_loop<std::size_t>(
      [&] { return ::pread(fd_of(file), buffer, size, static_cast<off_t>(offset)); });
}

IoResult<std::size_t> PosixFileSystem::pwrite(IoHandle file, const void* data, std::size_t size,
                                              std::uint64_t offset) {
  return count_off_loop<std::size_t>(
      [&] { return ::pwrite(fd_of(file), data, size, static_cast<off_t>(offset)); });
}

IoResult<std::uint64_t> PosixFileSystem::seek(IoHandle file, std::int64_t offset, int whence) {
  return count_off_loop<std::uint64_t>(
      [&] { return ::lseek(fd_of(file), static_cast<off_t>(offset), whence); });
}

int PosixFileSystem::fsync(IoHandle file) {
  return off_loop([&] { return ::fsync(fd_of(file)); });
}

int PosixFileSystem::fdatasync(IoHandle file) {
  return off_loop([&] { return ::fdatasync(fd_of(file)); });
}

int PosixFileSystem::truncate_file(IoHandle file, std::uint64_t size) {
  return off_loop([&] { return ::ftruncate(fd_of(file), static_cast<off_t>(size)); });
}

IoResult<FileStatus> PosixFileSystem::file_status(IoHandle file) {
  return to_thread::run_sync([&] {
    IoResult<FileStatus> out;
    struct stat st {};
    if (::fstat(fd_of(file), &st) != 0) {
      out.error = errno;
    } else {
      out.value = to_status(st);
    }
    return out;
  });
}

IoResult<FileStatus> PosixFileSystem::status(const std::string& path) {
  return to_thread::run_sync([&] {
    IoResult<FileStatus> out;
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
      out.error = errno;
    } else {
      out.value = to_status(st);
    }
    return out;
  });
}

int PosixFileSystem::make_directory(const std::string& path, std::uint32_t mode) {
  return off_loop([&] { return ::mkdir(path.c_str(), static_cast<mode_t>(mode)); });
}

int PosixFileSystem::remove_directory(const std::string& path) {
  return off_loop([&] { return ::rmdir(path.c_str()); });
}

int PosixFileSystem::unlink(const std::string& path) {
  return off_loop([&] { return ::unlink(path.c_str()); });
}

int PosixFileSystem::rename(const std::string& from, const std::string& to) {
  return off_loop([&] { return ::rename(from.c_str(), to.c_str()); });
}

IoResult<std::vector<std::string>> PosixFileSystem::list_directory(const std::string& path) {
  return to_thread::run_sync([&] {
    IoResult<std::vector<std::string>> out;
    DIR* dir = ::opendir(path.c_str());
    if (dir == nullptr) {
      out.error = errno;
      return out;
    }
    while (true) {
      errno = 0;
      const dirent* entry = ::readdir(dir);
      if (entry == nullptr) {
        out.error = errno;
        break;
      }
      const std::string name = entry->d_name;
      if (name != "." && name != "..") out.value.push_back(name);
    }
    ::closedir(dir);
    if (out.error != 0) out.value.clear();
    std::sort(out.value.begin(), out.value.end());
    return out;
  });
}

int PosixFileSystem::fsync_directory(const std::string& path) {
  return to_thread::run_sync([&] {
    int fd = -1;
    do {
      fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) return errno;
    const int error = ::fsync(fd) == 0 ? 0 : errno;
    ::close(fd);
    return error;
  });
}

}  // namespace trellis::posix::internal
