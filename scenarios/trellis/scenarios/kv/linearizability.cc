#include "trellis/scenarios/kv/linearizability.h"

#include <algorithm>
#include <limits>
#include <map>
#include <set>
#include <stdexcept>
#include <utility>

#include "trellis/base/assert.h"

namespace trellis::scenarios {
namespace {

constexpr std::uint64_t kNever = std::numeric_limits<std::uint64_t>::max();
constexpr std::size_t kExplainOpsMax = 40;

// One invocation or completion in the doubly linked list the search lifts operations out of
// (and puts them back into, in reverse order: "dancing links").
struct Entry {
  std::size_t op = 0;
  bool is_call = false;
  std::size_t match = 0;  // a call's completion entry
  std::size_t prev = 0;
  std::size_t next = 0;
};

class Search {
 public:
  Search(const std::vector<RegisterOperation>& history, const std::string& initial,
         std::size_t states_max)
      : history_(history), states_max_(states_max) {
    state_ = intern(initial);
    build_entries();
  }

  LinearizabilityResult run() {
    LinearizabilityResult result;
    std::vector<std::uint64_t> linearized((ops_.size() + 63) / 64, 0);
    std::vector<std::pair<std::size_t, std::uint32_t>> stack;  // (call entry, state before)
    std::set<std::pair<std::vector<std::uint64_t>, std::uint32_t>> seen;
    std::size_t entry = entries_[kHead].next;
    while (entries_[kHead].next != kEnd) {
      const Entry& e = entries_[entry];
      if (e.is_call) {
        const RegisterOperation& op = history_[ops_[e.op]];
        std::uint32_t next_state = state_;
        bool legal = true;
        if (op.kind == RegisterOperation::Kind::kWrite) {
          next_state = intern(op.value);
        } else {
          legal = intern(op.value) == state_;
        }
        if (legal) {
          linearized[e.op / 64] |= std::uint64_t{1} << (e.op % 64);
          if (seen.emplace(linearized, next_state).second) {
            if (seen.size() > states_max_) {
              throw std::length_error("linearizability check gave up after " +
                                      std::to_string(states_max_) + " states");
            }
            stack.emplace_back(entry, state_);
            state_ = next_state;
            lift(entry);
            entry = entries_[kHead].next;
            continue;
          }
          linearized[e.op / 64] &= ~(std::uint64_t{1} << (e.op % 64));
        }
        entry = e.next;
        continue;
      }
      // A completion: its operation must have taken effect before now, and did not.
      if (stack.size() >= best_prefix_.size()) {
        best_prefix_.clear();
        for (const auto& [call, state] : stack) best_prefix_.push_back(entries_[call].op);
        blocked_op_ = e.op;
        blocked_state_ = state_;
      }
      if (stack.empty()) {
        result.linearizable = false;
        break;
      }
      const auto [call, state] = stack.back();
      stack.pop_back();
      state_ = state;
      linearized[entries_[call].op / 64] &= ~(std::uint64_t{1} << (entries_[call].op % 64));
      unlift(call);
      entry = entries_[call].next;
    }
    result.states_explored = seen.size();
    if (!result.linearizable) result.explanation = explain();
    return result;
  }

 private:
  static constexpr std::size_t kHead = 0;
  static constexpr std::size_t kEnd = 1;

  std::uint32_t intern(const std::string& value) {
    auto [it, inserted] = values_.emplace(value, static_cast<std::uint32_t>(names_.size()));
    if (inserted) names_.push_back(value);
    return it->second;
  }

