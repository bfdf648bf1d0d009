// Property test of SslStream: whatever the chunking on both sides, the transport's trickle
// and the schedule, and however often a receive is cancelled, each side receives exactly the
// bytes the other sent, in order, then a clean end of file after close().
//
// Method: RapidCheck picks the TLS version, each side's send chunks and receive buffer sizes,
// how the transport delivers (memory streams whose pump moves a random 1..max bytes at a time
// with random virtual sleeps between), how often a receive runs under a short timeout (a
// cancelled receive must lose nothing: Trio's guarantee), and the schedule's seed (TrioPolicy
// under an autojumping MockClock, so every failure replays).
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "trellis/fakes.h"
#include "trellis/fakes/tls.h"
#include "trellis/tls.h"
#include "trellis/trellis.h"

namespace trellis {
namespace {

using namespace std::chrono_literals;

struct SidePlan {
  std::vector<std::size_t> send_chunks;    // bytes per send_all
  std::vector<std::size_t> receive_sizes;  // buffer sizes, used in turn
  std::size_t pump_max = 1;                // the transport moves 1..pump_max bytes at a time
  unsigned cancel_percent = 0;             // receives run under a 1 us timeout this often
};

SidePlan generate_side() {
  SidePlan side;
  side.send_chunks = *rc::gen::container<std::vector<std::size_t>>(
      *rc::gen::inRange<std::size_t>(0, 12), rc::gen::inRange<std::size_t>(0, 40'000));
  side.receive_sizes = *rc::gen::nonEmpty(rc::gen::container<std::vector<std::size_t>>(
      *rc::gen::inRange<std::size_t>(1, 6), rc::gen::inRange<std::size_t>(1, 20'000)));
  side.pump_max = *rc::gen::element<std::size_t>(1, 7, 1000, 70'000);
  side.cancel_percent = *rc::gen::element(0u, 10u, 50u);
  return side;
}

// The bytes a side sends: a pattern that makes a reordering or a loss visible.
std::vector<std::byte> payload(const SidePlan& side, std::uint8_t salt) {
  std::vector<std::byte> bytes;
  for (const std::size_t chunk : side.send_chunks) {
    for (std::size_t i = 0; i < chunk; ++i) {
      bytes.push_back(static_cast<std::byte>((bytes.size() * 31 + salt) & 0xff));
    }
  }
  return bytes;
}

// Makes what `from` sends trickle into `to` as the plan says (in the sending task).
void trickle(StapledStream& from, StapledStream& to, std::size_t pump_max, Prng& prng) {
  auto& send = from.send_stream_as<fakes::MemorySendStream>();
  auto& receive = to.receive_stream_as<fakes::MemoryReceiveStream>();
  send.send_all_hook = [&send, &receive, pump_max, &prng] {
    while (fakes::memory_stream_pump(send, receive, 1 + prng.below(pump_max))) {
      sleep(std::chrono::microseconds(prng.below(3)));
    }
  };
}

void send_side(SslStream& stream, const SidePlan& side, const std::vector<std::byte>& bytes) {
  std::size_t offset = 0;
  for (const std::size_t chunk : side.send_chunks) {
    stream.send_all(std::span(bytes).subspan(offset, chunk));
    offset += chunk;
  }
}

// Receives `size` bytes (an end of file first ends it early: the caller sees too few).
std::vector<std::byte> receive_side(SslStream& stream, const SidePlan& side, std::size_t size,
                                    Prng& prng) {
  std::vector<std::byte> received;
  // Ends with `size` bytes, at end of file, or on an error (which fails the property).
  for (std::size_t turn = 0; received.size() < size; ++turn) {
    std::vector<std::byte> buffer(side.receive_sizes[turn % side.receive_sizes.size()]);
    std::size_t n = 0;
    const auto receive = [&] { n = stream.receive_some(buffer); };
    if (prng.below(100) < side.cancel_percent) {
      if (!move_on_after(1us, receive)) continue;  // cancelled: nothing may be lost
    } else {
      receive();
    }
    if (n == 0) break;
    received.insert(received.end(), buffer.begin(), buffer.begin() + static_cast<long>(n));
  }
  return received;
}

fakes::TestCertificateAuthority& ca() {
  static fakes::TestCertificateAuthority authority;
  return authority;
}

RC_GTEST_PROP(SslStreamProperty, EveryByteArrivesOnceInOrderWhateverTheChunkingAndCancels, ()) {
  const bool tls13 = *rc::gen::arbitrary<bool>();
  const SidePlan client_plan = generate_side();
  const SidePlan server_plan = generate_side();
  const auto seed = *rc::gen::arbitrary<std::uint64_t>();
  SslContext client_context = SslContext::client();
  SslContext server_context = SslContext::server();
  ca().issue_server_certificate({"localhost"}).configure(server_context);
  ca().configure_trust(client_context);
  client_context.set_maximum_version(tls13 ? TlsVersion::kTls13 : TlsVersion::kTls12);
  const std::vector<std::byte> from_client = payload(client_plan, 1);
  const std::vector<std::byte> from_server = payload(server_plan, 2);
  std::vector<std::byte> at_server;
  std::vector<std::byte> at_client;
  bool end_of_file = false;
  fakes::MockClock clock;
  clock.set_autojump_threshold(Duration::zero());
  TrioPolicy policy(seed);
  Prng prng(seed);
  std::string error;  // what run() threw, if anything
  try {
    run(
        [&] {
          auto [a, b] = fakes::memory_stream_pair();
          trickle(a, b, client_plan.pump_max, prng);
          trickle(b, a, server_plan.pump_max, prng);
          SslStream client(std::make_unique<StapledStream>(std::move(a)), client_context,
                           {.server_hostname = "localhost"});
          SslStream server(std::make_unique<StapledStream>(std::move(b)), server_context,
                           {.server_side = true});
          open_nursery([&](Nursery& nursery) {  // a cancelled handshake breaks: none here
            nursery.start_soon([&] { client.do_handshake(); });
            nursery.start_soon([&] { server.do_handshake(); });
          });
          open_nursery([&](Nursery& nursery) {
            nursery.start_soon([&] { send_side(client, client_plan, from_client); });
            nursery.start_soon([&] { send_side(server, server_plan, from_server); });
            nursery.start_soon(
                [&] { at_server = receive_side(server, client_plan, from_client.size(), prng); });
            nursery.start_soon(
                [&] { at_client = receive_side(client, server_plan, from_server.size(), prng); });
          });
          // close_notify: the peer then reads a clean end of file (twice), and closes too.
          client.close();
          std::array<std::byte, 16> buffer;
          end_of_file = server.receive_some(buffer) == 0 && server.receive_some(buffer) == 0;
          try {
            server.close();
          } catch (const BrokenResourceError&) {
            // The memory transport's close pumps end of file into the client's side, which
            // is closed already: the transport reports that; the TLS stream is closed anyway.
          }
        },
        {.clock = &clock, .policy = &policy});
  } catch (const std::exception& e) {
    error = e.what();
  } catch (...) {
    error = "an exception that is not a std::exception";
  }
  RC_ASSERT(error == std::string());
  RC_ASSERT(at_server == from_client);
  RC_ASSERT(at_client == from_server);
  RC_ASSERT(end_of_file);
}

}  // namespace
}  // namespace trellis
