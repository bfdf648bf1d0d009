// trellis/io/unix_socket.h — unix-domain stream sockets: open_unix_socket (Trio's) and
// open_unix_listener (its server side).
//
//   auto listener = trellis::open_unix_listener("/tmp/app.sock");
//   trellis::SocketStream client = trellis::open_unix_socket("/tmp/app.sock");
//
// A path starting with '\0' is a Linux abstract-namespace name (no file is created).
#pragma once

#include <memory>
#include <string_view>

#include "trellis/io/socket_stream.h"
#include "trellis/io/tcp.h"

namespace trellis {

// Connects to the unix socket at path. Blocks; a checkpoint. Throws std::invalid_argument
// (path empty or too long), OSError ("connect to unix:/tmp/x (ENOENT)", ECONNREFUSED...).
SocketStream open_unix_socket(std::string_view path);

// Binds and listens on path. The caller removes a stale socket file first (bind fails with
// EADDRINUSE otherwise) and afterwards (closing does not unlink). Not a checkpoint.
// Throws std::invalid_argument (bad path), OSError ("bind to unix:/tmp/x (EADDRINUSE)").
std::unique_ptr<SocketListener> open_unix_listener(std::string_view path,
                                                   int backlog = kListenBacklogMax);

}  // namespace trellis
