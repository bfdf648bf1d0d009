// trellis_schedule_fuzzer — coverage-guided schedule and fault fuzzing of a scenario
// (libFuzzer, clang's -fsanitize=fuzzer). The input bytes are the run's seed, fault plan and
// decision stream (sim/fuzz_input.h); a run whose invariant fails writes a replay file and
// aborts, which libFuzzer records as a crash input.
//
//   TRELLIS_FUZZ_SCENARIO=kv TRELLIS_FUZZ_OPTIONS=planted_bug=on \
//     build/fuzz/tools/trellis_schedule_fuzzer -max_total_time=60 corpus/
//   # a crash input converts to a replay file by running it once:
//   build/fuzz/tools/trellis_schedule_fuzzer crash-1234abcd   # writes kv.fuzz.replay
//   trellis replay kv.fuzz.replay
//
// Environment: TRELLIS_FUZZ_SCENARIO (default kv), TRELLIS_FUZZ_OPTIONS (k=v,... as the
// trellis tool's --options), TRELLIS_FUZZ_REPLAY_DIR (default: the current directory).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include "trellis/scenarios/scenario.h"
#include "trellis/sim/fuzz_input.h"
#include "trellis/sim/harness.h"
#include "trellis/sim/replay_file.h"

namespace {

using namespace trellis;

struct Target {
  const scenarios::Scenario* scenario = nullptr;
  scenarios::Options options;
  std::string replay_dir = ".";
};

Target& target() {
  static Target t;
  return t;
}

std::string env_or(const char* name, const char* fallback) {
  const char* value = std::getenv(name);
  return value != nullptr ? value : fallback;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  try {
    Target& t = target();
    t.scenario = &scenarios::find_scenario(env_or("TRELLIS_FUZZ_SCENARIO", "kv"));
    t.options = scenarios::parse_options(env_or("TRELLIS_FUZZ_OPTIONS", ""));
    scenarios::check_options(*t.scenario, t.options);
    t.replay_dir = env_or("TRELLIS_FUZZ_REPLAY_DIR", ".");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "trellis_schedule_fuzzer: %s\n", e.what());
    std::exit(2);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const Target& t = target();
  const sim::FuzzInput input = sim::decode_fuzz_input({data, size});
  sim::Config config = scenarios::scenario_config(*t.scenario, t.options, input.seed);
  config.policy = sim::PolicyKind::kDecisions;
  config.decisions = input.decisions;
  // The scenario's own faults (its nemesis draws them from the seed) and the input's.
  config.fault_plan.faults.insert(config.fault_plan.faults.end(), input.fault_plan.faults.begin(),
                                  input.fault_plan.faults.end());
  const sim::RunResult r = scenarios::run_scenario(*t.scenario, t.options, config);
  if (!r.failed) return 0;
  sim::ReplayFile replay = r.replay(t.scenario->name, t.options);
  replay.decisions = r.config.decisions;
  const std::string path = t.replay_dir + "/" + t.scenario->name + ".fuzz.replay";
  sim::write_replay_file(path, replay);
  std::fprintf(stderr,
               "\ntrellis_schedule_fuzzer: %s failed (seed %llu, %zu decisions, %zu planned "
               "faults):\n  %.2000s\n  replay file: %s\n  replay it:   trellis replay %s\n",
               t.scenario->name.c_str(), static_cast<unsigned long long>(r.config.seed),
               r.config.decisions.size(), r.config.fault_plan.faults.size(), r.failure.c_str(),
               path.c_str(), path.c_str());
  std::abort();
}
