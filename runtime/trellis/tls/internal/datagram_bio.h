// trellis/tls/internal/datagram_bio.h — an OpenSSL BIO over a queue of whole datagrams, so
// that DTLS runs over any UdpSocket (real or simulated) without OpenSSL touching a socket.
//
// A memory BIO would glue datagrams together; this one keeps their boundaries: each write is
// one datagram, each read takes one (truncated to the reader's buffer, as a socket would).
// Reading an empty queue is "retry later" (EAGAIN). The BIO does not own its queue.
#pragma once

#include <openssl/bio.h>

#include <cstddef>
#include <deque>
#include <vector>

namespace trellis::tls_internal {

struct DatagramQueue {
  std::deque<std::vector<std::byte>> datagrams;
  // Bounds what a peer can make us hold (a flood of datagrams for one channel): beyond it,
  // the oldest are dropped, as a full socket receive buffer would.
  static constexpr std::size_t kDatagramsMax = 256;
  void push(std::vector<std::byte> datagram) {
    if (datagrams.size() == kDatagramsMax) datagrams.pop_front();
    datagrams.push_back(std::move(datagram));
  }
};

// A new BIO reading and writing `queue` (which must outlive it). Throws std::bad_alloc.
BIO* new_datagram_bio(DatagramQueue& queue);

}  // namespace trellis::tls_internal
