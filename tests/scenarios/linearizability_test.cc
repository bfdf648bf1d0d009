// The linearizability checker: known answers, and RapidCheck properties against a
// brute-force search over every order of small histories.
#include "trellis/scenarios/kv/linearizability.h"

#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

namespace trellis::scenarios {
namespace {

using Kind = RegisterOperation::Kind;

RegisterOperation write(std::uint32_t client, std::string value, std::uint64_t invoked,
                        std::optional<std::uint64_t> completed) {
  return {Kind::kWrite, std::move(value), client, invoked, completed};
}
RegisterOperation read(std::uint32_t client, std::string value, std::uint64_t invoked,
                       std::optional<std::uint64_t> completed) {
  return {Kind::kRead, std::move(value), client, invoked, completed};
}

TEST(Linearizability, EmptyAndSequentialHistoriesAreLinearizable) {
  EXPECT_TRUE(check_register_history({}, "").linearizable);
  EXPECT_TRUE(check_register_history({read(1, "", 1, 2)}, "").linearizable);
  EXPECT_TRUE(
      check_register_history(
          {write(1, "a", 1, 2), read(2, "a", 3, 4), write(2, "b", 5, 6), read(1, "b", 7, 8)}, "")
          .linearizable);
}

TEST(Linearizability, AReadOfAValueNeverWrittenIsNot) {
  const LinearizabilityResult r =
      check_register_history({write(1, "a", 1, 2), read(2, "zzz", 3, 4)}, "");
  EXPECT_FALSE(r.linearizable);
  EXPECT_NE(r.explanation.find("c2 read -> 'zzz' [3, 4]"), std::string::npos) << r.explanation;
}

TEST(Linearizability, AStaleReadAfterAWriteCompletedIsNot) {
  EXPECT_FALSE(
      check_register_history({write(1, "a", 1, 2), write(1, "b", 3, 4), read(2, "a", 5, 6)}, "")
          .linearizable);
}

TEST(Linearizability, AReadConcurrentWithAWriteMaySeeEitherValue) {
  for (const char* seen : {"a", "b"}) {
    EXPECT_TRUE(
        check_register_history({write(1, "a", 1, 2), write(1, "b", 3, 6), read(2, seen, 4, 5)}, "")
            .linearizable)
        << seen;
  }
}

TEST(Linearizability, NewThenOldAcrossTwoReadsIsNot) {
  // The inversion the kv scenario's planted bug produces: a write in flight, one read sees
  // it, a later read does not.
  const LinearizabilityResult r = check_register_history(
      {write(1, "old", 1, 2), write(2, "new", 3, 20), read(3, "new", 4, 5), read(1, "old", 6, 7)},
      "");
  EXPECT_FALSE(r.linearizable);
  EXPECT_NE(r.explanation.find("c1 read -> 'old' [6, 7]"), std::string::npos) << r.explanation;
}

TEST(Linearizability, AnIndeterminateWriteMayOrMayNotTakeEffect) {
  EXPECT_TRUE(check_register_history({write(1, "a", 1, std::nullopt), read(2, "a", 5, 6)}, "")
                  .linearizable);
  EXPECT_TRUE(
      check_register_history({write(1, "a", 1, std::nullopt), read(2, "", 5, 6)}, "").linearizable);
  // ...but not before it was invoked.
  EXPECT_FALSE(check_register_history({read(2, "a", 1, 2), write(1, "a", 3, std::nullopt)}, "")
                   .linearizable);
  // ...and once seen, it stays.
  EXPECT_FALSE(check_register_history(
                   {write(1, "a", 1, std::nullopt), read(2, "a", 5, 6), read(2, "", 7, 8)}, "")
                   .linearizable);
}

TEST(Linearizability, AnIndeterminateReadConstrainsNothing) {
  EXPECT_TRUE(check_register_history({read(1, "never-written", 1, std::nullopt)}, "").linearizable);
}

TEST(Linearizability, MalformedHistoriesAndRunawaySearchesAreErrors) {
  EXPECT_THROW(check_register_history({read(1, "", 5, 5)}, ""), std::invalid_argument);
  EXPECT_THROW(check_register_history({read(1, "", 5, 4)}, ""), std::invalid_argument);
  // 14 concurrent writes and a read of none of them: the search must try every subset.
  std::vector<RegisterOperation> history;
  for (std::uint32_t i = 0; i < 14; ++i) {
    history.push_back(write(i, "v" + std::to_string(i), i + 1, 100 + i));
  }
  history.push_back(read(99, "nothing", 50, 60));
  EXPECT_THROW(check_register_history(history, "", 1000), std::length_error);
  EXPECT_FALSE(check_register_history(history, "").linearizable);
}

// Brute force: is there an order of the (determinate, plus indeterminate writes that take
// effect) operations that respects real time and register semantics?
bool brute_force(const std::vector<RegisterOperation>& history, const std::string& initial) {
  std::vector<RegisterOperation> required;
  std::vector<RegisterOperation> optional_writes;
  for (const RegisterOperation& op : history) {
    if (op.completed) {
      required.push_back(op);
    } else if (op.kind == Kind::kWrite) {
      optional_writes.push_back(op);
    }
  }
  for (std::uint32_t mask = 0; mask < (1u << optional_writes.size()); ++mask) {
    std::vector<RegisterOperation> ops = required;
    for (std::size_t i = 0; i < optional_writes.size(); ++i) {
      if ((mask >> i) & 1u) ops.push_back(optional_writes[i]);
    }
    std::vector<std::size_t> order(ops.size());
    std::iota(order.begin(), order.end(), 0);
    do {
      bool ok = true;
      std::string value = initial;
      for (std::size_t i = 0; i < order.size() && ok; ++i) {
        const RegisterOperation& op = ops[order[i]];
        // Real time: nothing placed later may have completed before op was invoked.
        for (std::size_t j = i + 1; j < order.size() && ok; ++j) {
          const RegisterOperation& later = ops[order[j]];
          if (later.completed && *later.completed < op.invoked) ok = false;
        }
        if (op.kind == Kind::kWrite) {
          value = op.value;
        } else if (op.value != value) {
          ok = false;
        }
      }
      if (ok) return true;
    } while (std::next_permutation(order.begin(), order.end()));
  }
  return false;
}

// A random small history: each operation an interval over distinct event positions.
rc::Gen<std::vector<RegisterOperation>> small_history() {
  return rc::gen::exec([] {
    const auto n = *rc::gen::inRange<std::size_t>(0, 6);
    std::vector<std::uint64_t> positions(2 * n);
    std::iota(positions.begin(), positions.end(), 1);
    const auto shuffled = *rc::gen::container<std::vector<int>>(2 * n, rc::gen::arbitrary<int>());
    std::vector<std::size_t> idx(2 * n);
    std::iota(idx.begin(), idx.end(), 0);
    std::stable_sort(idx.begin(), idx.end(),
                     [&](std::size_t a, std::size_t b) { return shuffled[a] < shuffled[b]; });
    std::vector<RegisterOperation> history;
    for (std::size_t i = 0; i < n; ++i) {
      std::uint64_t a = positions[idx[2 * i]];
      std::uint64_t b = positions[idx[2 * i + 1]];
      if (a > b) std::swap(a, b);
      RegisterOperation op;
      op.kind = *rc::gen::element(Kind::kRead, Kind::kWrite);
      op.value = *rc::gen::element<std::string>("", "a", "b");
      op.client = static_cast<std::uint32_t>(i);
      op.invoked = a;
      if (*rc::gen::inRange(0, 5) != 0) op.completed = b;
      history.push_back(op);
    }
    return history;
  });
}

RC_GTEST_PROP(Linearizability, AgreesWithBruteForceOnSmallHistories, ()) {
  const auto history = *small_history();
  RC_ASSERT(check_register_history(history, "").linearizable == brute_force(history, ""));
}

RC_GTEST_PROP(Linearizability, EveryExecutionOfARealRegisterIsLinearizable, ()) {
  // Run a register for real: operation i takes effect at instant 10 * (i + 3), somewhere
  // inside its interval, which overlaps its neighbours'. The recorded history must pass.
  const auto n = *rc::gen::inRange<std::uint64_t>(0, 40);
  std::vector<RegisterOperation> history;
  std::string value;
  for (std::uint64_t i = 0; i < n; ++i) {
    const std::uint64_t effect = 10 * (i + 3);
    RegisterOperation op;
    op.client = static_cast<std::uint32_t>(i % 4);
    // Invocations at 3t, completions at 3t + 1: never the same position.
    op.invoked = 3 * (effect - *rc::gen::inRange<std::uint64_t>(0, 26));
    if (*rc::gen::arbitrary<bool>()) {
      op.kind = Kind::kWrite;
      op.value = "v" + std::to_string(i);
      value = op.value;
    } else {
      op.kind = Kind::kRead;
      op.value = value;
    }
    if (*rc::gen::inRange(0, 8) != 0) {
      op.completed = 3 * (effect + *rc::gen::inRange<std::uint64_t>(0, 26)) + 1;
    }
    history.push_back(op);
  }
  RC_ASSERT(check_register_history(history, "").linearizable);
}

}  // namespace
}  // namespace trellis::scenarios
