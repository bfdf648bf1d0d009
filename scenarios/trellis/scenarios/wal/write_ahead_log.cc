#include "trellis/scenarios/wal/write_ahead_log.h"

#include <array>
#include <cstring>
#include <optional>
#include <stdexcept>

namespace trellis::scenarios {
namespace {

constexpr std::uint32_t kMagic = 0x57414c31;  // "WAL1"
constexpr std::size_t kHeaderBytes = 12;

void put_u32(std::string& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out += static_cast<char>((v >> (8 * i)) & 0xff);
}

std::uint32_t get_u32(std::string_view in, std::size_t at) {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i)
    v |= static_cast<std::uint32_t>(static_cast<unsigned char>(in[at + i])) << (8 * i);
  return v;
}

// mkdir -p, durably: each directory created is made durable in its parent before the next.
// With resync, also the ones that exist: an earlier attempt may have created one and failed
// (EIO) to sync its parent, and a name that is there now is not durable for that.
void make_durable_directories(const Path& directory, bool resync) {
  const bool exists = directory.exists();
  if (exists && !resync) return;
  if (directory.parent() == directory) return;  // the root
  make_durable_directories(directory.parent(), resync);
  if (!exists) directory.mkdir();
  directory.parent().fsync_directory();
}

}  // namespace

std::uint32_t crc32(std::string_view data) {
  static const std::array<std::uint32_t, 256> table = [] {
    std::array<std::uint32_t, 256> t{};
    for (std::uint32_t i = 0; i < 256; ++i) {
      std::uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  std::uint32_t crc = 0xFFFFFFFFu;
  for (char ch : data) crc = table[(crc ^ static_cast<unsigned char>(ch)) & 0xff] ^ (crc >> 8);
  return crc ^ 0xFFFFFFFFu;
}

namespace {

// The record at `at` if it is whole and passes its checksum, else nullopt.
std::optional<std::string_view> valid_record_at(std::string_view content, std::size_t at,
                                                std::uint32_t record_bytes_max) {
  if (content.size() - at < kHeaderBytes) return std::nullopt;
  const std::uint32_t length = get_u32(content, at + 4);
  if (get_u32(content, at) != kMagic || length > record_bytes_max ||
      content.size() - at - kHeaderBytes < length) {
    return std::nullopt;
  }
  const std::string_view payload = content.substr(at + kHeaderBytes, length);
  if (crc32(payload) != get_u32(content, at + 8)) return std::nullopt;
  return payload;
}

// The offset of the first valid record that starts after `bad`, if any. A crash tears only
// the tail (the unsynced writes are a suffix of the file), so a valid record after a bad one
// means the bad one was damaged in place.
std::optional<std::size_t> next_valid_record(std::string_view content, std::size_t bad,
                                             std::uint32_t record_bytes_max) {
  for (std::size_t at = bad + 1; at + kHeaderBytes <= content.size(); ++at) {
    if (get_u32(content, at) == kMagic && valid_record_at(content, at, record_bytes_max)) {
      return at;
    }
  }
  return std::nullopt;
}

}  // namespace

WalCorruptionError::WalCorruptionError(const std::string& path, std::uint64_t offset,
                                       std::size_t record, std::uint64_t next_valid)
    : std::runtime_error("write-ahead log " + path + " is corrupt: record " +
                         std::to_string(record) + " at byte " + std::to_string(offset) +
                         " fails its checksum but a valid record follows at byte " +
                         std::to_string(next_valid) + " (not a torn tail; nothing was cut)"),
      offset_(offset),
      record_(record) {}

WriteAheadLog WriteAheadLog::open(Options options) {
  const Path directory(options.directory);
  const Path path = directory / "log";
  make_durable_directories(directory, options.resync_after_error);
  const bool created = !path.exists();
  WriteAheadLog log(options, open_file(path.string(), "a+"));
  // The log's name is durable before any record; after an error, even when the log was
  // already there (an earlier open may have created it and failed to sync the directory).
  if (created || options.resync_after_error) directory.fsync_directory();
  log.file_.seek(0);
  const std::string content = log.file_.read_all();
  std::size_t at = 0;
  while (std::optional<std::string_view> payload =
             valid_record_at(content, at, options.record_bytes_max)) {
    log.records_.emplace_back(*payload);
    at += kHeaderBytes + payload->size();
  }
  log.end_ = at;
  if (at < content.size()) {
    if (auto next = next_valid_record(content, at, options.record_bytes_max)) {
      throw WalCorruptionError(path.string(), at, log.records_.size(), *next);
    }
    // A torn tail: cut it off for good before appending after it.
    log.truncated_bytes_ = content.size() - at;
    log.file_.truncate(at);
    log.file_.fsync();
  }
  return log;
}

void WriteAheadLog::append(std::string_view payload) {
  if (payload.size() > options_.record_bytes_max) {
    throw std::invalid_argument("WAL record of " + std::to_string(payload.size()) +
                                " bytes exceeds record_bytes_max");
  }
  std::string record;
  record.reserve(kHeaderBytes + payload.size());
  put_u32(record, kMagic);
  put_u32(record, static_cast<std::uint32_t>(payload.size()));
  put_u32(record, crc32(payload));
  record.append(payload);
  file_.write(record);  // append mode: at end_
  end_ += record.size();
  if (options_.ack_before_fsync) {
    // The planted bug: sync only every 4th record, acknowledge regardless.
    if (++unsynced_appends_ % 4 == 0) file_.fsync();
  } else {
    file_.fsync();
  }
  records_.emplace_back(payload);
}

}  // namespace trellis::scenarios
