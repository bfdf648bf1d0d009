// trellis/scenarios/kv/kv_protocol.h — the wire format of the replicated key-value store:
// one request line, one response line, over any Stream. Production code.
//
//   Q <key>                              -> V <counter> <writer> =<value>
//   S <key> <counter> <writer> =<value>  -> A        (once the store is durable)
//   anything malformed                   -> E <reason>
//
// Keys are 1..kKeyBytesMax bytes and values 0..kValueBytesMax bytes, without spaces, tabs or
// newlines (the client refuses others with std::invalid_argument).
#pragma once

#include <compare>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "trellis/io/stream.h"

namespace trellis::scenarios::kv {

inline constexpr std::size_t kKeyBytesMax = 64;
inline constexpr std::size_t kValueBytesMax = 256;
inline constexpr std::size_t kLineBytesMax = 512;

// A version: ordered by counter, then by writer (client id), so two writers never collide.
struct Timestamp {
  std::uint64_t counter = 0;
  std::uint32_t writer = 0;
  auto operator<=>(const Timestamp&) const = default;
};

struct Versioned {
  Timestamp timestamp;
  std::string value;
  bool operator==(const Versioned&) const = default;
};

// The peer broke the protocol (malformed or oversized line).
class ProtocolError : public std::runtime_error {
 public:
  explicit ProtocolError(const std::string& what) : std::runtime_error("kv protocol: " + what) {}
};

// Throws std::invalid_argument naming the problem.
void check_key(std::string_view key);
void check_value(std::string_view value);

std::string encode_query(std::string_view key);
std::string encode_store(std::string_view key, const Versioned& versioned);
std::string encode_versioned(const Versioned& versioned);

// A parsed request; throws ProtocolError for a malformed line.
struct Request {
  enum class Kind { kQuery, kStore };
  Kind kind = Kind::kQuery;
  std::string key;
  Versioned versioned;  // kStore only
};
Request parse_request(std::string_view line);
// Parses "V ..." (throws ProtocolError for anything else, including "E ...").
Versioned parse_versioned(std::string_view line);

// Reads newline-terminated lines from a stream (the newline is not returned). read_line()
// blocks (a checkpoint); returns nullopt at a clean end of stream; throws ProtocolError for
// a line longer than kLineBytesMax or a stream that ends mid-line, and whatever the stream
// throws.
class LineReader {
 public:
  explicit LineReader(ReceiveStream& stream) : stream_(stream) {}
  std::optional<std::string> read_line();

 private:
  ReceiveStream& stream_;
  std::string buffered_;
};

// Sends line + '\n'. A checkpoint; throws what send_all throws.
void send_line(SendStream& stream, std::string_view line);

}  // namespace trellis::scenarios::kv
