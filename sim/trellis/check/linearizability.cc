#include "trellis/check/linearizability.h"

#include <algorithm>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "trellis/base/assert.h"

namespace trellis::check {
namespace {

constexpr std::uint64_t kNever = std::numeric_limits<std::uint64_t>::max();
constexpr std::size_t kExplainOpsMax = 40;
constexpr std::size_t kExplainPrefixMax = 5;
// Search steps one key runs before the next key's turn.
constexpr std::size_t kSliceSteps = 10'000;

std::uint64_t mix(std::uint64_t x) {  // splitmix64's finalizer: a fixed, well-spread hash
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// The memo table of one key's search: the set of (linearized operations, state) pairs already
// explored (Lowe's memoization). Open addressing over a flat arena of bit sets; never iterated,
// so its order cannot leak into a verdict. A set's hash is the XOR of its members' hashes
// (Zobrist), kept up to date in O(1) as the search adds and removes one operation.
class MemoTable {
 public:
  explicit MemoTable(std::size_t words) : words_(words) { slots_.assign(kSlotsInitial, kEmpty); }

  // Inserts the pair; false when it was already there.
  bool insert(const std::vector<std::uint64_t>& set, std::uint64_t set_hash, std::uint32_t state) {
    TRELLIS_ASSERT(set.size() == words_);
    const std::uint64_t hash = set_hash ^ mix(state);
    std::size_t slot = hash & (slots_.size() - 1);
    for (; slots_[slot] != kEmpty; slot = (slot + 1) & (slots_.size() - 1)) {
      const std::uint32_t e = slots_[slot];
      if (hashes_[e] == hash && states_[e] == state &&
          std::equal(set.begin(), set.end(),
                     bits_.begin() + static_cast<std::ptrdiff_t>(e * words_))) {
        return false;
      }
    }
    TRELLIS_ASSERT(hashes_.size() < kEmpty);
    slots_[slot] = static_cast<std::uint32_t>(hashes_.size());
    hashes_.push_back(hash);
    states_.push_back(state);
    bits_.insert(bits_.end(), set.begin(), set.end());
    if (2 * hashes_.size() > slots_.size()) grow();
    return true;
  }

  std::size_t size() const { return hashes_.size(); }
  std::size_t bytes() const {
    return slots_.size() * sizeof(std::uint32_t) +
           size() * (sizeof(std::uint64_t) * (words_ + 1) + sizeof(std::uint32_t));
  }

 private:
  static constexpr std::uint32_t kEmpty = std::numeric_limits<std::uint32_t>::max();
  static constexpr std::size_t kSlotsInitial = 1024;  // a power of two

  void grow() {
    slots_.assign(slots_.size() * 2, kEmpty);
    for (std::uint32_t e = 0; e < hashes_.size(); ++e) {
      std::size_t slot = hashes_[e] & (slots_.size() - 1);
      while (slots_[slot] != kEmpty) slot = (slot + 1) & (slots_.size() - 1);
      slots_[slot] = e;
    }
  }

  const std::size_t words_;
  std::vector<std::uint32_t> slots_;  // Invariant: a power of two, at most half full
  std::vector<std::uint64_t> hashes_;
  std::vector<std::uint32_t> states_;
  std::vector<std::uint64_t> bits_;  // entry e's set at [e * words_, (e + 1) * words_)
};

// One invocation or completion in the doubly linked list the search lifts operations out of
// (and puts back, in reverse order: "dancing links").
struct Entry {
  std::size_t op = 0;
  bool is_call = false;
  std::size_t match = 0;  // a call's completion entry
  std::size_t prev = 0;
  std::size_t next = 0;
};

struct Budget {
  std::size_t steps_left;  // over the whole history
  const CheckOptions& options;
  std::size_t bytes_in_use = 0;  // the memo tables of the searches still running
};

// Wing & Gong's search over one key's sub-history, as Lowe and Porcupine run it: walk the
// events in time order; at an invocation, try to linearize that operation now (the model
// accepts it and the (set, state) pair is new), lift it out and restart from the front; at a
// completion, the operation completing there was not linearized in time, so backtrack.
class Search {
 public:
  Search(const std::vector<Operation>& history, std::vector<std::size_t> ops, const Model& model,
         std::size_t indeterminate_reads)
      : history_(history),
        ops_(std::move(ops)),
        model_(model),
        indeterminate_reads_(indeterminate_reads),
        memo_((ops_.size() + 63) / 64) {
    state_ = intern(model.initial_state());
    build_entries();
    op_hash_.reserve(ops_.size());
    for (std::size_t i = 0; i < ops_.size(); ++i) op_hash_.push_back(mix(i ^ 0x5eed0000ULL));
    linearized_.assign((ops_.size() + 63) / 64, 0);
    entry_ = entries_[kHead].next;
    result_.operations = ops_.size();
  }

  // Runs at most `slice` steps (and never past the budget). Returns true once the key's
  // verdict is known (result() and explanation() then hold it), false when the slice ran out
  // first: the search can be resumed where it stopped.
  bool advance(std::size_t slice, Budget& budget) {
    TRELLIS_ASSERT(!done_);
    for (; slice > 0; --slice) {
      if (entries_[kHead].next == kEnd) {
        TRELLIS_ASSERT(stack_.size() == ops_.size());
        return finish(Verdict::kLinearizable, {}, budget);
      }
      if (budget.steps_left == 0) {
        return finish(Verdict::kUnknown,
                      "gave up after " + std::to_string(budget.options.steps_max) +
                          " search steps (CheckOptions::steps_max)",
                      budget);
      }
      --budget.steps_left;
      ++result_.steps;
      const Entry& e = entries_[entry_];
      if (e.is_call) {
        const std::optional<std::string> next = model_.step(names_[state_], history_[ops_[e.op]]);
        if (next) {
          const std::uint32_t next_state = intern(*next);
          flip(e.op);
          if (memo_.insert(linearized_, set_hash_, next_state)) {
            if (const char* bound = over_memory(budget)) {
              return finish(Verdict::kUnknown, bound, budget);
            }
            stack_.emplace_back(entry_, state_);
            state_ = next_state;
            lift(entry_);
            entry_ = entries_[kHead].next;
            continue;
          }
          flip(e.op);
        }
        entry_ = e.next;
        continue;
      }
      // A completion: its operation must have taken effect before now, and did not.
      if (stack_.size() >= best_prefix_.size()) {
        best_prefix_.clear();
        for (const auto& [call, state] : stack_) best_prefix_.push_back(entries_[call].op);
        blocked_op_ = e.op;
        blocked_state_ = state_;
      }
      if (stack_.empty()) return finish(Verdict::kNotLinearizable, explain(), budget);
      const auto [call, state] = stack_.back();
      stack_.pop_back();
      state_ = state;
      flip(entries_[call].op);
      unlift(call);
      entry_ = entries_[call].next;
    }
    return false;
  }

  const KeyResult& result() const { return result_; }
  const std::string& explanation() const { return explanation_; }

 private:
  static constexpr std::size_t kHead = 0;
  static constexpr std::size_t kEnd = 1;

  bool finish(Verdict verdict, std::string explanation, Budget& budget) {
    done_ = true;
    TRELLIS_ASSERT(budget.bytes_in_use >= bytes_reported_);
    budget.bytes_in_use -= bytes_reported_;  // the caller frees this search next
    bytes_reported_ = 0;
    result_.verdict = verdict;
    result_.states = memo_.size();
    explanation_ = std::move(explanation);
    return true;
  }

  // Adds op to the linearized set, or removes it.
  void flip(std::size_t op) {
    linearized_[op / 64] ^= std::uint64_t{1} << (op % 64);
    set_hash_ ^= op_hash_[op];
  }

  const char* over_memory(Budget& budget) {
    const std::size_t bytes = memo_.bytes() + state_bytes_;
    TRELLIS_ASSERT(budget.bytes_in_use >= bytes_reported_);
    budget.bytes_in_use += bytes - bytes_reported_;
    bytes_reported_ = bytes;
    const CheckOptions& options = budget.options;
    if (options.states_max != 0 && memo_.size() > options.states_max) {
      return "gave up: the memo table of one key exceeded CheckOptions::states_max states";
    }
    if (options.memory_bytes_max != 0 && budget.bytes_in_use > options.memory_bytes_max) {
      return "gave up: the memo tables exceeded CheckOptions::memory_bytes_max bytes";
    }
    return nullptr;
  }

  std::uint32_t intern(const std::string& value) {
    auto [it, inserted] = values_.emplace(value, static_cast<std::uint32_t>(names_.size()));
    if (inserted) {
      names_.push_back(value);
      state_bytes_ += 2 * value.size() + 64;
    }
    return it->second;
  }

  void build_entries() {
    struct Event {
      std::uint64_t at;
      bool is_call;
      std::size_t op;
    };
    std::vector<Event> events;
    events.reserve(2 * ops_.size());
    for (std::size_t i = 0; i < ops_.size(); ++i) {
      const Operation& op = history_[ops_[i]];
      events.push_back({op.invoked, true, i});
      events.push_back({op.completed.value_or(kNever), false, i});
    }
    // Ties: invocations first, so operations whose intervals touch are concurrent.
    std::stable_sort(events.begin(), events.end(), [](const Event& a, const Event& b) {
      if (a.at != b.at) return a.at < b.at;
      return a.is_call && !b.is_call;
    });
    entries_.assign(2, Entry{});
    std::vector<std::size_t> call_of(ops_.size());
    std::size_t previous = kHead;
    for (const Event& event : events) {
      const std::size_t index = entries_.size();
      entries_.push_back({.op = event.op, .is_call = event.is_call, .prev = previous});
      entries_[previous].next = index;
      previous = index;
      if (event.is_call) {
        call_of[event.op] = index;
      } else {
        entries_[call_of[event.op]].match = index;
      }
    }
    entries_[previous].next = kEnd;
    entries_[kEnd].prev = previous;
    TRELLIS_ASSERT(entries_.size() == 2 + 2 * ops_.size());
  }

  void unlink(std::size_t i) {
    entries_[entries_[i].prev].next = entries_[i].next;
    entries_[entries_[i].next].prev = entries_[i].prev;
  }
  void relink(std::size_t i) {
    entries_[entries_[i].prev].next = i;
    entries_[entries_[i].next].prev = i;
  }
  void lift(std::size_t call) {
    unlink(call);
    unlink(entries_[call].match);
  }
  void unlift(std::size_t call) {
    relink(entries_[call].match);
    relink(call);
  }

  std::string explain() const {
    std::string out = "no linearization of the " + std::to_string(ops_.size()) +
                      " operations exists (" + std::to_string(indeterminate_reads_) +
                      " indeterminate reads ignored).";
    const std::size_t from =
        best_prefix_.size() > kExplainPrefixMax ? best_prefix_.size() - kExplainPrefixMax : 0;
    if (!best_prefix_.empty()) {
      out += " The longest order found takes " + std::to_string(best_prefix_.size()) +
             " operations, ending with:";
      for (std::size_t i = from; i < best_prefix_.size(); ++i) {
        out += "\n    " + describe(history_[ops_[best_prefix_[i]]]);
      }
      out += "\n  after which " + model_.describe_state(names_[blocked_state_]);
    } else {
      out += " Initially " + model_.describe_state(names_[blocked_state_]);
    }
    const Operation& blocked = history_[ops_[blocked_op_]];
    out += ", and this operation cannot take effect before it completes:\n    " + describe(blocked);
    // The operations that overlap the end of that order and the blocked one.
    std::uint64_t window_start = blocked.invoked;
    for (std::size_t i = from; i < best_prefix_.size(); ++i) {
      window_start = std::min(window_start, history_[ops_[best_prefix_[i]]].invoked);
    }
    const std::uint64_t window_end = blocked.completed.value_or(kNever);
    std::vector<std::size_t> order;
    for (std::size_t i : ops_) {
      const Operation& op = history_[i];
      if (op.invoked <= window_end && op.completed.value_or(kNever) >= window_start) {
        order.push_back(i);
      }
    }
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      return history_[a].invoked < history_[b].invoked;
    });
    out += "\n  Operations overlapping that window (" + std::to_string(order.size()) + " of " +
           std::to_string(ops_.size()) + ", by invocation):";
    for (std::size_t i = 0; i < order.size() && i < kExplainOpsMax; ++i) {
      out += "\n    " + describe(history_[order[i]]);
    }
    if (order.size() > kExplainOpsMax) {
      out += "\n    ... " + std::to_string(order.size() - kExplainOpsMax) + " more";
    }
    return out;
  }

