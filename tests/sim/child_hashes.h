// tests/sim/child_hashes.h — the two halves of a cross-process determinism check.
//
// A test runs its own binary again as a child (only the child test selected, the seed count
// in an environment variable) and compares the trace hashes the child prints with its own:
// the child has a different address-space layout (ASLR), so a hash that depends on an
// address, or on anything else outside the seed, shows up as a difference.
//
//   TEST(Suite, ChildPrintsHashes) {
//     const std::uint64_t seeds = child_seed_count("MY_CHILD_SEEDS");
//     if (seeds == 0) GTEST_SKIP() << "runs only as the child of SameHashInAnotherProcess";
//     for (std::uint64_t seed = 1; seed <= seeds; ++seed) print_seed_hash(seed, hash_of(seed));
//   }
//   TEST(Suite, SameHashInAnotherProcess) {
//     const auto theirs = hashes_from_child("Suite.ChildPrintsHashes", "MY_CHILD_SEEDS", 20);
//     ASSERT_EQ(theirs.size(), 20u);
//     for (const auto& [seed, hash] : theirs) EXPECT_EQ(hash_of(seed), hash);
//   }
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>

namespace trellis::sim::testing {

// In the child: how many seeds the parent asked for; 0 when not run as a child.
inline std::uint64_t child_seed_count(const char* env_var) {
  const char* seeds = std::getenv(env_var);
  return seeds == nullptr ? 0 : std::strtoull(seeds, nullptr, 10);
}

// In the child: one line the parent reads back.
inline void print_seed_hash(std::uint64_t seed, std::uint64_t hash) {
  std::printf("hash %llu %llu\n", static_cast<unsigned long long>(seed),
              static_cast<unsigned long long>(hash));
}

// In the parent: runs `child_test` (a gtest filter) in a new process of this binary with
// env_var=seeds and returns the seed -> hash lines it printed. A child that cannot start or
// fails is a test failure (and an empty or short map).
inline std::map<std::uint64_t, std::uint64_t> hashes_from_child(const char* child_test,
                                                                const char* env_var,
                                                                std::uint64_t seeds) {
  std::map<std::uint64_t, std::uint64_t> hashes;
  if (::setenv(env_var, std::to_string(seeds).c_str(), 1) != 0) {
    ADD_FAILURE() << "setenv " << env_var << " failed";
    return hashes;
  }
  const std::string command = "/proc/" + std::to_string(::getpid()) +
                              "/exe --gtest_filter=" + child_test + " --gtest_color=no 2>&1";
  FILE* child = ::popen(command.c_str(), "r");
  ::unsetenv(env_var);
  if (child == nullptr) {
    ADD_FAILURE() << "could not start " << command;
    return hashes;
  }
  std::array<char, 512> line{};
  while (std::fgets(line.data(), line.size(), child) != nullptr) {
    unsigned long long seed = 0;
    unsigned long long hash = 0;
    if (std::sscanf(line.data(), "hash %llu %llu", &seed, &hash) == 2) hashes[seed] = hash;
  }
  const int status = ::pclose(child);
  EXPECT_EQ(status, 0) << "the child (" << command << ") failed";
  return hashes;
}

}  // namespace trellis::sim::testing
