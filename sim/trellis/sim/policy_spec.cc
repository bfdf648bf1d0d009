#include "trellis/sim/policy_spec.h"

#include <algorithm>
#include <charconv>
#include <limits>
#include <map>
#include <stdexcept>
#include <vector>

#include "trellis/base/assert.h"
#include "trellis/sim/fifo_policy.h"
#include "trellis/sim/step_policy.h"

namespace trellis::sim {
namespace {

[[noreturn]] void bad_spec(std::string_view text, const std::string& why) {
  throw std::invalid_argument("bad policy '" + std::string(text) + "': " + why +
                              " (accepted: " + std::string(kPolicySpecForms) + ")");
}

// "k=v,k=v" into a map; every key must be in `keys`.
std::map<std::string, std::string> parse_parameters(std::string_view text, std::string_view list,
                                                    const std::vector<std::string_view>& keys) {
  std::map<std::string, std::string> out;
  while (!list.empty()) {
    const std::size_t comma = list.find(',');
    const std::string_view item = list.substr(0, comma);
    list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
    const std::size_t eq = item.find('=');
    const std::string key(item.substr(0, eq));
    bool known = false;
    for (std::string_view k : keys) known |= k == key;
    if (eq == std::string_view::npos || !known) bad_spec(text, "unknown parameter '" + key + "'");
    if (!out.emplace(key, std::string(item.substr(eq + 1))).second) {
      bad_spec(text, "parameter '" + key + "' given twice");
    }
  }
  return out;
}

std::uint64_t parse_count(std::string_view text, const std::string& key, const std::string& value,
                          std::uint64_t min) {
  std::uint64_t parsed = 0;
  const auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), parsed);
  if (value.empty() || error != std::errc{} || end != value.data() + value.size() || parsed < min) {
    bad_spec(text, key + " must be an integer >= " + std::to_string(min) + ", got '" + value + "'");
  }
  return parsed;
}

}  // namespace

PolicySpec parse_policy_spec(std::string_view text) {
  const std::size_t colon = text.find(':');
  const std::string_view kind = text.substr(0, colon);
  const std::string_view list =
      colon == std::string_view::npos ? std::string_view{} : text.substr(colon + 1);
  if (colon != std::string_view::npos && list.empty()) bad_spec(text, "empty parameter list");
  PolicySpec spec;
  if (kind == "fifo" || kind == "random") {
    if (!list.empty()) bad_spec(text, std::string(kind) + " takes no parameters");
    spec.kind = kind == "fifo" ? PolicyKind::kFifo : PolicyKind::kRandom;
  } else if (kind == "pct") {
    spec.kind = PolicyKind::kPct;
    const auto p = parse_parameters(text, list, {"depth", "steps"});
    if (p.contains("depth")) {
      spec.pct_depth = static_cast<int>(parse_count(text, "depth", p.at("depth"), 1));
      if (spec.pct_depth > 1000) bad_spec(text, "depth must be <= 1000");
    }
    if (p.contains("steps")) spec.pct_steps_estimate = parse_count(text, "steps", p.at("steps"), 1);
  } else if (kind == "exhaustive") {
    spec.exhaustive = true;
    const auto p = parse_parameters(text, list, {"preemptions", "budget", "reduction"});
    if (p.contains("preemptions")) {
      const std::uint64_t bound = parse_count(text, "preemptions", p.at("preemptions"), 0);
      if (bound > 100) bad_spec(text, "preemptions must be <= 100");
      spec.exhaustive_options.preemption_bound = static_cast<int>(bound);
    }
    if (p.contains("budget")) {
      spec.exhaustive_options.schedules_max = parse_count(text, "budget", p.at("budget"), 1);
    }
    if (p.contains("reduction")) {
      const std::string& reduction = p.at("reduction");
      if (reduction == "dpor") {
        // With a bound given, the bounded reduction (explore.h); else DPOR without a bound.
        spec.exhaustive_options.reduction =
            p.contains("preemptions") ? Reduction::kBoundedDpor : Reduction::kDpor;
      } else if (reduction != "none") {
        bad_spec(text, "reduction must be none or dpor, got '" + reduction + "'");
      }
    }
  } else {
    bad_spec(text, "unknown policy '" + std::string(kind) + "'");
  }
  return spec;
}

void PolicySpec::apply(Config& config) const {
  if (exhaustive) return;
  config.policy = kind;
  config.pct_depth = pct_depth;
  config.pct_steps_estimate = pct_steps_estimate;
}

std::string PolicySpec::name() const {
  if (exhaustive && exhaustive_options.reduction == Reduction::kDpor) {
    // (No preemption bound under reduction: explore.h.)
    return "exhaustive:reduction=dpor,budget=" + std::to_string(exhaustive_options.schedules_max);
  }
  if (exhaustive) {
    return "exhaustive:preemptions=" + std::to_string(exhaustive_options.preemption_bound) +
           ",budget=" + std::to_string(exhaustive_options.schedules_max) +
           (exhaustive_options.reduction == Reduction::kBoundedDpor ? ",reduction=dpor" : "");
  }
  if (kind == PolicyKind::kPct) {
    return "pct:depth=" + std::to_string(pct_depth) +
           (pct_steps_estimate == 0 ? std::string()
                                    : ",steps=" + std::to_string(pct_steps_estimate));
  }
  return std::string(policy_name(kind));
}

std::uint64_t learn_pct_steps(const SimBody& body, const Config& config) {
  Config fifo = config;
  fifo.policy = PolicyKind::kFifo;
  fifo.policy_factory = nullptr;
  std::uint64_t steps = 0;
  {
    World world(fifo);
    try {
      body(world);
    } catch (...) {  // a failing run still has a length
    }
    auto* step = dynamic_cast<StepPolicy*>(&world.policy());
    TRELLIS_ASSERT(step != nullptr);
    steps = step->steps();
  }
  return std::max<std::uint64_t>(steps, 1);
}

std::uint64_t learn_pct_steps(const std::function<void()>& body) {
  FifoPolicy fifo;
  try {
    run_unit_with(body, fifo);
  } catch (...) {  // a failing run still has a length
  }
  TRELLIS_ASSERT(fifo.steps() <= std::numeric_limits<std::uint64_t>::max());
  return std::max<std::uint64_t>(fifo.steps(), 1);
}

}  // namespace trellis::sim
