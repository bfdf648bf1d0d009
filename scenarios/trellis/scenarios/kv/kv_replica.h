// trellis/scenarios/kv/kv_replica.h — one replica of the replicated key-value store: a
// durable map from key to the newest version it has stored, served over TCP. Production
// code: only the runtime API (serve_tcp, Lock) and the write-ahead log.
//
//   KvReplica replica = KvReplica::open({.directory = "/var/kv"});   // recovers from disk
//   replica.serve(7000);                                             // runs until cancelled
//
// The replicas know nothing of each other: clients run the quorum protocol (see
// kv_client.h). A replica answers a query with its version of the key, and stores a version
// only if it is newer than the one it has; it acknowledges a store once the store is in its
// write-ahead log and fsynced, so an acknowledged store survives any crash.
#pragma once

#include <cstdint>
#include <exception>
#include <map>
#include <string>
#include <vector>

#include "trellis/core/cancel_scope.h"
#include "trellis/core/nursery.h"
#include "trellis/io/socket_stream.h"
#include "trellis/scenarios/kv/kv_protocol.h"
#include "trellis/scenarios/wal/write_ahead_log.h"
#include "trellis/sync/lock.h"

namespace trellis::scenarios::kv {

class KvReplica {
 public:
  struct Options {
    std::string directory = "/var/kv";
    // Opening again after the disk failed (serve() or open() threw OSError): see
    // WriteAheadLog::Options::resync_after_error.
    bool after_disk_error = false;
  };

  // Opens (creating if needed) the replica's log in options.directory and recovers every
  // store it holds. Blocks; throws OSError on I/O errors and ProtocolError for a log record
  // that passed its checksum but does not parse (a bug, never a torn write).
  static KvReplica open(Options options);

  KvReplica(KvReplica&&) = default;

  // Serves the protocol on port (0: any; the bound port is reported through task_status)
  // until cancelled. Each connection may carry any number of requests. A malformed request
  // gets "E <reason>" and the connection is closed; a peer that goes away just ends its
  // connection. Blocks; a checkpoint; throws OSError when the port cannot be bound, and when
  // the disk fails: the replica must not go on after a failed write or fsync, so it stops
  // serving every connection and throws the disk's OSError itself (not inside an
  // ExceptionGroup); what it had not acknowledged may or may not be in its log. Open it
  // again (after_disk_error) to go on.
  void serve(std::uint16_t port, std::string host = {},
             TaskStatus<std::vector<SocketListener*>>* task_status = nullptr);

  // Applies one request and returns the response line; stores block until durable.
  std::string handle(const Request& request);

  // The replica's current version of key (timestamp {0, 0} and "" if it never stored one).
  Versioned get(const std::string& key) const;
  // Stores found in the log at open().
  std::size_t recovered_stores() const noexcept { return recovered_stores_; }

 private:
  explicit KvReplica(WriteAheadLog log) : log_(std::move(log)) {}
  void handle_connection(SocketStream& stream);

  // The disk failed while serving: every connection stops, serve() throws it.
  void stop_serving(std::exception_ptr disk_error) noexcept;

  WriteAheadLog log_;
  CancelScope* serving_ = nullptr;  // serve()'s scope while it runs
  std::exception_ptr disk_error_;
  // Serialises appends to the log (the log is not safe for concurrent appends) and keeps
  // "compare, append, publish" atomic per replica.
  std::unique_ptr<Lock> store_lock_ = std::make_unique<Lock>();
  // Invariant: every entry is durable in log_ (published only after its append returned).
  std::map<std::string, Versioned, std::less<>> store_;
  std::size_t recovered_stores_ = 0;
};

}  // namespace trellis::scenarios::kv
