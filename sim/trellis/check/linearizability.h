// trellis/check/linearizability.h — is a concurrent history linearizable (Herlihy & Wing
// 1990) with respect to a sequential model? And a plain sequential-specification check.
//
//   std::vector<Operation> history = ...;        // recorded by a test, or a Jepsen log
//   CheckResult r = check_linearizable(history, KvAppendModel{});
//   if (r.verdict == Verdict::kNotLinearizable) fail(r.explanation);
//   if (r.verdict == Verdict::kUnknown) warn(r.explanation);   // a bound was hit
//
// The algorithm is Wing & Gong's search with Lowe's memoization of (operations linearized,
// model state) pairs, made P-compositional (Horn & Kroening 2015, as Porcupine does): the
// history is split by Operation::key and each key's sub-history is searched on its own, which
// is sound and complete because linearizability is local (Herlihy & Wing, Theorem 1). The
// search is exponential in the worst case, so it is bounded: `steps_max` bounds its time,
// `states_max` and `memory_bytes_max` the memo table. When a bound is hit the verdict is
// kUnknown — never a guess, never a hang. The bounds count steps and states, not wall-clock
// time, so a verdict is deterministic (same history, same options, same answer).
//
// Not a checkpoint; does not block; pure computation, safe to call from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "trellis/check/model.h"
#include "trellis/check/operation.h"

namespace trellis::check {

enum class Verdict { kLinearizable, kNotLinearizable, kUnknown };
std::string_view to_string(Verdict verdict);

struct CheckOptions {
  // Search steps over the whole history (each step tries one operation or backtracks once;
  // it costs O(operations of its key / 64) plus one model step). 0: unbounded.
  std::size_t steps_max = 200'000'000;
  // Memoized (linearized set, state) pairs of one key. 0: unbounded.
  std::size_t states_max = 20'000'000;
  // Estimated bytes of the memo tables (sets, states, index) of the keys being searched at
  // once. 0: unbounded.
  std::size_t memory_bytes_max = std::size_t{1} << 30;
};

struct KeyResult {
  std::string key;
  Verdict verdict = Verdict::kLinearizable;
  std::size_t operations = 0;  // searched (indeterminate reads constrain nothing and are dropped)
  std::size_t steps = 0;
  std::size_t states = 0;
};

struct CheckResult {
  // kNotLinearizable as soon as one key is not (definitive even if another key was cut by a
  // bound); else kUnknown if a bound cut some key; else kLinearizable.
  Verdict verdict = Verdict::kLinearizable;
  // kNotLinearizable: the key, the longest order the search found, the operation that cannot
  // take effect after it, and the operations overlapping them. kUnknown: the bound that was hit.
  std::string explanation;
  std::string key;  // the key that decided a kNotLinearizable or kUnknown verdict
  std::size_t steps = 0;
  std::size_t states = 0;
  // One entry per key whose search finished, in key order. Keys are searched round-robin, a
  // slice of steps at a time, and all stop once one key is found not linearizable: keys still
  // unfinished then are absent.
  std::vector<KeyResult> keys;

  bool linearizable() const { return verdict == Verdict::kLinearizable; }
};

// Throws std::invalid_argument for a malformed history (a completion at or before its
// invocation, an operation kind the model does not define).
CheckResult check_linearizable(const std::vector<Operation>& history, const Model& model,
                               const CheckOptions& options = {});

// A sequential-specification check: the operations took effect one at a time in the order
// given (a single client's log, a replayed write-ahead log); per key, is every one legal in
// the model from the initial state? Indeterminate operations are applied with their outcome
// unknown. Never kUnknown. Timing fields are ignored.
struct SequentialResult {
  bool legal = true;
  std::size_t first_illegal = 0;  // index into the history when !legal
  std::string explanation;        // the operation, its key's state before it
};
SequentialResult check_sequential(const std::vector<Operation>& history, const Model& model);

}  // namespace trellis::check
