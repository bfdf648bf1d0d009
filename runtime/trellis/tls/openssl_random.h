// trellis/tls/openssl_random.h — make OpenSSL's random bytes come from a seed, for as long as
// a guard lives, on this thread only.
//
// TLS draws random bytes for every handshake (client and server randoms, key shares,
// signature nonces, session tickets). Inside a World those must come from the world's seed,
// or a TLS run is not reproducible. A DeterministicOpenSslRandom installs a RAND method that
// serves the thread that created it from a trellis::Prng (the output is fixed by our code)
// and every other thread from OpenSSL's own DRBG; destroying the last guard removes the
// method, so outside a guard OpenSSL's generator is used untouched.
//
//   trellis::sim::World world({.seed = seed});
//   trellis::DeterministicOpenSslRandom random(seed);   // for the world's run
//   world.run([&] { ... TLS ... });                     // same seed, same bytes on the wire
//
// Never use this outside tests and simulations: the bytes are predictable by design.
// Guards nest (the innermost on a thread wins) and must be destroyed in reverse order on the
// thread that made them.
#pragma once

#include <cstdint>

#include "trellis/base/prng.h"

namespace trellis {

class DeterministicOpenSslRandom {
 public:
  explicit DeterministicOpenSslRandom(std::uint64_t seed);
  ~DeterministicOpenSslRandom();
  DeterministicOpenSslRandom(const DeterministicOpenSslRandom&) = delete;
  DeterministicOpenSslRandom& operator=(const DeterministicOpenSslRandom&) = delete;

  // Fills out with the next bytes of this guard's stream (what OpenSSL gets).
  void fill(unsigned char* out, std::size_t size) noexcept;
  // How many bytes OpenSSL drew from this guard so far.
  std::uint64_t bytes_drawn() const noexcept { return bytes_drawn_; }

  // Whether a guard is alive on this thread. Then the one wall-clock reading that reaches
  // the wire is pinned too: a server's session tickets carry the session's creation time,
  // which SslContext's servers set to kSessionTime (2000-01-01) instead of time(NULL).
  static bool active() noexcept;
  static constexpr std::int64_t kSessionTime = 946684800;

 private:
  Prng prng_;
  std::uint64_t bytes_drawn_ = 0;
  // The guard this one hides on this thread (restored when this one goes).
  DeterministicOpenSslRandom* outer_;
};

namespace internal {
// Called where OpenSSL objects are made inside a run (SslStream, DtlsEndpoint): if the run's
// backend is deterministic (Backend::library_seed(), the simulator's) and no guard is alive
// on this thread, installs one for the rest of the run, seeded from the run. Inside a World
// TLS is then reproducible from the world's seed with nothing to set up.
void use_run_randomness();
}  // namespace internal

}  // namespace trellis
