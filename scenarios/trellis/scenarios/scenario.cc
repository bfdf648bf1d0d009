#include "trellis/scenarios/scenario.h"

#include <algorithm>

#include "trellis/scenarios/kv/kv_scenario.h"
#include "trellis/scenarios/wal/wal_scenario.h"

namespace trellis::scenarios {

const std::vector<Scenario>& all_scenarios() {
  static const std::vector<Scenario> scenarios = [] {
    std::vector<Scenario> list = {kv_scenario(), wal_scenario()};
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

void check_options(const Scenario& scenario, const Options& options) {
  for (const auto& [key, value] : options) {
    if (!scenario.option_help.contains(key)) {
      std::string known;
      for (const auto& [k, help] : scenario.option_help) known += (known.empty() ? "" : ", ") + k;
      throw std::invalid_argument("scenario " + scenario.name + " has no option '" + key +
                                  "' (options: " + known + ")");
    }
  }
}

bool option_on(const Options& options, const std::string& key) {
  auto it = options.find(key);
  return it != options.end() && (it->second == "on" || it->second == "true" || it->second == "1");
}

}  // namespace trellis::scenarios
