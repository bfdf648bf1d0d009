// Helpers shared by the networking tests: connected stream pairs over loopback and
// socketpair-like unix connections, byte helpers, and /proc/self counters for leak checks.
#pragma once

#include <dirent.h>
#include <unistd.h>

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "trellis/io/socket_stream.h"
#include "trellis/io/tcp.h"
#include "trellis/io/unix_socket.h"

namespace trellis::testing {

inline std::span<const std::byte> bytes(std::string_view text) {
  return std::as_bytes(std::span(text.data(), text.size()));
}

inline std::string text(std::span<const std::byte> data) {
  return std::string(reinterpret_cast<const char*>(data.data()), data.size());
}

// Receives until `size` bytes arrived or end of stream.
inline std::string receive_exactly(ReceiveStream& stream, std::size_t size) {
  std::string out;
  std::vector<std::byte> buffer(4096);
  while (out.size() < size) {
    const std::size_t n = stream.receive_some(buffer);
    if (n == 0) break;
    out += text(std::span(buffer).first(n));
  }
  return out;
}

// A connected TCP pair over 127.0.0.1 (client, server). Inside a run.
inline std::pair<SocketStream, SocketStream> tcp_stream_pair() {
  std::vector<std::unique_ptr<SocketListener>> listeners = open_tcp_listeners(0, "127.0.0.1");
  SocketStream client = open_tcp_stream("127.0.0.1", listeners[0]->local_address().port());
  std::unique_ptr<SocketStream> server = listeners[0]->accept();
  return {std::move(client), std::move(*server)};
}

// A connected unix-domain pair through an abstract-namespace listener (no file). Inside a
// run.
inline std::pair<SocketStream, SocketStream> unix_stream_pair() {
  static int counter = 0;
  const std::string name = std::string(1, '\0') + "trellis-test-" + std::to_string(::getpid()) +
                           "-" + std::to_string(counter++);
  std::unique_ptr<SocketListener> listener = open_unix_listener(name);
  SocketStream client = open_unix_socket(name);
  std::unique_ptr<SocketStream> server = listener->accept();
  return {std::move(client), std::move(*server)};
}

inline std::size_t count_entries(const char* directory) {
  std::size_t count = 0;
  if (DIR* dir = ::opendir(directory)) {
    while (const dirent* entry = ::readdir(dir)) {
      if (entry->d_name[0] != '.') ++count;
    }
    ::closedir(dir);
  }
  return count;
}

inline std::vector<std::string> open_fds() {
  std::vector<std::string> fds;
  if (DIR* dir = ::opendir("/proc/self/fd")) {
    const int own = ::dirfd(dir);
    while (const dirent* entry = ::readdir(dir)) {
      if (entry->d_name[0] == '.' || std::stoi(entry->d_name) == own) continue;
      fds.emplace_back(entry->d_name);
    }
    ::closedir(dir);
  }
  return fds;
}

inline std::size_t thread_count() {
  return count_entries("/proc/self/task");
}

}  // namespace trellis::testing
