// TLS inside a World: the production calls (serve_ssl_over_tcp, open_ssl_over_tcp_stream,
// SslStream) over simulated TCP, with the faults below TLS — partitions, a crashed and
// restarted server, a connection reset by the restarted server — and determinism: with
// DeterministicOpenSslRandom seeded from the world's seed, one seed gives the same trace hash
// and the same bytes, also in a second process (tests/sim/child_process.h).
#include <gtest/gtest.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "../sim/child_process.h"
#include "trellis/fakes/tls.h"
#include "trellis/sim.h"
#include "trellis/tls.h"
#include "trellis/trellis.h"

namespace trellis {
namespace {

using namespace std::chrono_literals;

constexpr std::uint16_t kPort = 443;

std::uint64_t fnv1a(std::uint64_t hash, std::string_view text) {
  for (const char c : text) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 0x100000001b3ULL;
  }
  return hash;
}

void echo(SslStream& stream) {
  std::vector<std::byte> buffer(4096);
  try {
    while (std::size_t n = stream.receive_some(buffer)) {
      stream.send_all(std::span(buffer).first(n));
    }
  } catch (const BrokenResourceError&) {
    // The client went away (or the TLS failed): its problem, the server goes on.
  } catch (const OSError&) {
  }
}

// A Stream that folds every byte sent through it into *digest: the client's ciphertext
// (randoms, key shares, records), which differs run to run unless OpenSSL's randomness
// comes from the seed. (The world's trace records the segments, not their bytes.)
class DigestingStream final : public Stream {
 public:
  DigestingStream(std::unique_ptr<Stream> inner, std::uint64_t& digest)
      : inner_(std::move(inner)), digest_(digest) {}
  void send_all(std::span<const std::byte> data) override {
    digest_ = fnv1a(digest_, {reinterpret_cast<const char*>(data.data()), data.size()});
    inner_->send_all(data);
  }
  void wait_send_all_might_not_block() override { inner_->wait_send_all_might_not_block(); }
  std::size_t receive_some(std::span<std::byte> buffer) override {
    return inner_->receive_some(buffer);
  }
  void close() override { inner_->close(); }

