// trellis/scenarios/scenario.h — the registry of scenarios: real programs with a simulation
// harness (hosts, faults, invariants) that the `trellis` tool lists, runs, sweeps and
// replays.
//
// A scenario's production part uses only the runtime API; its simulate() sets up a World,
// injects faults from the world's seeded generator and throws InvariantViolation when a
// check fails. Options are strings ("planted_bug" -> "on"); each scenario documents its own.
#pragma once

#include <cstdio>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "trellis/sim/harness.h"
#include "trellis/sim/world.h"

namespace trellis::scenarios {

using Options = std::map<std::string, std::string>;

// A scenario's invariant does not hold; the message says which and with what evidence.
class InvariantViolation : public std::runtime_error {
 public:
  explicit InvariantViolation(const std::string& what)
      : std::runtime_error("invariant violated: " + what) {}
};

struct Scenario {
  std::string name;
  std::string description;
  // Options the scenario understands, with their default and meaning.
  std::map<std::string, std::string> option_help;
  // Adjusts the world's config (fault settings) before the World is built; may be empty.
  std::function<void(sim::Config& config, const Options& options)> configure;
  // Runs one simulated run in world (set up hosts, world.run(driver), check invariants).
  std::function<void(sim::World& world, const Options& options)> simulate;
  // The production program for real, if the scenario has one (`trellis serve NAME`): runs on
  // the epoll backend with real sockets and files until SIGINT, then returns 0. Writes one
  // line to `out` once it serves ("serving ... on HOST:PORT"). Its options are its own.
  std::function<int(const Options& options, std::FILE* out)> serve{};
  std::map<std::string, std::string> serve_option_help{};
};

// Every scenario, sorted by name.
const std::vector<Scenario>& all_scenarios();
// Throws std::invalid_argument listing the known names.
const Scenario& find_scenario(const std::string& name);
// Throws std::invalid_argument for an option the scenario does not know, and for a switch
// (an option documented "off: ..." or "on: ...") whose value is not a switch value.
void check_options(const Scenario& scenario, const Options& options);
// Whether switch `key` is on: on / true / 1, off / false / 0, absent = off. Throws
// std::invalid_argument for any other value (never a silent "off").
bool option_on(const Options& options, const std::string& key);
// "planted_bug=on,x=1" -> options ("" -> none). Throws std::invalid_argument for an item
// that is not key=value.
Options parse_options(const std::string& text);

// For Scenario::serve: throws std::invalid_argument ("<what>: unknown option 'x' (options:
// a, b)") for an option not in help.
void check_serve_options(const std::string& what, const Options& options,
                         const std::map<std::string, std::string>& help);
// A decimal integer option in [low, high]; `fallback` when absent. Throws
// std::invalid_argument ("<what>: bad <key> '<value>'") otherwise.
int integer_option(const std::string& what, const Options& options, const std::string& key,
                   int fallback, int low, int high);
// options[key], or fallback when absent.
std::string string_option(const Options& options, const std::string& key,
                          const std::string& fallback);

// The config one seed of a scenario runs with: `base` with that seed, then the scenario's
// configure(). What `trellis run`, sweeps, the fuzzer and the tests all use.
sim::Config scenario_config(const Scenario& scenario, const Options& options, std::uint64_t seed,
                            sim::Config base = {});
// One simulated run of a scenario under config (see sim::run_simulation).
sim::RunResult run_scenario(const Scenario& scenario, const Options& options,
                            const sim::Config& config);

}  // namespace trellis::scenarios
