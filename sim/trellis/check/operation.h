// trellis/check/operation.h — one operation of a concurrent history, as its client saw it:
// what it asked, what it was told, and when (invocation and completion, in one total order).
//
//   Operation op{.kind = Operation::Kind::kWrite, .key = "x", .value = "1",
//                .client = 3, .invoked = 10, .completed = 14};
//
// Histories come from a simulation run (a counter bumped at every invocation and completion)
// or from outside (Jepsen logs, converted by tests/check/convert_histories.py). Operation A
// precedes operation B in real time iff A.completed < B.invoked; operations whose intervals
// touch or overlap are concurrent.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace trellis::check {

struct Operation {
  enum class Kind : std::uint8_t {
    kRead,     // register / key-value get: `output` is the value read
    kWrite,    // register write / key-value put of `value`
    kCas,      // compare-and-set: if the value is `expected`, set `value`; `ok` says if it did
    kAppend,   // key-value append of `value` to the key's string
    kEnqueue,  // FIFO queue: append `value` at the tail
    kDequeue,  // FIFO queue: `ok` and `output` the head taken, or !ok when the queue was empty
  };
  Kind kind = Kind::kRead;
  // The object this operation acts on: a key of a map, one register, one queue. Objects are
  // independent, so the checker partitions the history by key (P-compositionality) and checks
  // each key's sub-history on its own. "" for a history of a single object.
  std::string key{};
  std::string value{};     // written, appended, enqueued; the new value of a cas
  std::string expected{};  // a cas's compared value
  std::string output{};    // the value a read returned, the item a dequeue returned
  bool ok = true;          // a cas that swapped; a dequeue that found an item
  std::uint32_t client = 0;
  // Positions in one total order of events. Invariant: invoked < *completed.
  std::uint64_t invoked = 0;
  // nullopt: indeterminate — the client never learned the outcome (timeout, broken
  // connection). The operation may have taken effect at any point after its invocation, or
  // never; its output is unknown and any output is accepted.
  std::optional<std::uint64_t> completed{};
};

// "c2 write 'c2-7' [14, 19]", "c1 cas 'a' -> 'b' ok [3, 9]" — for failure messages.
std::string describe(const Operation& op);

}  // namespace trellis::check