  const std::vector<Operation>& history_;
  const std::vector<std::size_t> ops_;  // history indices of this key's searched operations
  const Model& model_;
  const std::size_t indeterminate_reads_;
  std::vector<Entry> entries_;  // [0] head, [1] end, then events in time order
  std::vector<std::uint64_t> op_hash_;
  MemoTable memo_;
  std::map<std::string, std::uint32_t> values_;  // interned states
  std::vector<std::string> names_;
  std::size_t state_bytes_ = 0;
  std::size_t bytes_reported_ = 0;  // this search's share of Budget::bytes_in_use
  std::uint32_t state_ = 0;
  std::vector<std::size_t> best_prefix_;
  std::size_t blocked_op_ = 0;
  std::uint32_t blocked_state_ = 0;
  // Where a resumable search stands. Invariant: linearized_ holds exactly the operations of
  // stack_'s calls, and set_hash_ is the XOR of their op_hash_.
  std::vector<std::uint64_t> linearized_;
  std::uint64_t set_hash_ = 0;
  std::vector<std::pair<std::size_t, std::uint32_t>> stack_;  // (call entry, state before)
  std::size_t entry_ = 0;
  bool done_ = false;
  KeyResult result_;
  std::string explanation_;
};

void validate(const std::vector<Operation>& history, const Model& model) {
  for (const Operation& op : history) {
    if (op.completed && *op.completed <= op.invoked) {
      throw std::invalid_argument("malformed history: " + describe(op) +
                                  " completes before it is invoked");
    }
    if (!model.supports(op.kind)) {
      throw std::invalid_argument("the " + std::string(model.name()) +
                                  " model does not define this operation: " + describe(op));
    }
  }
}

// P-compositionality: one sub-history per key, in key order.
struct Part {
  std::vector<std::size_t> ops;
  std::size_t indeterminate_reads = 0;
};

std::map<std::string, Part> partition_by_key(const std::vector<Operation>& history) {
  std::map<std::string, Part> parts;
  for (std::size_t i = 0; i < history.size(); ++i) {
    const Operation& op = history[i];
    Part& part = parts[op.key];
    // An indeterminate read constrains nothing: it may be linearized anywhere.
    if (!op.completed && op.kind == Operation::Kind::kRead) {
      ++part.indeterminate_reads;
    } else {
      part.ops.push_back(i);
    }
  }
  return parts;
}

}  // namespace

