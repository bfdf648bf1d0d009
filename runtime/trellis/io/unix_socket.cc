#include "trellis/io/unix_socket.h"

#include <sys/socket.h>

#include <utility>

namespace trellis {

SocketStream open_unix_socket(std::string_view path) {
  const SocketAddress address = SocketAddress::unix_path(path);
  Socket socket = Socket::open(AF_UNIX, SOCK_STREAM);
  socket.connect(address);
  return SocketStream(std::move(socket));
}

std::unique_ptr<SocketListener> open_unix_listener(std::string_view path, int backlog) {
  const SocketAddress address = SocketAddress::unix_path(path);
  Socket socket = Socket::open(AF_UNIX, SOCK_STREAM);
  socket.bind(address);
  socket.listen(backlog > kListenBacklogMax ? kListenBacklogMax : backlog);
  return std::make_unique<SocketListener>(std::move(socket));
}

}  // namespace trellis
