// trellis/scenarios/wal/write_ahead_log.h — a write-ahead log: append records, get them back
// after a crash. Production code: only the runtime's file API (open_file, Path).
//
//   auto log = WriteAheadLog::open({.directory = "/var/lib/app"});
//   for (const std::string& r : log.records()) apply(r);   // recovered
//   log.append("set x 1");                                  // durable when it returns
//
// On disk: one file, "<directory>/log", of records [magic u32][length u32][crc32 u32]
// [payload]. Recovery reads records until the first that is incomplete or fails its
// checksum. If no valid record follows it, that is a torn write at a crash: recovery
// truncates the file there and syncs it, so a torn tail is never read as valid and never
// followed by new records. If a valid record follows, a record was damaged in place (a bit
// flip, a misdirected write): recovery throws WalCorruptionError and changes nothing, since
// cutting there would silently drop acknowledged records.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "trellis/io/file.h"

namespace trellis::scenarios {

// A record in the middle of the log is damaged: not a torn tail, so nothing can be cut.
class WalCorruptionError : public std::runtime_error {
 public:
  WalCorruptionError(const std::string& path, std::uint64_t offset, std::size_t record,
                     std::uint64_t next_valid);
  std::uint64_t offset() const noexcept { return offset_; }  // the damaged record's byte
  std::size_t record() const noexcept { return record_; }    // its index (0-based)

 private:
  std::uint64_t offset_;
  std::size_t record_;
};

class WriteAheadLog {
 public:
  struct Options {
    std::string directory = "/wal";
    // The planted bug: acknowledge (return from append) before the record is fsynced,
    // syncing only every 4th append. Off by default.
    bool ack_before_fsync = false;
    // Records larger than this are refused (std::invalid_argument).
    std::uint32_t record_bytes_max = 1 << 20;
    // Set it when opening again after an OSError (from open() or append()): the directories
    // and the log's name are then synced even though they exist, since the failed attempt
    // may have created them and failed (EIO) to sync them. Off, only what open() creates
    // is synced (as many real logs do: a name that exists is taken as durable).
    bool resync_after_error = false;
  };

  // Creates the directory and log if missing (durably) and recovers the records. Blocks;
  // throws OSError on I/O errors, WalCorruptionError on a record damaged mid-log.
  static WriteAheadLog open(Options options);

  // Every record: those recovered at open(), then those appended since.
  const std::vector<std::string>& records() const noexcept { return records_; }
  // Bytes cut off a torn tail at open() (0 after a clean shutdown).
  std::uint64_t truncated_bytes() const noexcept { return truncated_bytes_; }

  // Appends one record; returns once it is durable (fsynced). Blocks; throws OSError (then
  // the record may or may not be in the log after a crash).
  void append(std::string_view payload);

 private:
  WriteAheadLog(Options options, AsyncFile file)
      : options_(std::move(options)), file_(std::move(file)) {}

  Options options_;
  AsyncFile file_;
  std::uint64_t end_ = 0;  // Invariant: the file holds exactly the records up to end_.
  std::vector<std::string> records_;
  std::uint64_t truncated_bytes_ = 0;
  std::uint64_t unsynced_appends_ = 0;
};

// CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320).
std::uint32_t crc32(std::string_view data);

}  // namespace trellis::scenarios