std::string_view to_string(Verdict verdict) {
  switch (verdict) {
    case Verdict::kLinearizable:
      return "linearizable";
    case Verdict::kNotLinearizable:
      return "not linearizable";
    case Verdict::kUnknown:
      return "unknown";
  }
  return "?";
}

CheckResult check_linearizable(const std::vector<Operation>& history, const Model& model,
                               const CheckOptions& options) {
  validate(history, model);
  std::map<std::string, Part> parts = partition_by_key(history);
  // The keys are searched round-robin, a slice of steps each, so that a key that fails fast
  // is found before a key whose search is long (Porcupine checks keys in parallel for the
  // same reason); the order is fixed by the code, so verdicts stay deterministic.
  Budget budget{
      options.steps_max == 0 ? std::numeric_limits<std::size_t>::max() : options.steps_max,
      options};
  std::vector<std::unique_ptr<Search>> searches;
  std::vector<std::string> keys;
  for (auto& [key, part] : parts) {
    searches.push_back(
        std::make_unique<Search>(history, std::move(part.ops), model, part.indeterminate_reads));
    keys.push_back(key);
  }
  std::vector<std::optional<KeyResult>> finished(searches.size());
  std::vector<std::string> explanations(searches.size());
  std::optional<std::size_t> unknown_key;
  std::optional<std::size_t> failed;
  std::size_t active = searches.size();
  while (active > 0 && !failed) {
    for (std::size_t i = 0; i < searches.size() && !failed; ++i) {
      if (!searches[i] || !searches[i]->advance(kSliceSteps, budget)) continue;
      KeyResult key_result = searches[i]->result();
      key_result.key = keys[i];
      if (key_result.verdict != Verdict::kLinearizable) {
        const std::string& why = searches[i]->explanation();
        const bool first_unknown = key_result.verdict == Verdict::kUnknown && !unknown_key;
        if (key_result.verdict == Verdict::kNotLinearizable) failed = i;
        if (first_unknown) unknown_key = i;
        if (failed == i || first_unknown) {
          explanations[i] = keys[i].empty() ? why : "key '" + keys[i] + "': " + why;
        }
      }
      finished[i] = std::move(key_result);
      searches[i].reset();  // frees its memo table
      --active;
    }
  }
  CheckResult result;
  for (std::size_t i = 0; i < finished.size(); ++i) {
    if (!finished[i]) continue;
    result.steps += finished[i]->steps;
    result.states += finished[i]->states;
    result.keys.push_back(std::move(*finished[i]));
  }
  const std::optional<std::size_t> decider = failed ? failed : unknown_key;
  if (decider) {
    result.verdict = failed ? Verdict::kNotLinearizable : Verdict::kUnknown;
    result.key = keys[*decider];
    result.explanation = explanations[*decider];
  }
  TRELLIS_ASSERT(result.keys.size() <= parts.size());
  return result;
}

SequentialResult check_sequential(const std::vector<Operation>& history, const Model& model) {
  validate(history, model);
  std::map<std::string, std::string> states;  // by key
  for (std::size_t i = 0; i < history.size(); ++i) {
    const Operation& op = history[i];
    auto it = states.find(op.key);
    if (it == states.end()) it = states.emplace(op.key, model.initial_state()).first;
    std::optional<std::string> next = model.step(it->second, op);
    if (!next) {
      SequentialResult result;
      result.legal = false;
      result.first_illegal = i;
      result.explanation = "operation " + std::to_string(i) +
                           " cannot take effect: " + describe(op) + "\n  before it " +
                           model.describe_state(it->second);
      return result;
    }
    it->second = std::move(*next);
  }
  return {};
}

}  // namespace trellis::check
