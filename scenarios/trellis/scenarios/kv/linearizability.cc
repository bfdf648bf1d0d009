#include "trellis/scenarios/kv/linearizability.h"

#include <stdexcept>
#include <string>
#include <vector>

#include "trellis/base/assert.h"
#include "trellis/check.h"

namespace trellis::scenarios {
namespace {

check::Operation to_check(const RegisterOperation& op) {
  check::Operation out;
  out.client = op.client;
  out.invoked = op.invoked;
  out.completed = op.completed;
  if (op.kind == RegisterOperation::Kind::kWrite) {
    out.kind = check::Operation::Kind::kWrite;
    out.value = op.value;
  } else {
    out.kind = check::Operation::Kind::kRead;
    out.output = op.value;
  }
  return out;
}

}  // namespace

LinearizabilityResult check_register_history(const std::vector<RegisterOperation>& history,
                                             const std::string& initial, std::size_t states_max) {
  std::vector<check::Operation> ops;
  ops.reserve(history.size());
  for (const RegisterOperation& op : history) ops.push_back(to_check(op));
  // Only the states bound, as before the checker moved to trellis::check: no step or byte
  // bound, so the scenario's verdicts are unchanged.
  const check::CheckOptions options{
      .steps_max = 0, .states_max = states_max, .memory_bytes_max = 0};
  const check::CheckResult r =
      check::check_linearizable(ops, check::RegisterModel(initial), options);
  if (r.verdict == check::Verdict::kUnknown) {
    throw std::length_error("linearizability check gave up after " + std::to_string(states_max) +
                            " states");
  }
  TRELLIS_ASSERT(r.keys.size() <= 1);
  LinearizabilityResult result;
  result.linearizable = r.verdict == check::Verdict::kLinearizable;
  result.explanation = r.explanation;
  result.states_explored = r.states;
  return result;
}

std::string describe(const RegisterOperation& op) {
  return check::describe(to_check(op));
}

}  // namespace trellis::scenarios
