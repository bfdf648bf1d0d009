#include "trellis/scenarios/scenario.h"

#include <algorithm>
#include <optional>
#include <stdexcept>
#include <string>

#include "trellis/scenarios/actor_tree/actor_tree_scenario.h"
#include "trellis/scenarios/bank/bank_scenario.h"
#include "trellis/scenarios/chat/chat_scenario.h"
#include "trellis/scenarios/kv/kv_scenario.h"
#include "trellis/scenarios/lease/lease_scenario.h"
#include "trellis/scenarios/pipeline/pipeline_scenario.h"
#include "trellis/scenarios/wal/wal_scenario.h"

namespace trellis::scenarios {

const std::vector<Scenario>& all_scenarios() {
  static const std::vector<Scenario> scenarios = [] {
    std::vector<Scenario> list = {actor_tree_scenario(), bank_scenario(),  chat_scenario(),
                                  kv_scenario(),         lease_scenario(), pipeline_scenario(),
                                  wal_scenario()};
    std::sort(list.begin(), list.end(),
              [](const Scenario& a, const Scenario& b) { return a.name < b.name; });
    return list;
  }();
  return scenarios;
}

const Scenario& find_scenario(const std::string& name) {
  std::string known;
  for (const Scenario& scenario : all_scenarios()) {
    if (scenario.name == name) return scenario;
    known += (known.empty() ? "" : ", ") + scenario.name;
  }
  throw std::invalid_argument("unknown scenario '" + name + "' (known: " + known + ")");
}

namespace {

constexpr const char* kSwitchValues = "on, off, true, false, 1 or 0";

// A switch's value, or nullopt if it is none of kSwitchValues.
std::optional<bool> parse_switch(const std::string& value) {
  if (value == "on" || value == "true" || value == "1") return true;
  if (value == "off" || value == "false" || value == "0") return false;
  return std::nullopt;
}

// Options documented as "off: ..." or "on: ..." (their default first) are switches.
bool is_switch(const std::string& help) {
  return help.rfind("off:", 0) == 0 || help.rfind("on:", 0) == 0;
}

}  // namespace

void check_options(const Scenario& scenario, const Options& options) {
  for (const auto& [key, value] : options) {
    const auto help = scenario.option_help.find(key);
    if (help == scenario.option_help.end()) {
      std::string known;
      for (const auto& [k, unused] : scenario.option_help) known += (known.empty() ? "" : ", ") + k;
      throw std::invalid_argument("scenario " + scenario.name + " has no option '" + key +
                                  "' (options: " + known + ")");
    }
    if (is_switch(help->second) && !parse_switch(value).has_value()) {
      throw std::invalid_argument("scenario " + scenario.name + ": option " + key + "='" + value +
                                  "' is not a switch value (" + kSwitchValues + ")");
    }
  }
}

bool option_on(const Options& options, const std::string& key) {
  auto it = options.find(key);
  if (it == options.end()) return false;
  const std::optional<bool> on = parse_switch(it->second);
  if (!on.has_value()) {
    throw std::invalid_argument("option " + key + "='" + it->second + "' is not a switch value (" +
                                kSwitchValues + ")");
  }
  return *on;
}

Options parse_options(const std::string& text) {
  Options options;
  std::size_t at = 0;
  while (at < text.size()) {
    std::size_t comma = text.find(',', at);
    if (comma == std::string::npos) comma = text.size();
    const std::string item = text.substr(at, comma - at);
    const std::size_t equals = item.find('=');
    if (equals == std::string::npos || equals == 0) {
      throw std::invalid_argument("options: expected key=value, got '" + item + "'");
    }
    options[item.substr(0, equals)] = item.substr(equals + 1);
    at = comma + 1;
  }
  return options;
}

sim::Config scenario_config(const Scenario& scenario, const Options& options, std::uint64_t seed,
                            sim::Config base) {
  base.seed = seed;
  if (scenario.configure) scenario.configure(base, options);
  return base;
}

sim::RunResult run_scenario(const Scenario& scenario, const Options& options,
                            const sim::Config& config) {
  return sim::run_simulation([&](sim::World& world) { scenario.simulate(world, options); }, config);
}

void check_serve_options(const std::string& what, const Options& options,
                         const std::map<std::string, std::string>& help) {
  for (const auto& [key, value] : options) {
    if (help.count(key) != 0) continue;
    std::string known;
    for (const auto& [name, text] : help) known += (known.empty() ? "" : ", ") + name;
    throw std::invalid_argument(what + ": unknown option '" + key + "' (options: " + known + ")");
  }
}

int integer_option(const std::string& what, const Options& options, const std::string& key,
                   int fallback, int low, int high) {
  const auto it = options.find(key);
  if (it == options.end()) return fallback;
  std::size_t used = 0;
  int value = low;
  try {
    value = std::stoi(it->second, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != it->second.size() || value < low || value > high) {
    throw std::invalid_argument(what + ": bad " + key + " '" + it->second + "'");
  }
  return value;
}

std::string string_option(const Options& options, const std::string& key,
                          const std::string& fallback) {
  const auto it = options.find(key);
  return it == options.end() ? fallback : it->second;
}

}  // namespace trellis::scenarios
