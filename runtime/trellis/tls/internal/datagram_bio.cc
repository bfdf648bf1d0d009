#include "trellis/tls/internal/datagram_bio.h"

#include <cstring>
#include <new>

#include "trellis/base/assert.h"

namespace trellis::tls_internal {
namespace {

// IPv4 + UDP headers: what DTLS subtracts from a link MTU (DTLS_set_link_mtu).
constexpr long kDatagramOverhead = 28;

DatagramQueue& queue_of(BIO* bio) {
  auto* queue = static_cast<DatagramQueue*>(BIO_get_data(bio));
  TRELLIS_ASSERT(queue != nullptr);
  return *queue;
}

int datagram_write(BIO* bio, const char* data, int size) {
  BIO_clear_retry_flags(bio);
  if (size < 0) return -1;
  const auto* bytes = reinterpret_cast<const std::byte*>(data);
  queue_of(bio).push(std::vector<std::byte>(bytes, bytes + size));
  return size;
}

int datagram_read(BIO* bio, char* out, int size) {
  BIO_clear_retry_flags(bio);
  DatagramQueue& queue = queue_of(bio);
  // An empty UDP datagram holds no record: returning 0 for it would read to OpenSSL as the
  // end of the stream and break the channel, so one stray empty datagram from anyone who can
  // send from the peer's address would end it. Skip it.
  while (!queue.datagrams.empty() && queue.datagrams.front().empty()) queue.datagrams.pop_front();
  if (queue.datagrams.empty()) {
    BIO_set_retry_read(bio);
    return -1;
  }
  std::vector<std::byte> datagram = std::move(queue.datagrams.front());
  queue.datagrams.pop_front();
  const std::size_t n = std::min(datagram.size(), static_cast<std::size_t>(size < 0 ? 0 : size));
  TRELLIS_ASSERT(n > 0 || size <= 0);  // 0 means end of stream to OpenSSL: never for data
  if (n > 0) std::memcpy(out, datagram.data(), n);
  return static_cast<int>(n);
}

long datagram_ctrl(BIO* bio, int command, long, void*) {
  switch (command) {
    case BIO_CTRL_FLUSH:
    case BIO_CTRL_DGRAM_SET_CONNECTED:
    case BIO_CTRL_DGRAM_SET_NEXT_TIMEOUT:
      return 1;
    case BIO_CTRL_DGRAM_GET_MTU_OVERHEAD:
      return kDatagramOverhead;
    case BIO_CTRL_PENDING: {
      const DatagramQueue& queue = queue_of(bio);
      return queue.datagrams.empty() ? 0 : static_cast<long>(queue.datagrams.front().size());
    }
    case BIO_CTRL_WPENDING:
      return 0;  // written datagrams are out of OpenSSL's hands at once
    default:
      return 0;  // peers, MTU queries, timeouts: not ours to answer
  }
}

int datagram_create(BIO* bio) {
  BIO_set_init(bio, 1);
  return 1;
}

int datagram_destroy(BIO* bio) {
  BIO_set_data(bio, nullptr);  // the queue belongs to the channel
  return 1;
}

BIO_METHOD* datagram_method() {
  // Made once, never freed (one small object for the process, as OpenSSL's own methods).
  static BIO_METHOD* const method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "trellis datagram");
    if (m == nullptr || BIO_meth_set_write(m, datagram_write) != 1 ||
        BIO_meth_set_read(m, datagram_read) != 1 || BIO_meth_set_ctrl(m, datagram_ctrl) != 1 ||
        BIO_meth_set_create(m, datagram_create) != 1 ||
        BIO_meth_set_destroy(m, datagram_destroy) != 1) {
      throw std::bad_alloc();
    }
    return m;
  }();
  return method;
}

}  // namespace

BIO* new_datagram_bio(DatagramQueue& queue) {
  BIO* bio = BIO_new(datagram_method());
  if (bio == nullptr) throw std::bad_alloc();
  BIO_set_data(bio, &queue);
  return bio;
}

}  // namespace trellis::tls_internal
