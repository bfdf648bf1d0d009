// trellis/scenarios/kv/linearizability.h — checks that a concurrent history of reads and
// writes on one register could have happened in some sequential order that respects real
// time (linearizability, Herlihy & Wing 1990).
//
//   std::vector<RegisterOperation> history = ...;   // recorded by the test harness
//   LinearizabilityResult r = check_register_history(history, /*initial=*/"");
//   if (!r.linearizable) fail(r.explanation);
//
// The kv scenario's view of the general checker in <trellis/check.h> (check_linearizable
// with a RegisterModel): Wing & Gong's search with Lowe's memoisation. Linearizability is
// compositional, so a key-value store is checked key by key.
//
// An operation whose outcome the client never learned (it timed out or its connection
// broke) is "indeterminate": a write may have taken effect at any point after it was
// invoked, or never; a read tells nothing and is ignored.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace trellis::scenarios {

struct RegisterOperation {
  enum class Kind { kRead, kWrite };
  Kind kind = Kind::kRead;
  std::string value;  // the value written, or the value the read returned
  std::uint32_t client = 0;
  // Positions in one total order of events (e.g. a counter bumped at every invocation and
  // completion). Invariant: invoked < completed when completed is set.
  std::uint64_t invoked = 0;
  std::optional<std::uint64_t> completed;  // nullopt: indeterminate
};

struct LinearizabilityResult {
  bool linearizable = true;
  // When not linearizable: which operation could not be placed, and the history around it.
  std::string explanation;
  std::size_t states_explored = 0;
};

// Throws std::invalid_argument for a malformed history (completed <= invoked) and
// std::length_error when the search would explore more than `states_max` states.
LinearizabilityResult check_register_history(const std::vector<RegisterOperation>& history,
                                             const std::string& initial,
                                             std::size_t states_max = 2'000'000);

// "c2 write 'c2-7' [14, 19]" — for failure messages.
std::string describe(const RegisterOperation& op);

}  // namespace trellis::scenarios
