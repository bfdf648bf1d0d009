// tests/sim/child_process.h — running this test binary again as a child process, and the
// two halves of a cross-process determinism check built on it.
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

// Runs this test binary again with only `filter` selected, `environment` ("NAME=value ...")
// set for it, and returns what it printed (stdout and stderr); *status is pclose's (-1 if
// the child could not be started).
inline std::string run_child(const std::string& environment, const std::string& filter,
                             int* status) {
  const std::string command = environment + " /proc/" + std::to_string(::getpid()) +
                              "/exe --gtest_filter=" + filter + " --gtest_color=no 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) {
    *status = -1;
    return {};
  }
  std::string out;
  std::array<char, 4096> buffer{};
  while (std::fgets(buffer.data(), buffer.size(), pipe) != nullptr) out += buffer.data();
  *status = ::pclose(pipe);
  return out;
}

// In the parent: runs `child_test` (a gtest filter) as a child with env_var=seeds and returns
// the seed -> hash lines it printed. A child that cannot start or fails is a test failure
// (and an empty or short map).
inline std::map<std::uint64_t, std::uint64_t> hashes_from_child(const char* child_test,
                                                                const char* env_var,
                                                                std::uint64_t seeds) {
  int status = 0;
  const std::string out =
      run_child(std::string(env_var) + "=" + std::to_string(seeds), child_test, &status);
  EXPECT_EQ(status, 0) << "the child (" << child_test << ") failed:\n" << out;
  std::map<std::uint64_t, std::uint64_t> hashes;
  std::size_t line_start = 0;
  while (line_start < out.size()) {
    std::size_t line_end = out.find('\n', line_start);
    if (line_end == std::string::npos) line_end = out.size();
    unsigned long long seed = 0;
    unsigned long long hash = 0;
    if (std::sscanf(out.substr(line_start, line_end - line_start).c_str(), "hash %llu %llu", &seed,
                    &hash) == 2) {
      hashes[seed] = hash;
    }
    line_start = line_end + 1;
  }
  return hashes;
}

}  // namespace trellis::sim::testing