  void build_entries() {
    struct Event {
      std::uint64_t at;
      bool is_call;
      std::size_t op;
    };
    std::vector<Event> events;
    for (std::size_t i = 0; i < history_.size(); ++i) {
      const RegisterOperation& op = history_[i];
      if (op.completed && *op.completed <= op.invoked) {
        throw std::invalid_argument("malformed history: " + describe(op) +
                                    " completes before it is invoked");
      }
      // An indeterminate read constrains nothing.
      if (!op.completed && op.kind == RegisterOperation::Kind::kRead) continue;
      const std::size_t index = ops_.size();
      ops_.push_back(i);
      events.push_back({op.invoked, true, index});
      events.push_back({op.completed.value_or(kNever), false, index});
    }
    std::stable_sort(events.begin(), events.end(), [](const Event& a, const Event& b) {
      if (a.at != b.at) return a.at < b.at;
      return a.is_call && !b.is_call;  // only indeterminate completions tie (at kNever)
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
                      " operations exists (" + std::to_string(history_.size() - ops_.size()) +
                      " indeterminate reads ignored).";
    const std::size_t from = best_prefix_.size() > 5 ? best_prefix_.size() - 5 : 0;
    if (!best_prefix_.empty()) {
      out += " The longest order found takes " + std::to_string(best_prefix_.size()) +
             " operations, ending with:";
      for (std::size_t i = from; i < best_prefix_.size(); ++i) {
        out += "\n    " + describe(history_[ops_[best_prefix_[i]]]);
      }
      out += "\n  after which the register holds '" + names_[blocked_state_] + "'";
    } else {
      out += " The register holds '" + names_[blocked_state_] + "' initially";
    }
    const RegisterOperation& blocked = history_[ops_[blocked_op_]];
    out += ", and this operation cannot take effect before it completes:\n    " + describe(blocked);
    // The operations that overlap the end of that order and the blocked one.
    std::uint64_t window_start = blocked.invoked;
    for (std::size_t i = from; i < best_prefix_.size(); ++i) {
      window_start = std::min(window_start, history_[ops_[best_prefix_[i]]].invoked);
    }
    const std::uint64_t window_end = blocked.completed.value_or(kNever);
    std::vector<std::size_t> order;
    for (std::size_t i = 0; i < history_.size(); ++i) {
      const RegisterOperation& op = history_[i];
      if (op.invoked <= window_end && op.completed.value_or(kNever) >= window_start) {
        order.push_back(i);
      }
    }
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      return history_[a].invoked < history_[b].invoked;
    });
    out += "\n  Operations overlapping that window (" + std::to_string(order.size()) + " of " +
           std::to_string(history_.size()) + ", by invocation):";
    for (std::size_t i = 0; i < order.size() && i < kExplainOpsMax; ++i) {
      out += "\n    " + describe(history_[order[i]]);
    }
    if (order.size() > kExplainOpsMax) {
      out += "\n    ... " + std::to_string(order.size() - kExplainOpsMax) + " more";
    }
    return out;
  }

  const std::vector<RegisterOperation>& history_;
  const std::size_t states_max_;
  std::vector<std::size_t> ops_;  // history indices of the operations searched
  std::vector<Entry> entries_;    // [0] head, [1] end, then events in time order
  std::map<std::string, std::uint32_t> values_;
  std::vector<std::string> names_;
  std::uint32_t state_ = 0;
  std::vector<std::size_t> best_prefix_;
  std::size_t blocked_op_ = 0;
  std::uint32_t blocked_state_ = 0;
};

}  // namespace

LinearizabilityResult check_register_history(const std::vector<RegisterOperation>& history,
                                             const std::string& initial, std::size_t states_max) {
  return Search(history, initial, states_max).run();
}

std::string describe(const RegisterOperation& op) {
  // Built by appending: GCC 12 at -O3 reports a false -Wrestrict for "c" + string.
  std::string out = "c";
  out.append(std::to_string(op.client))
      .append(op.kind == RegisterOperation::Kind::kWrite ? " write '" : " read -> '")
      .append(op.value)
      .append("' [")
      .append(std::to_string(op.invoked))
      .append(", ")
      .append(op.completed ? std::to_string(*op.completed) + "]" : "never returned]");
  return out;
}

}  // namespace trellis::scenarios
