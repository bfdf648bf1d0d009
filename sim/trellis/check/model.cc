#include "trellis/check/model.h"

#include <cstddef>
#include <stdexcept>
#include <string>
#include <vector>

#include "trellis/base/assert.h"

namespace trellis::check {
namespace {

using Kind = Operation::Kind;

bool outcome_known(const Operation& op) {
  return op.completed.has_value();
}

// A queue's state: each item as "<length>:<bytes>", head first.
std::string encode_item(const std::string& item) {
  return std::to_string(item.size()) + ":" + item;
}

// The head item of a non-empty encoded queue, and where the rest starts.
std::pair<std::string, std::size_t> decode_head(const std::string& state, std::size_t from) {
  const std::size_t colon = state.find(':', from);
  TRELLIS_ASSERT(colon != std::string::npos);
  const std::size_t length = std::stoul(state.substr(from, colon - from));
  TRELLIS_ASSERT(colon + 1 + length <= state.size());
  return {state.substr(colon + 1, length), colon + 1 + length};
}

}  // namespace

std::string describe(const Operation& op) {
  // Built by appending: GCC 12 at -O3 reports a false -Wrestrict for "c" + string.
  std::string out = "c";
  out.append(std::to_string(op.client));
  if (!op.key.empty()) out.append(" [").append(op.key).append("]");
  const bool known = outcome_known(op);
  switch (op.kind) {
    case Kind::kRead:
      out.append(" read -> '").append(known ? op.output : "?").append("'");
      break;
    case Kind::kWrite:
      out.append(" write '").append(op.value).append("'");
      break;
    case Kind::kCas:
      out.append(" cas '").append(op.expected).append("' -> '").append(op.value).append("' ");
      out.append(!known ? "?" : op.ok ? "ok" : "failed");
      break;
    case Kind::kAppend:
      out.append(" append '").append(op.value).append("'");
      break;
    case Kind::kEnqueue:
      out.append(" enqueue '").append(op.value).append("'");
      break;
    case Kind::kDequeue:
      out.append(" dequeue -> ");
      out.append(!known ? "?" : op.ok ? "'" + op.output + "'" : "empty");
      break;
  }
  out.append(" [").append(std::to_string(op.invoked)).append(", ");
  out.append(op.completed ? std::to_string(*op.completed) + "]" : "never returned]");
  return out;
}

bool RegisterModel::supports(Kind kind) const {
  return kind == Kind::kRead || kind == Kind::kWrite;
}

std::optional<std::string> RegisterModel::step(const std::string& state,
                                               const Operation& op) const {
  TRELLIS_ASSERT(supports(op.kind) || op.kind == Kind::kCas || op.kind == Kind::kAppend);
  switch (op.kind) {
    case Kind::kRead:
      if (outcome_known(op) && op.output != state) return std::nullopt;
      return state;
    case Kind::kWrite:
      return op.value;
    default:
      TRELLIS_ASSERT(false);
      return std::nullopt;
  }
}

std::string RegisterModel::describe_state(const std::string& state) const {
  return "the register holds '" + state + "'";
}

bool CasRegisterModel::supports(Kind kind) const {
  return RegisterModel::supports(kind) || kind == Kind::kCas;
}

std::optional<std::string> CasRegisterModel::step(const std::string& state,
                                                  const Operation& op) const {
  if (op.kind != Kind::kCas) return RegisterModel::step(state, op);
  const bool swaps = state == op.expected;
  // Unknown outcome: it swapped iff the value matched; either is consistent with the client.
  if (outcome_known(op) && op.ok != swaps) return std::nullopt;
  return swaps ? op.value : state;
}

bool KvAppendModel::supports(Kind kind) const {
  return RegisterModel::supports(kind) || kind == Kind::kAppend;
}

std::optional<std::string> KvAppendModel::step(const std::string& state,
                                               const Operation& op) const {
  if (op.kind != Kind::kAppend) return RegisterModel::step(state, op);
  return state + op.value;
}

std::string KvAppendModel::describe_state(const std::string& state) const {
  return "the key holds '" + state + "'";
}

bool QueueModel::supports(Kind kind) const {
  return kind == Kind::kEnqueue || kind == Kind::kDequeue;
}

std::optional<std::string> QueueModel::step(const std::string& state, const Operation& op) const {
  TRELLIS_ASSERT(supports(op.kind));
  if (op.kind == Kind::kEnqueue) return state + encode_item(op.value);
  if (state.empty()) {
    // Empty: only a dequeue that reported empty (or whose outcome is unknown) fits.
    if (outcome_known(op) && op.ok) return std::nullopt;
    return state;
  }
  auto [head, rest] = decode_head(state, 0);
  if (outcome_known(op) && (!op.ok || op.output != head)) return std::nullopt;
  return state.substr(rest);
}

std::string QueueModel::describe_state(const std::string& state) const {
  std::string out = "the queue holds [";
  for (std::size_t at = 0; at < state.size();) {
    auto [item, next] = decode_head(state, at);
    if (at > 0) out += ", ";
    out += "'" + item + "'";
    TRELLIS_ASSERT(next > at);
    at = next;
  }
  return out + "]";
}

}  // namespace trellis::check