 private:
  std::unique_ptr<Stream> inner_;
  std::uint64_t& digest_;
};

struct EchoStats {
  int rounds_ok = 0;      // messages echoed intact
  int rounds_failed = 0;  // rounds that ended in an error or a timeout (faults)
  int wrong_echoes = 0;   // must stay 0: TLS never hands out corrupted data
  std::uint64_t digest = 0xcbf29ce484222325ULL;       // every echo and error, in order
  std::uint64_t wire_digest = 0xcbf29ce484222325ULL;  // the client's ciphertext
};

// A client that connects over TLS, echoes numbered messages, and on any failure (each round
// has a 2 s deadline, as production code would) reconnects after a pause.
void echo_client(SslContext& context, EchoStats& stats) {
  for (int connection = 0;; ++connection) {
    try {
      fail_after(10s, [&] {
        auto tcp = std::make_unique<SocketStream>(open_tcp_stream("10.0.0.1", kPort));
        SslStream stream(std::make_unique<DigestingStream>(std::move(tcp), stats.wire_digest),
                         context, {.server_hostname = "10.0.0.1"});
        for (int i = 0; i < 1000; ++i) {
          const std::string message = "message " + std::to_string(connection) + "." +
                                      std::to_string(i) + std::string(i % 700, 'x');
          fail_after(2s, [&] {
            stream.send_all(std::as_bytes(std::span(message.data(), message.size())));
            std::string echoed;
            std::vector<std::byte> buffer(4096);
            while (echoed.size() < message.size()) {
              const std::size_t n = stream.receive_some(buffer);
              if (n == 0) throw BrokenResourceError("server closed");
              echoed.append(reinterpret_cast<const char*>(buffer.data()), n);
            }
            if (echoed != message) ++stats.wrong_echoes;
          });
          ++stats.rounds_ok;
          stats.digest = fnv1a(stats.digest, message);
        }
      });
    } catch (const std::exception& error) {  // BrokenResourceError, OSError, TooSlowError
      ++stats.rounds_failed;
      stats.digest = fnv1a(stats.digest, error.what());
    }
    sleep(500ms);
  }
}

struct WorldResult {
  std::uint64_t trace_hash = 0;
  EchoStats stats;
};

// One seeded world: server and client hosts, a driver that partitions, crashes and restarts.
WorldResult run_tls_world(std::uint64_t seed, bool deterministic_openssl = true) {
  // The world's run draws OpenSSL's random bytes from its seed.
  std::optional<DeterministicOpenSslRandom> random;
  if (deterministic_openssl) random.emplace(seed);
  fakes::TestCertificateAuthority ca;
  SslContext server_context = SslContext::server();
  ca.issue_server_certificate({"10.0.0.1"}).configure(server_context);
  SslContext client_context = SslContext::client();
  ca.configure_trust(client_context);
  WorldResult result;
  sim::World world({.seed = seed});
  sim::Host& server = world.add_host("server", "10.0.0.1");
  sim::Host& client = world.add_host("client", "10.0.0.2");
  server.start([&] { serve_ssl_over_tcp(echo, kPort, server_context); });
  client.start([&] { echo_client(client_context, result.stats); });
  world.run([&] {
    Prng& prng = world.prng();
    for (int fault = 0; fault < 6; ++fault) {
      sleep(std::chrono::milliseconds(200 + prng.below(3000)));
      if (prng.chance(1, 2)) {
        world.partition(server, client);
        sleep(std::chrono::milliseconds(prng.below(5000)));
        world.heal_all();
      } else {
        server.crash();
        sleep(std::chrono::milliseconds(prng.below(3000)));
        server.restart();
      }
    }
    sleep(5s);  // a quiet end: the client must get through again
  });
  result.trace_hash = world.trace().hash();
  return result;
}

TEST(SslSim, EchoSurvivesPartitionsAndCrashesWithoutCorruptionOrHangs) {
  for (std::uint64_t seed = 1; seed <= 4; ++seed) {
    const WorldResult result = run_tls_world(seed);
    EXPECT_EQ(result.stats.wrong_echoes, 0) << "seed " << seed;
    EXPECT_GT(result.stats.rounds_ok, 10) << "seed " << seed;
    EXPECT_GT(result.stats.rounds_failed, 0) << "seed " << seed << ": no fault was felt";
  }
}

TEST(SslSim, OneSeedIsOneRun) {
  const WorldResult first = run_tls_world(11);
  const WorldResult second = run_tls_world(11);
  EXPECT_EQ(first.trace_hash, second.trace_hash);
  EXPECT_EQ(first.stats.digest, second.stats.digest);
  EXPECT_EQ(first.stats.rounds_ok, second.stats.rounds_ok);
  EXPECT_EQ(first.stats.wire_digest, second.stats.wire_digest);
  const WorldResult other = run_tls_world(12);
  EXPECT_NE(other.stats.digest, first.stats.digest);
  EXPECT_NE(other.stats.wire_digest, first.stats.wire_digest);
}

// The witness that the wire digest sees OpenSSL's randomness: without the seeded generator
// around the whole test, the CA's keys (made outside the World, from the system's entropy)
// differ, and the same seed puts other bytes on the wire (the schedule and the plaintext
// stay the same).
TEST(SslSim, WithoutTheSeededGeneratorTheCiphertextDiffers) {
  const WorldResult first = run_tls_world(11, false);
  const WorldResult second = run_tls_world(11, false);
  EXPECT_EQ(first.stats.digest, second.stats.digest);
  EXPECT_NE(first.stats.wire_digest, second.stats.wire_digest);
}

// With nothing set up: the CA, the keys and every handshake made inside the World draw
// OpenSSL's randomness from the world's seed (Backend::library_seed), so one seed is still
// one run, ciphertext included; the run's generator goes with the run.
WorldResult run_tls_world_unprepared(std::uint64_t seed) {
  WorldResult result;
  sim::World world({.seed = seed});
  sim::Host& host = world.add_host("both", "10.0.0.1");
  host.start([&] {
    fakes::TestCertificateAuthority ca;
    SslContext server_context = SslContext::server();
    ca.issue_server_certificate({"10.0.0.1"}).configure(server_context);
    SslContext client_context = SslContext::client();
    ca.configure_trust(client_context);
    open_nursery([&](Nursery& nursery) {
      nursery.start_soon([&] { serve_ssl_over_tcp(echo, kPort, server_context); });
      echo_client(client_context, result.stats);
    });
  });
  world.run([] { sleep(3s); });
  result.trace_hash = world.trace().hash();
  return result;
}

TEST(SslSim, InsideAWorldOpenSslDrawsFromTheSeedWithNothingSetUp) {
  ASSERT_FALSE(DeterministicOpenSslRandom::active());
  const WorldResult first = run_tls_world_unprepared(21);
  EXPECT_FALSE(DeterministicOpenSslRandom::active()) << "the run's generator outlived the run";
  const WorldResult second = run_tls_world_unprepared(21);
  EXPECT_GT(first.stats.rounds_ok, 10);
  EXPECT_EQ(first.trace_hash, second.trace_hash);
  EXPECT_EQ(first.stats.wire_digest, second.stats.wire_digest);
  EXPECT_NE(run_tls_world_unprepared(22).stats.wire_digest, first.stats.wire_digest);
}

std::uint64_t combined_hash(std::uint64_t seed) {
  const WorldResult result = run_tls_world(seed);
  return fnv1a(result.trace_hash,
               std::to_string(result.stats.digest) + std::to_string(result.stats.wire_digest));
}

TEST(SslSim, ChildPrintsHashes) {
  const std::uint64_t seeds = sim::testing::child_seed_count("TRELLIS_TLS_CHILD_SEEDS");
  if (seeds == 0) GTEST_SKIP() << "runs only as the child of SameHashInAnotherProcess";
  for (std::uint64_t seed = 1; seed <= seeds; ++seed) {
    sim::testing::print_seed_hash(seed, combined_hash(seed));
  }
}

TEST(SslSim, SameHashInAnotherProcess) {
  const auto theirs =
      sim::testing::hashes_from_child("SslSim.ChildPrintsHashes", "TRELLIS_TLS_CHILD_SEEDS", 2);
  ASSERT_EQ(theirs.size(), 2u);
  for (const auto& [seed, hash] : theirs) EXPECT_EQ(combined_hash(seed), hash) << seed;
}

}  // namespace
}  // namespace trellis
