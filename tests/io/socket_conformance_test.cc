// The stream conformance checks (fakes/check_streams.h, Trio's check_half_closeable_stream)
// against SocketStream over TCP loopback and over unix-domain connections, with clogged
// pairs as in Trio's test_SocketStream_generic (both directions filled until send_all
// blocks).
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <utility>

#include "net_test_util.h"
#include "trellis/fakes/check_streams.h"
#include "trellis/fakes/wait_all_tasks_blocked.h"
#include "trellis/trellis.h"

namespace trellis {
namespace {

using namespace std::chrono_literals;
using Pair = std::pair<std::unique_ptr<HalfCloseableStream>, std::unique_ptr<HalfCloseableStream>>;

Pair owned(std::pair<SocketStream, SocketStream> pair) {
  return {std::make_unique<SocketStream>(std::move(pair.first)),
          std::make_unique<SocketStream>(std::move(pair.second))};
}

// Sends until send_all blocks (Trio's fill_stream): the kernel buffers are full both ways.
void fill(HalfCloseableStream& stream) {
  const std::string chunk(10000, 'x');
  open_nursery([&](Nursery& n) {
    n.start_soon([&] {
      for (;;) stream.send_all(testing::bytes(chunk));
    });
    n.start_soon([&] {
      fakes::wait_all_tasks_blocked();
      n.cancel_scope().cancel();
    });
  });
}

Pair clogged(Pair pair) {
  fill(*pair.first);
  fill(*pair.second);
  return pair;
}

TEST(SocketStreamConformance, TcpLoopbackPassesCheckHalfCloseableStream) {
  run([] {
    fail_after(60s, [] {
      fakes::check_half_closeable_stream([] { return owned(testing::tcp_stream_pair()); },
                                         [] { return clogged(owned(testing::tcp_stream_pair())); });
    });
  });
}

TEST(SocketStreamConformance, UnixConnectionPassesCheckHalfCloseableStream) {
  run([] {
    fail_after(60s, [] {
      fakes::check_half_closeable_stream(
          [] { return owned(testing::unix_stream_pair()); },
          [] { return clogged(owned(testing::unix_stream_pair())); });
    });
  });
}

}  // namespace
}  // namespace trellis
