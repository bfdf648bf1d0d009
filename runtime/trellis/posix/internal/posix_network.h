// trellis/posix/internal/posix_network.h — PosixNetwork: the epoll backend's NetworkFacet,
// plain nonblocking socket calls plus getaddrinfo on worker threads.
//
// Owned by EpollBackend. Every call returns the kernel's errno unchanged; an EAGAIN is also
// reported to EpollIo (note_would_block) so the next readiness wait needs no epoll_ctl.
//
// resolve(): a numeric host is answered at once; a name is looked up by getaddrinfo on a
// worker thread (at most kLookupThreadsMax at a time, further lookups queue in FIFO order),
// whose result comes back through the backend's ClosureQueue. A cancelled lookup is
// abandoned: the caller gets Cancelled at once, the thread finishes on its own and its
// result is dropped. Threads that finished are joined on the loop thread; at destruction the
// ones still inside getaddrinfo are detached — they own everything they touch (their inputs
// and a shared_ptr to the already closed queue), so nothing freed is ever used.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "trellis/base/closure_queue.h"
#include "trellis/core/network_facet.h"
#include "trellis/core/task.h"
#include "trellis/posix/internal/epoll_io.h"

namespace trellis::posix::internal {

class PosixNetwork final : public NetworkFacet {
 public:
  static constexpr std::size_t kLookupThreadsMax = 16;

  PosixNetwork(EpollIo& io, std::shared_ptr<ClosureQueue> completions);
  // The completion queue must already be closed (no closure may still reach this object).
  ~PosixNetwork() override;
  PosixNetwork(const PosixNetwork&) = delete;
  PosixNetwork& operator=(const PosixNetwork&) = delete;

  IoResult<IoHandle> socket(int domain, int type, int protocol) override;
  int bind(IoHandle socket, const SocketAddress& address) override;
  int listen(IoHandle socket, int backlog) override;
  IoResult<AcceptedSocket> accept(IoHandle socket) override;
  int connect(IoHandle socket, const SocketAddress& address) override;
  IoResult<int> socket_error(IoHandle socket) override;
  IoResult<std::size_t> send(IoHandle socket, const void* data, std::size_t size) override;
  IoResult<std::size_t> recv(IoHandle socket, void* buffer, std::size_t size) override;
  IoResult<std::size_t> send_to(IoHandle socket, const void* data, std::size_t size,
                                const SocketAddress& to) override;
  IoResult<ReceivedDatagram> receive_from(IoHandle socket, void* buffer, std::size_t size) override;
  int shutdown(IoHandle socket, int how) override;
  int set_option(IoHandle socket, int level, int name, int value) override;
  IoResult<int> get_option(IoHandle socket, int level, int name) override;
  IoResult<SocketAddress> local_address(IoHandle socket) override;
  IoResult<SocketAddress> peer_address(IoHandle socket) override;
  // Blocks the calling task (parks); cancellable (abandons the lookup). Not a checkpoint
  // when the host is numeric.
  IoResult<std::vector<SocketAddress>> resolve(const std::string& host, std::uint16_t port,
                                               int family, int type) override;

  // Lookups whose task still waits for them (each can still wake a task).
  std::size_t lookups_waited() const noexcept { return lookups_waited_; }
  // Worker threads started and not yet joined (running, or finished and about to be).
  std::size_t lookup_threads() const noexcept { return running_; }

 private:
  using Addresses = IoResult<std::vector<SocketAddress>>;
  struct Lookup {
    std::string host;
    std::uint16_t port = 0;
    int family = 0;
    int type = 0;
    // The waiting task and where its answer goes; both null once abandoned.
    lowlevel::Task* task = nullptr;
    Addresses* out = nullptr;
    // Not joinable while queued (no thread yet).
    std::thread thread;
  };

  void start_thread(std::uint64_t id, Lookup& lookup);
  void complete(std::uint64_t id, Addresses result);
  void start_queued();

  EpollIo& io_;
  std::shared_ptr<ClosureQueue> completions_;
  std::uint64_t next_lookup_id_ = 0;
  // Every lookup not yet completed (queued or running), by id (ids increase: FIFO).
  std::map<std::uint64_t, std::unique_ptr<Lookup>> lookups_;
  // Ids of lookups waiting for a thread, oldest first.
  std::deque<std::uint64_t> queued_;
  // Invariant: running_ == the number of lookups_ entries with a joinable thread, and
  // running_ <= kLookupThreadsMax.
  std::size_t running_ = 0;
  // Invariant: lookups_waited_ == the number of lookups_ entries with a non-null task.
  std::size_t lookups_waited_ = 0;
};

}  // namespace trellis::posix::internal
