// trellis/scenarios/kv/kv_client.h — the client of the replicated key-value store: reads and
// writes run a majority-quorum protocol over the replicas (Attiya, Bar-Noy and Dolev's
// atomic register, one register per key), which keeps every key linearizable while any
// minority of replicas is crashed, partitioned away or slow. Production code: only the
// runtime API.
//
//   KvClient client({.replicas = {"10.0.0.1", "10.0.0.2", "10.0.0.3"}, .client_id = 7});
//   trellis::move_on_after(1s, [&] { client.write("x", "hello"); });
//   std::string x = client.read("x");   // "" for a key never written
//
// write(k, v): ask a majority for their version of k, then store v under a timestamp newer
// than any seen (the counter + 1, ties broken by client id) on a majority.
// read(k): ask a majority, take the newest version, and store it back on a majority before
// returning it — so no later read can return anything older (the write-back is what makes
// reads linearizable; without it two reads racing a write can see new, then old).
//
// Each phase sends to every replica at once over a fresh connection and finishes as soon as
// a majority answered (the other attempts are cancelled). A phase that gets no majority
// within attempt_timeout is retried after retry_backoff, forever: bound an operation with a
// cancel scope. An operation cut off by cancellation may or may not have taken effect.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "trellis/core/time.h"
#include "trellis/scenarios/kv/kv_protocol.h"

namespace trellis::scenarios::kv {

class KvClient {
 public:
  struct Options {
    // Host names or addresses, each optionally with its own port ("127.0.0.1:4711"; IPv6
    // literals in brackets, "[::1]:4711"); without one, `port`.
    std::vector<std::string> replicas;
    std::uint16_t port = 7000;
    // Unique among the store's clients (it orders concurrent writes); >= 1.
    std::uint32_t client_id = 1;
    Duration attempt_timeout = std::chrono::milliseconds(250);
    Duration retry_backoff = std::chrono::milliseconds(20);
    // The planted bug of the kv scenario: a read returns the newest version it saw without
    // writing it back to a majority. Off by default.
    bool read_skips_write_back = false;
  };

  // Throws std::invalid_argument for no replicas, a bad "host:port", or client_id 0.
  explicit KvClient(Options options);

  // Both block until done (checkpoints) and throw std::invalid_argument for a bad key or
  // value (see kv_protocol.h); they never give up on their own.
  std::string read(const std::string& key);
  void write(const std::string& key, const std::string& value);

  struct Statistics {
    std::uint64_t phases = 0;           // quorum phases completed
    std::uint64_t attempts_failed = 0;  // phase attempts that got no majority in time
  };
  Statistics statistics() const noexcept { return statistics_; }

 private:
  // Sends line to every replica; returns the answers of the first majority.
  std::vector<std::string> quorum_call(const std::string& line);
  Versioned newest(const std::string& key);
  void store(const std::string& key, const Versioned& versioned);

  struct Endpoint {
    std::string host;
    std::uint16_t port;
  };
  Options options_;
  std::vector<Endpoint> endpoints_;
  std::size_t majority_;
  Statistics statistics_;
};

}  // namespace trellis::scenarios::kv
