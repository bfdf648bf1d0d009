// trellis/base/prng.h — the project's one pseudo-random number generator.
//
// Determinism rule (DESIGN.md): every random choice comes from a seeded Prng whose output is
// fixed by this code, never from an OS entropy source or a <random> distribution (whose output
// may differ between standard library versions). The generator is xoshiro256** seeded through
// SplitMix64, with an unbiased bounded draw (Lemire's multiply-and-reject).
#pragma once

#include <cstdint>

#include "trellis/base/assert.h"

namespace trellis {

class Prng {
 public:
  explicit Prng(std::uint64_t seed) noexcept {
    std::uint64_t x = seed;
    for (std::uint64_t& word : state_) word = split_mix64(x);
  }

  // Uniform over all 64-bit values.
  std::uint64_t next() noexcept {
    const std::uint64_t result = rotl(state_[1] * 5, 7) * 9;
    const std::uint64_t t = state_[1] << 17;
    state_[2] ^= state_[0];
    state_[3] ^= state_[1];
    state_[1] ^= state_[2];
    state_[0] ^= state_[3];
    state_[2] ^= t;
    state_[3] = rotl(state_[3], 45);
    return result;
  }

  // Uniform in [0, bound). bound must be > 0.
  std::uint64_t below(std::uint64_t bound) noexcept {
    TRELLIS_ASSERT(bound > 0);
    __uint128_t m = static_cast<__uint128_t>(next()) * bound;
    auto low = static_cast<std::uint64_t>(m);
    if (low < bound) {
      const std::uint64_t threshold = -bound % bound;
      while (low < threshold) {
        m = static_cast<__uint128_t>(next()) * bound;
        low = static_cast<std::uint64_t>(m);
      }
    }
    const auto result = static_cast<std::uint64_t>(m >> 64);
    TRELLIS_ASSERT(result < bound);
    return result;
  }

  // True with probability numerator / denominator.
  bool chance(std::uint64_t numerator, std::uint64_t denominator) noexcept {
    TRELLIS_ASSERT(numerator <= denominator);
    return below(denominator) < numerator;
  }

  // SplitMix64 step: also used to derive independent seeds from one master seed.
  static std::uint64_t split_mix64(std::uint64_t& x) noexcept {
    std::uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) noexcept { return (x << k) | (x >> (64 - k)); }

  std::uint64_t state_[4];
};

}  // namespace trellis
