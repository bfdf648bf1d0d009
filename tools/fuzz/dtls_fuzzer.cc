// trellis_dtls_fuzzer — coverage-guided fuzzing of DtlsEndpoint's handling of datagrams from
// anyone (libFuzzer): the stateless cookie exchange (OpenSSL's DTLSv1_listen), our own record
// header check (is_epoch_zero), the dispatch by peer address, and an established channel's
// record path. Each input runs one sim::World (virtual time, no sockets): a hostile host sends
// the input's datagrams to a DTLS server endpoint before and after a legitimate client's
// handshake, and the client's own address sends more in the middle of its exchange. The
// invariants: no crash, no UB, no leak (ASan + UBSan), every error a Trellis error, and the
// legitimate client handshakes, gets back exactly the 8 datagrams it sent within 120 s of
// virtual time, and a second client is served afterwards.
//
// Input: one byte of seed, then datagrams, each `flags:1 length:2 (big-endian) bytes`:
//   flags & 3 — 0: hostile host -> server before the handshake; 1: after it; 2 or 3: from
//               the client's address, mid-exchange;
//   flags & 4 — the bytes are xor-ed onto a real ClientHello (captured in the run) instead of
//               being the datagram; flags & 8 then cuts the result to `length` bytes.
//
//   build/fuzz/tools/trellis_dtls_fuzzer -max_total_time=60 corpus/
//   TRELLIS_DTLS_FUZZ_SEED_DIR=corpus/ build/fuzz/tools/trellis_dtls_fuzzer -runs=1
//     writes seeds built from the captured ClientHello into corpus/ (tools/fuzz/smoke.sh).
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "dtls_world.h"  // tests/tls/: the world the DTLS tests use too
#include "trellis/fakes/tls.h"
#include "trellis/sim.h"
#include "trellis/tls.h"
#include "trellis/trellis.h"

namespace {

using namespace std::chrono_literals;
using namespace trellis;

using trellis::dtls_testing::bytes;
using trellis::dtls_testing::DtlsWorld;

constexpr std::size_t kDatagramsMax = 64;  // per input: bounds the run's length
constexpr int kExchangeCount = 8;

struct Hostile {
  int target = 0;  // 0 before the handshake, 1 after, 2 from the client's address
  bool xor_client_hello = false;
  bool truncate = false;
  std::vector<std::byte> bytes;
};

struct FuzzInput {
  std::uint64_t seed = 1;
  std::vector<Hostile> datagrams;
};

FuzzInput parse(std::span<const std::uint8_t> data) {
  FuzzInput input;
  if (data.empty()) return input;
  input.seed = 1 + data[0];
  std::size_t at = 1;
  while (at + 3 <= data.size() && input.datagrams.size() < kDatagramsMax) {
    Hostile hostile;
    const std::uint8_t flags = data[at];
    hostile.target = std::min(flags & 3, 2);
    hostile.xor_client_hello = (flags & 4) != 0;
    hostile.truncate = (flags & 8) != 0;
    const std::size_t length =
        std::min<std::size_t>((data[at + 1] << 8) | data[at + 2], data.size() - at - 3);
    const auto* first = reinterpret_cast<const std::byte*>(data.data() + at + 3);
    hostile.bytes.assign(first, first + length);
    input.datagrams.push_back(std::move(hostile));
    at += 3 + length;
  }
  return input;
}

std::vector<std::byte> materialize(const Hostile& hostile, const std::vector<std::byte>& hello) {
  if (!hostile.xor_client_hello) return hostile.bytes;
  std::vector<std::byte> datagram = hello;
  if (datagram.size() < hostile.bytes.size()) datagram.resize(hostile.bytes.size());
  for (std::size_t i = 0; i < hostile.bytes.size(); ++i) datagram[i] ^= hostile.bytes[i];
  if (hostile.truncate) datagram.resize(hostile.bytes.size());
  return datagram;
}

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "trellis_dtls_fuzzer: invariant broken: %s\n", what.c_str());
  std::abort();
}

void send_all(UdpSocket& socket, const FuzzInput& input, int target,
              const std::vector<std::byte>& hello) {
  const SocketAddress to = DtlsWorld::server_address();
  for (const Hostile& hostile : input.datagrams) {
    if (hostile.target == target) socket.send_to(materialize(hostile, hello), to);
  }
}

void exchange(DtlsChannel& channel, int count, const std::function<void(int)>& before) {
  for (int i = 0; i < count; ++i) {
    before(i);
    const std::string message = "datagram " + std::to_string(i);
    channel.send(bytes(message));
    const std::vector<std::byte> reply = channel.receive();
    if (reply != bytes(message)) fail("echo " + std::to_string(i) + " came back different");
  }
}

void legitimate_client(SslContext& client_ctx, const FuzzInput& input,
                       const std::vector<std::byte>& hello, Event& handshaken) {
  const SocketAddress server = DtlsWorld::server_address();
  DtlsEndpoint endpoint(UdpSocket(AF_INET));
  DtlsChannel channel = endpoint.connect(server, client_ctx);
  channel.do_handshake();
  handshaken.set();
  exchange(channel, kExchangeCount, [&](int i) {
    if (i == kExchangeCount / 2) send_all(endpoint.socket(), input, 2, hello);
  });
  channel.close();
  DtlsEndpoint second(UdpSocket(AF_INET));
  DtlsChannel other = second.connect(server, client_ctx);
  exchange(other, 1, [](int) {});
  other.close();
}

void write_seeds(const char* dir, const std::vector<std::byte>& hello) {
  const auto write = [&](const std::string& name, std::uint8_t flags,
                         const std::vector<std::byte>& body) {
    std::ofstream out(std::string(dir) + "/" + name, std::ios::binary);
    const std::uint8_t header[4] = {1, flags, static_cast<std::uint8_t>(body.size() >> 8),
                                    static_cast<std::uint8_t>(body.size() & 0xff)};
    out.write(reinterpret_cast<const char*>(header), sizeof header);
    out.write(reinterpret_cast<const char*>(body.data()), static_cast<long>(body.size()));
  };
  write("client_hello_before", 0, hello);
  write("client_hello_after", 1, hello);
  write("client_hello_from_peer", 2, hello);
  write("client_hello_xor_header", 4 | 2, std::vector<std::byte>(13));
}

void run_one(const FuzzInput& input) {
  DtlsWorld w(sim::Config{.seed = input.seed});
  w.start_echo_server();
  Event before_sent;
  Event handshaken;
  std::vector<std::byte> hello;
  w.attacker().start([&] {
    hello = trellis::dtls_testing::capture_client_hello(
        w.client_context(), *SocketAddress::parse(DtlsWorld::kAttackerIp, 9999));
    if (const char* dir = std::getenv("TRELLIS_DTLS_FUZZ_SEED_DIR")) write_seeds(dir, hello);
    UdpSocket socket = UdpSocket::bind(*SocketAddress::parse(DtlsWorld::kAttackerIp, 0));
    send_all(socket, input, 0, hello);
    before_sent.set();
    handshaken.wait();
    send_all(socket, input, 1, hello);
  });
  const bool done = w.run_client(
      [&] {
        fail_after(120s, [&] {
          before_sent.wait();
          legitimate_client(w.client_context(), input, hello, handshaken);
        });
      },
      200s);
  if (!done) fail("the client did not finish within 200 s of virtual time");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const FuzzInput input = parse(std::span<const std::uint8_t>(data, size));
  try {
    run_one(input);
  } catch (const std::exception& error) {
    // Any exception out of the run: the server's endpoint or the client failed.
    fail(std::string("the run threw: ") + error.what());
  }
  return 0;
}
