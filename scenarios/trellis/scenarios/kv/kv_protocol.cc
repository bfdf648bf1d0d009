#include "trellis/scenarios/kv/kv_protocol.h"

#include <array>
#include <charconv>
#include <span>
#include <vector>

namespace trellis::scenarios::kv {
namespace {

bool has_separator(std::string_view s) {
  return s.find_first_of(" \t\r\n") != std::string_view::npos;
}

std::vector<std::string_view> split(std::string_view line, std::size_t parts_max) {
  std::vector<std::string_view> parts;
  while (parts.size() + 1 < parts_max) {
    const std::size_t space = line.find(' ');
    if (space == std::string_view::npos) break;
    parts.push_back(line.substr(0, space));
    line.remove_prefix(space + 1);
  }
  parts.push_back(line);
  return parts;
}

template <class T>
T parse_number(std::string_view text, std::string_view line) {
  T value{};
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || text.empty()) {
    throw ProtocolError("bad number '" + std::string(text) + "' in '" + std::string(line) + "'");
  }
  return value;
}

Versioned parse_version_fields(std::string_view counter, std::string_view writer,
                               std::string_view value, std::string_view line) {
  if (value.empty() || value.front() != '=') {
    throw ProtocolError("value must start with '=' in '" + std::string(line) + "'");
  }
  value.remove_prefix(1);
  if (value.size() > kValueBytesMax || has_separator(value)) {
    throw ProtocolError("bad value in '" + std::string(line) + "'");
  }
  return Versioned{
      {parse_number<std::uint64_t>(counter, line), parse_number<std::uint32_t>(writer, line)},
      std::string(value)};
}

}  // namespace

void check_key(std::string_view key) {
  if (key.empty() || key.size() > kKeyBytesMax || has_separator(key)) {
    throw std::invalid_argument("kv: a key is 1.." + std::to_string(kKeyBytesMax) +
                                " bytes without whitespace, not '" + std::string(key) + "'");
  }
}

void check_value(std::string_view value) {
  if (value.size() > kValueBytesMax || has_separator(value)) {
    throw std::invalid_argument("kv: a value is 0.." + std::to_string(kValueBytesMax) +
                                " bytes without whitespace");
  }
}

std::string encode_query(std::string_view key) {
  return "Q " + std::string(key);
}

std::string encode_store(std::string_view key, const Versioned& versioned) {
  return "S " + std::string(key) + " " + std::to_string(versioned.timestamp.counter) + " " +
         std::to_string(versioned.timestamp.writer) + " =" + versioned.value;
}

std::string encode_versioned(const Versioned& versioned) {
  return "V " + std::to_string(versioned.timestamp.counter) + " " +
         std::to_string(versioned.timestamp.writer) + " =" + versioned.value;
}

Request parse_request(std::string_view line) {
  const std::vector<std::string_view> parts = split(line, 5);
  Request request;
  if (parts.size() == 2 && parts[0] == "Q") {
    request.kind = Request::Kind::kQuery;
  } else if (parts.size() == 5 && parts[0] == "S") {
    request.kind = Request::Kind::kStore;
    request.versioned = parse_version_fields(parts[2], parts[3], parts[4], line);
  } else {
    throw ProtocolError("unknown request '" + std::string(line.substr(0, 80)) + "'");
  }
  if (parts[1].empty() || parts[1].size() > kKeyBytesMax) {
    throw ProtocolError("bad key in '" + std::string(line.substr(0, 80)) + "'");
  }
  request.key = std::string(parts[1]);
  return request;
}

Versioned parse_versioned(std::string_view line) {
  const std::vector<std::string_view> parts = split(line, 4);
  if (parts.size() != 4 || parts[0] != "V") {
    throw ProtocolError("expected a version, got '" + std::string(line.substr(0, 80)) + "'");
  }
  return parse_version_fields(parts[1], parts[2], parts[3], line);
}

std::optional<std::string> LineReader::read_line() {
  std::array<std::byte, kLineBytesMax> chunk;
  for (;;) {
    const std::size_t newline = buffered_.find('\n');
    if (newline != std::string::npos) {
      std::string line = buffered_.substr(0, newline);
      buffered_.erase(0, newline + 1);
      return line;
    }
    if (buffered_.size() > kLineBytesMax) {
      throw ProtocolError("line longer than " + std::to_string(kLineBytesMax) + " bytes");
    }
    const std::size_t n = stream_.receive_some(chunk);
    if (n == 0) {
      if (buffered_.empty()) return std::nullopt;
      throw ProtocolError("stream ended in the middle of a line");
    }
    buffered_.append(reinterpret_cast<const char*>(chunk.data()), n);
  }
}

void send_line(SendStream& stream, std::string_view line) {
  std::string framed(line);
  framed += '\n';
  stream.send_all(std::as_bytes(std::span(framed)));
}

}  // namespace trellis::scenarios::kv
