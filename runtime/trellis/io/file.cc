#include "trellis/io/file.h"

#include <fcntl.h>

#include <cerrno>
#include <stdexcept>
#include <utility>

#include "trellis/core/errors.h"
#include "trellis/core/lowlevel.h"
#include "trellis/core/os_error.h"

namespace trellis {
namespace {

FileSystemFacet& fs() {
  return lowlevel::current_file_system();
}

[[noreturn]] void fail(int error, const char* operation, const std::string& path) {
  throw OSError(error, std::string(operation) + " " + path);
}

}  // namespace

AsyncFile::AsyncFile(AsyncFile&& other) noexcept
    : handle_(std::exchange(other.handle_, IoHandle{})), path_(std::move(other.path_)) {}

AsyncFile& AsyncFile::operator=(AsyncFile&& other) noexcept {
  if (this != &other) {
    if (handle_.valid() && lowlevel::in_run()) fs().close_file(handle_);
    handle_ = std::exchange(other.handle_, IoHandle{});
    path_ = std::move(other.path_);
  }
  return *this;
}

AsyncFile::~AsyncFile() {
  if (handle_.valid() && lowlevel::in_run()) fs().close_file(handle_);
}

IoHandle AsyncFile::checked(const char* operation) const {
  if (!handle_.valid()) {
    throw ClosedResourceError(std::string(operation) + " on a closed file" +
                              (path_.empty() ? "" : " (" + path_ + ")"));
  }
  return handle_;
}

std::size_t AsyncFile::read(std::span<std::byte> buffer) {
  IoResult<std::size_t> got = fs().read_file(checked("read"), buffer.data(), buffer.size());
  if (!got.ok()) fail(got.error, "read", path_);
  return got.value;
}

std::string AsyncFile::read_all() {
  std::string out;
  std::vector<std::byte> chunk(64 * 1024);
  for (;;) {
    const std::size_t n = read(chunk);
    if (n == 0) return out;
    out.append(reinterpret_cast<const char*>(chunk.data()), n);
  }
}

void AsyncFile::write(std::span<const std::byte> data) {
  const IoHandle handle = checked("write");
  std::size_t done = 0;
  while (done < data.size()) {
    IoResult<std::size_t> n = fs().write_file(handle, data.data() + done, data.size() - done);
    if (!n.ok()) fail(n.error, "write", path_);
    done += n.value;
  }
}

void AsyncFile::write(std::string_view text) {
  write(std::as_bytes(std::span(text.data(), text.size())));
}

std::size_t AsyncFile::pread(std::span<std::byte> buffer, std::uint64_t offset) {
  IoResult<std::size_t> got = fs().pread(checked("pread"), buffer.data(), buffer.size(), offset);
  if (!got.ok()) fail(got.error, "pread", path_);
  return got.value;
}

void AsyncFile::pwrite(std::span<const std::byte> data, std::uint64_t offset) {
  const IoHandle handle = checked("pwrite");
  std::size_t done = 0;
  while (done < data.size()) {
    IoResult<std::size_t> n =
        fs().pwrite(handle, data.data() + done, data.size() - done, offset + done);
    if (!n.ok()) fail(n.error, "pwrite", path_);
    done += n.value;
  }
}

std::uint64_t AsyncFile::seek(std::int64_t offset, int whence) {
  IoResult<std::uint64_t> position = fs().seek(checked("seek"), offset, whence);
  if (!position.ok()) fail(position.error, "seek", path_);
  return position.value;
}

void AsyncFile::flush() {
  checked("flush");
}

void AsyncFile::fsync() {
  if (const int e = fs().fsync(checked("fsync")); e != 0) fail(e, "fsync", path_);
}

void AsyncFile::fdatasync() {
  if (const int e = fs().fdatasync(checked("fdatasync")); e != 0) fail(e, "fdatasync", path_);
}

void AsyncFile::truncate(std::uint64_t size) {
  if (const int e = fs().truncate_file(checked("truncate"), size); e != 0) {
    fail(e, "truncate", path_);
  }
}

FileStatus AsyncFile::stat() {
  IoResult<FileStatus> status = fs().file_status(checked("stat"));
  if (!status.ok()) fail(status.error, "fstat", path_);
  return status.value;
}

void AsyncFile::close() {
  if (!handle_.valid()) return;
  const IoHandle handle = std::exchange(handle_, IoHandle{});
  if (const int e = fs().close_file(handle); e != 0) fail(e, "close", path_);
}

AsyncFile open_file(const std::string& path, std::string_view mode) {
  const bool plus = mode.find('+') != std::string_view::npos;
  int flags = 0;
  std::size_t letters = 0;
  for (char c : mode) {
    switch (c) {
      case 'r':
        flags |= plus ? O_RDWR : O_RDONLY;
        ++letters;
        break;
      case 'w':
        flags |= (plus ? O_RDWR : O_WRONLY) | O_CREAT | O_TRUNC;
        ++letters;
        break;
      case 'a':
        flags |= (plus ? O_RDWR : O_WRONLY) | O_CREAT | O_APPEND;
        ++letters;
        break;
      case 'x':
        flags |= (plus ? O_RDWR : O_WRONLY) | O_CREAT | O_EXCL;
        ++letters;
        break;
      case '+':
      case 'b':
      case 't':
        break;
      default:
        letters = 99;
    }
  }
  if (letters != 1 || mode.size() > 3) {
    throw std::invalid_argument("open_file: invalid mode '" + std::string(mode) +
                                "' (use r, w, a or x, optionally with + and b)");
  }
  IoResult<IoHandle> opened = fs().open(path, flags | O_CLOEXEC, 0666);
  if (!opened.ok()) fail(opened.error, "open", path);
  return AsyncFile(opened.value, path);
}

// ---- Path --------------------------------------------------------------------------------

Path Path::operator/(std::string_view child) const {
  if (!child.empty() && child.front() == '/') return Path(std::string(child));
  if (path_.empty()) return Path(std::string(child));
  return Path(path_ + (path_.back() == '/' ? "" : "/") + std::string(child));
}

Path Path::parent() const {
  const std::size_t slash = path_.find_last_of('/');
  if (slash == std::string::npos) return Path(".");
  if (slash == 0) return Path("/");
  return Path(path_.substr(0, slash));
}

std::string Path::name() const {
  const std::size_t slash = path_.find_last_of('/');
  return slash == std::string::npos ? path_ : path_.substr(slash + 1);
}

bool Path::exists() const {
  IoResult<FileStatus> status = fs().status(path_);
  if (status.ok()) return true;
  if (status.error == ENOENT || status.error == ENOTDIR) return false;
  fail(status.error, "stat", path_);
}

bool Path::is_file() const {
  IoResult<FileStatus> status = fs().status(path_);
  return status.ok() && status.value.is_regular;
}

bool Path::is_dir() const {
  IoResult<FileStatus> status = fs().status(path_);
  return status.ok() && status.value.is_directory;
}

FileStatus Path::stat() const {
  IoResult<FileStatus> status = fs().status(path_);
  if (!status.ok()) fail(status.error, "stat", path_);
  return status.value;
}

std::string Path::read_text() const {
  AsyncFile file = open_file(path_, "r");
  std::string text = file.read_all();
  file.close();
  return text;
}

std::vector<std::byte> Path::read_bytes() const {
  const std::string text = read_text();
  const auto* bytes = reinterpret_cast<const std::byte*>(text.data());
  return std::vector<std::byte>(bytes, bytes + text.size());
}

void Path::write_text(std::string_view text) const {
  AsyncFile file = open_file(path_, "w");
  file.write(text);
  file.close();
}

void Path::write_bytes(std::span<const std::byte> data) const {
  AsyncFile file = open_file(path_, "w");
  file.write(data);
  file.close();
}

void Path::mkdir(bool parents, bool exist_ok, std::uint32_t mode) const {
  int e = fs().make_directory(path_, mode);
  if (e == ENOENT && parents && parent() != *this) {
    parent().mkdir(true, true, mode);
    e = fs().make_directory(path_, mode);
  }
  if (e == EEXIST && exist_ok && is_dir()) return;
  if (e != 0) fail(e, "mkdir", path_);
}

void Path::rmdir() const {
  if (const int e = fs().remove_directory(path_); e != 0) fail(e, "rmdir", path_);
}

void Path::unlink(bool missing_ok) const {
  const int e = fs().unlink(path_);
  if (e == ENOENT && missing_ok) return;
  if (e != 0) fail(e, "unlink", path_);
}

Path Path::rename(const Path& target) const {
  if (const int e = fs().rename(path_, target.path_); e != 0) {
    fail(e, "rename", path_ + " -> " + target.path_);
  }
  return target;
}

std::vector<Path> Path::iterdir() const {
  IoResult<std::vector<std::string>> names = fs().list_directory(path_);
  if (!names.ok()) fail(names.error, "listdir", path_);
  std::vector<Path> out;
  out.reserve(names.value.size());
  for (const std::string& n : names.value) out.push_back(*this / n);
  return out;
}

void Path::fsync_directory() const {
  if (const int e = fs().fsync_directory(path_); e != 0) fail(e, "fsync", path_);
}

}  // namespace trellis
