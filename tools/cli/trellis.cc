// trellis — the simulator's command-line tool.
//
//   trellis list
//   trellis run SCENARIO --seed=S [--options=k=v,...] [--policy=P]
//       P: fifo | random | pct[:depth=D,steps=S] |
//          exhaustive[:preemptions=P,budget=N,reduction=none|dpor],
//       refined by --pct-depth, --pct-steps, --preemptions, --budget, --reduction; exhaustive
//       (run only) explores every schedule of the seed within the bound and reports how many
//       it ran; with --reduction=dpor, one schedule per Mazurkiewicz trace (no bound)
//   trellis sweep SCENARIO --seeds=N [--base_seed=B] [-j J] [--keep-going] [--replay_dir=D]
//                          [--junit=report.xml] [--shard=I/N | --shards=N]
//       --shard=I/N sweeps shard I of N (from 0) of the seeds: base + i for i = I (mod N);
//       without it GTEST_SHARD_INDEX/GTEST_TOTAL_SHARDS, then JOB_COMPLETION_INDEX with
//       --shards=N or TRELLIS_SHARDS name the shard (sim/trellis/sim/shard.h)
//   trellis sweep-merge REPORT...   the union of the shards' --junit reports
//   trellis replay FILE
//   trellis shrink FILE [--out=FILE] [--shrink_runs=N]
//   trellis check-determinism SCENARIO --seeds=N
//   trellis trace FILE [--format=chrome] [--out=trace.json]
//                                  Chrome Trace Event JSON (Perfetto, chrome://tracing)
//   trellis serve SCENARIO [--options=k=v,...]     (the real program, until SIGINT)
//   trellis serve chat --tls [--tls_cert=F --tls_key=F | --tls_ca_out=F]   (chat over TLS)
//
// Exit status: 0 all seeds passed (replay: the failure did not reproduce), 1 a seed failed
// (replay: it reproduced), 2 bad usage or input (unknown scenario, malformed replay file).
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "trellis/actor.h"
#include "trellis/scenarios/scenario.h"
#include "trellis/sim.h"

ABSL_FLAG(std::uint64_t, seed, 1, "seed for `run`");
ABSL_FLAG(std::uint64_t, seeds, 100, "number of seeds for `sweep` and `check-determinism`");
ABSL_FLAG(std::uint64_t, base_seed, 1, "first seed of a sweep");
ABSL_FLAG(int, j, 2, "worker processes for `sweep`");
ABSL_FLAG(bool, keep_going, false,
          "`sweep`: run every seed instead of stopping at the first failure");
ABSL_FLAG(std::string, options, "", "scenario options, comma-separated key=value (see `list`)");
ABSL_FLAG(std::string, policy, "random",
          "schedule policy: fifo | random | pct[:depth=D,steps=S] | "
          "exhaustive[:preemptions=P,budget=N,reduction=none|dpor] (exhaustive: `run` only)");
ABSL_FLAG(int, pct_depth, 0, "PCT depth (with --policy=pct; 0: from --policy, else 3)");
ABSL_FLAG(std::uint64_t, pct_steps, 0,
          "PCT steps estimate (with --policy=pct; 0: from --policy, else learned from the "
          "length of a FIFO run of the first seed)");
ABSL_FLAG(int, preemptions, -1, "exhaustive: preemption bound (-1: from --policy, else 2)");
ABSL_FLAG(std::string, reduction, "",
          "exhaustive: partial-order reduction, none | dpor (\"\": from --policy, else none); "
          "dpor assumes all shared state is Trellis objects or sim::Shared");
ABSL_FLAG(std::uint64_t, budget, 0,
          "exhaustive: at most this many schedules (0: from --policy, else 100000)");
ABSL_FLAG(std::string, replay_dir, ".", "where `sweep` writes the replay file of a failure");
ABSL_FLAG(std::string, junit, "",
          "`sweep`: also write a JUnit XML report (one test case per seed) to this file");
ABSL_FLAG(std::string, shard, "",
          "`sweep`: sweep only shard I/N of the seeds (I from 0): seeds base + i, i = I mod N. "
          "Without it: GTEST_SHARD_INDEX/GTEST_TOTAL_SHARDS, then JOB_COMPLETION_INDEX with "
          "--shards or TRELLIS_SHARDS; none: every seed");
ABSL_FLAG(std::string, shards, "",
          "`sweep`: the number of shards, with JOB_COMPLETION_INDEX (a Kubernetes Indexed Job); "
          "must agree with --shard or GTEST_TOTAL_SHARDS when those are given");
ABSL_FLAG(std::string, format, "chrome",
          "`trace`: output format; chrome = Chrome Trace Event JSON (Perfetto, chrome://tracing)");
ABSL_FLAG(std::size_t, shrink_runs, 400,
          "`sweep`, `run` and `shrink`: reruns a failure's shrinking may spend (faults, then "
          "non-default decisions)");
ABSL_FLAG(bool, tls, false,
          "`serve chat`: serve TLS (the option tls=on), with --tls_cert and --tls_key or else a "
          "certificate from a test CA generated at start-up");
ABSL_FLAG(std::string, tls_cert, "",
          "`serve chat --tls`: the server's certificate chain, a PEM file (the option cert=)");
ABSL_FLAG(std::string, tls_key, "",
          "`serve chat --tls`: the server's private key, a PEM file (the option key=)");
ABSL_FLAG(std::string, tls_ca_out, "",
          "`serve chat --tls` without --tls_cert: write the generated test CA's certificate "
          "(what clients trust) to this file instead of printing it (the option ca_out=)");
ABSL_FLAG(std::string, out, "",
          "`shrink`: output file (default: FILE.min); `trace`: FILE.trace.json");

namespace {

namespace sim = trellis::sim;
namespace scenarios = trellis::scenarios;

constexpr int kExitPassed = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

class UsageFailure : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Job {
  const scenarios::Scenario* scenario;
  scenarios::Options options;
  sim::Config base;
  sim::PolicySpec policy;
};

sim::SimBody body_of(const Job& job) {
  return [&job](sim::World& world) { job.scenario->simulate(world, job.options); };
}

sim::Config config_for(const Job& job, std::uint64_t seed) {
  return scenarios::scenario_config(*job.scenario, job.options, seed, job.base);
}

// --policy and the flags that refine it (--pct-depth, --pct-steps, --preemptions, --budget).
sim::PolicySpec policy_from_flags() {
  const std::string text = absl::GetFlag(FLAGS_policy);
  if (text == "decisions") {
    throw UsageFailure("--policy=decisions needs a replay file: use `trellis replay`");
  }
  sim::PolicySpec spec = sim::parse_policy_spec(text);
  if (absl::GetFlag(FLAGS_pct_depth) != 0) spec.pct_depth = absl::GetFlag(FLAGS_pct_depth);
  if (absl::GetFlag(FLAGS_pct_steps) != 0) spec.pct_steps_estimate = absl::GetFlag(FLAGS_pct_steps);
  if (absl::GetFlag(FLAGS_preemptions) >= 0) {
    spec.exhaustive_options.preemption_bound = absl::GetFlag(FLAGS_preemptions);
    if (spec.exhaustive_options.reduction == sim::Reduction::kDpor) {
      spec.exhaustive_options.reduction = sim::Reduction::kBoundedDpor;  // a bound: honour it
    }
  }
  if (absl::GetFlag(FLAGS_budget) != 0) {
    spec.exhaustive_options.schedules_max = absl::GetFlag(FLAGS_budget);
  }
  if (const std::string reduction = absl::GetFlag(FLAGS_reduction); !reduction.empty()) {
    if (reduction == "dpor") {
      // A bound given (flag or --policy): the bounded reduction (sim/explore.h).
      const bool bounded = absl::GetFlag(FLAGS_preemptions) >= 0 ||
                           absl::GetFlag(FLAGS_policy).find("preemptions=") != std::string::npos;
      spec.exhaustive_options.reduction =
          bounded ? sim::Reduction::kBoundedDpor : sim::Reduction::kDpor;
    } else if (reduction == "none") {
      spec.exhaustive_options.reduction = sim::Reduction::kNone;
    } else {
      throw UsageFailure("--reduction must be none or dpor, got '" + reduction + "'");
    }
  }
  if (spec.pct_depth < 1 || spec.exhaustive_options.preemption_bound > 100) {
    throw UsageFailure("--pct-depth must be >= 1 and --preemptions <= 100");
  }
  return spec;
}

// The job of a scenario; PCT's steps estimate, when not given, learned from `first_seed`.
Job make_job(const std::string& name, std::uint64_t first_seed) {
  Job job;
  try {
    job.scenario = &scenarios::find_scenario(name);
    job.options = scenarios::parse_options(absl::GetFlag(FLAGS_options));
    scenarios::check_options(*job.scenario, job.options);
    job.policy = policy_from_flags();
  } catch (const std::invalid_argument& e) {
    throw UsageFailure(e.what());
  }
  job.policy.apply(job.base);
  if (!job.policy.exhaustive && job.base.policy == sim::PolicyKind::kPct &&
      job.base.pct_steps_estimate == 0) {
    job.base.pct_steps_estimate = sim::learn_pct_steps(body_of(job), config_for(job, first_seed));
    job.policy.pct_steps_estimate = job.base.pct_steps_estimate;
    std::printf("pct: steps estimate %llu, learned from a FIFO run of seed %llu\n",
                static_cast<unsigned long long>(job.base.pct_steps_estimate),
                static_cast<unsigned long long>(first_seed));
  }
  return job;
}

std::string format_duration(double seconds) {
  char buffer[32];
  if (seconds < 60) {
    std::snprintf(buffer, sizeof buffer, "%.0fs", seconds);
  } else {
    std::snprintf(buffer, sizeof buffer, "%.0fm%02.0fs", seconds / 60,
                  static_cast<double>(static_cast<long>(seconds) % 60));
  }
  return buffer;
}

void print_result(const sim::RunResult& r) {
  std::printf("seed %llu: %s  (%llu trace events, hash %016llx, %.3f s virtual, %zu decisions)\n",
              static_cast<unsigned long long>(r.config.seed), r.failed ? "FAILED" : "passed",
              static_cast<unsigned long long>(r.trace_events),
              static_cast<unsigned long long>(r.trace_hash),
              std::chrono::duration<double>(r.virtual_time).count(), r.decisions.size());
  if (r.failed) std::printf("  %s\n", r.failure.c_str());
}

// What shrinking did, for the failure output: decisions (length and non-default), faults,
// reruns, and the remaining faults as one paragraph.
void print_shrink_summary(const sim::ShrinkResult& minimal) {
  std::printf(
      "  %zu schedule decisions (%zu non-default) and %zu faults shrunk to %zu decisions (%zu "
      "non-default decisions) and %zu faults in %zu reruns\n",
      minimal.decisions_before, minimal.non_default_before, minimal.faults_before,
      minimal.run.decisions.size(), minimal.non_default_after(), minimal.faults_after(),
      minimal.runs);
  std::printf("  faults: %s\n  failure: %s\n", minimal.run.fault_summary().c_str(),
              minimal.run.failure.c_str());
}

// Shrinks a failing run, writes its replay file and prints how to replay it; returns its path.
std::string report_failure(const Job& job, const sim::RunResult& failing, const std::string& dir) {
  std::printf("\nseed %llu failed: %s\nshrinking the schedule and the faults...\n",
              static_cast<unsigned long long>(failing.config.seed), failing.failure.c_str());
  std::fflush(stdout);
  const sim::ShrinkResult minimal =
      sim::shrink(body_of(job), failing, {}, {.runs_max = absl::GetFlag(FLAGS_shrink_runs)});
  const std::string path =
      dir + "/" + job.scenario->name + ".seed" + std::to_string(failing.config.seed) + ".replay";
  sim::write_replay_file(path, minimal.run.replay(job.scenario->name, job.options));
  print_shrink_summary(minimal);
  std::printf("  replay file: %s\n  replay it:   trellis replay %s\n", path.c_str(), path.c_str());
  return path;
}

int command_list() {
  for (const scenarios::Scenario& s : scenarios::all_scenarios()) {
    std::printf("%s\n  %s\n", s.name.c_str(), s.description.c_str());
    for (const auto& [key, help] : s.option_help) {
      std::printf("  --options=%s=...  %s\n", key.c_str(), help.c_str());
    }
    if (s.serve) {
      std::printf("  real mode: trellis serve %s", s.name.c_str());
      const char* separator = " --options=";
      for (const auto& [key, help] : s.serve_option_help) {
        std::printf("%s%s=...", separator, key.c_str());
        separator = ",";
      }
      std::printf("\n");
    }
  }
  return kExitPassed;
}

// The scenario's production program for real, until SIGINT (exit 0).
int command_serve(const std::string& name) {
  const scenarios::Scenario* scenario = nullptr;
  try {
    scenario = &scenarios::find_scenario(name);
  } catch (const std::invalid_argument& e) {
    throw UsageFailure(e.what());
  }
  if (!scenario->serve) {
    throw UsageFailure("scenario '" + name + "' has no real-mode server");
  }
  scenarios::Options options;
  try {
    options = scenarios::parse_options(absl::GetFlag(FLAGS_options));
  } catch (const std::invalid_argument& e) {
    throw UsageFailure(e.what());
  }
  // The TLS flags are spellings of the options tls, cert, key and ca_out (a scenario that
  // has no such option refuses them as it refuses --options=tls=on).
  if (absl::GetFlag(FLAGS_tls)) options["tls"] = "on";
  const std::pair<const char*, std::string> tls_files[] = {
      {"cert", absl::GetFlag(FLAGS_tls_cert)},
      {"key", absl::GetFlag(FLAGS_tls_key)},
      {"ca_out", absl::GetFlag(FLAGS_tls_ca_out)}};
  for (const auto& [key, value] : tls_files) {
    if (!value.empty()) options[key] = value;
  }
  try {
    return scenario->serve(options, stdout);
  } catch (const std::invalid_argument& e) {
    throw UsageFailure(e.what());
  }
}

// `run --policy=exhaustive`: every schedule of one seed within the preemption bound.
int command_explore(const Job& job, std::uint64_t seed) {
  const sim::ExhaustiveOptions& options = job.policy.exhaustive_options;
  if (options.reduction == sim::Reduction::kDpor) {
    std::printf("exploring %s seed %llu: one schedule per Mazurkiewicz trace (DPOR), budget %zu\n",
                job.scenario->name.c_str(), static_cast<unsigned long long>(seed),
                options.schedules_max);
  } else {
    std::printf("exploring %s seed %llu: every schedule with <= %d preemptions%s, budget %zu\n",
                job.scenario->name.c_str(), static_cast<unsigned long long>(seed),
                options.preemption_bound,
                options.reduction == sim::Reduction::kBoundedDpor
                    ? " (bounded reduction: one per trace and context)"
                    : "",
                options.schedules_max);
  }
  std::fflush(stdout);
  const auto start = std::chrono::steady_clock::now();
  const sim::ExhaustiveResult r =
      sim::explore_simulation(body_of(job), config_for(job, seed), options);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("%s (%.1f s, %.0f schedules/s)\n", sim::describe(r, options).c_str(), seconds,
              seconds > 0 ? static_cast<double>(r.schedules) / seconds : 0.0);
  if (!r.failure.has_value()) return kExitPassed;
  print_result(*r.failure);
  report_failure(job, *r.failure, absl::GetFlag(FLAGS_replay_dir));
  return kExitFailed;
}

int command_run(const std::string& name) {
  const Job job = make_job(name, absl::GetFlag(FLAGS_seed));
  if (job.policy.exhaustive) return command_explore(job, absl::GetFlag(FLAGS_seed));
  const sim::RunResult r =
      sim::run_simulation(body_of(job), config_for(job, absl::GetFlag(FLAGS_seed)));
  print_result(r);
  if (r.failed) report_failure(job, r, absl::GetFlag(FLAGS_replay_dir));
  return r.failed ? kExitFailed : kExitPassed;
}

// One seed's outcome as a sweep worker reports it: "SEED P|F MICROSECONDS MESSAGE\n" (the
// message on one line, short enough that the line stays one atomic pipe write).
struct SeedOutcome {
  std::uint64_t seed = 0;
  bool failed = false;
  std::uint64_t micros = 0;
  std::string message;
};

constexpr std::size_t kOutcomeMessageMax = 1000;

std::string format_outcome(std::uint64_t seed, const sim::RunResult& r, double seconds) {
  std::string message = r.failure.substr(0, kOutcomeMessageMax);
  std::replace(message.begin(), message.end(), '\n', ' ');
  return std::to_string(seed) + (r.failed ? " F " : " P ") +
         std::to_string(static_cast<std::uint64_t>(seconds * 1e6)) + " " + message + "\n";
}

SeedOutcome parse_outcome(const std::string& line) {
  SeedOutcome outcome;
  char* end = nullptr;
  outcome.seed = std::strtoull(line.c_str(), &end, 10);
  outcome.failed = end != nullptr && end[0] == ' ' && end[1] == 'F';
  if (end != nullptr && end[0] != '\0' && end[1] != '\0') {
    char* after = nullptr;
    outcome.micros = std::strtoull(end + 2, &after, 10);
    if (after != nullptr && *after == ' ') outcome.message = after + 1;
  }
  return outcome;
}

// Worker process: runs the seeds of `seeds` and writes one line per seed to fd.
[[noreturn]] void sweep_worker(const Job& job, const sim::SeedSlice& seeds, int fd) {
  for (std::uint64_t i = 0; i < seeds.count; ++i) {
    const std::uint64_t seed = seeds.at(i);
    const auto start = std::chrono::steady_clock::now();
    const sim::RunResult r = sim::run_simulation(body_of(job), config_for(job, seed));
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const std::string line = format_outcome(seed, r, seconds);
    if (::write(fd, line.data(), line.size()) < 0) ::_exit(3);
  }
  ::_exit(0);
}

// What a sweep has heard from its workers so far.
struct SweepTally {
  std::uint64_t done = 0;
  std::vector<std::uint64_t> failures;
  std::vector<SeedOutcome> outcomes;  // kept for --junit
  std::set<std::uint64_t> reported;   // seeds whose outcome arrived
  bool stopped = false;               // a failure without --keep_going: workers are stopped
};

// What `sweep` sweeps: the scenario's job and this shard's seeds.
struct SweepPlan {
  std::string name;
  sim::Shard shard;
  sim::SeedSlice seeds;     // this shard's
  std::uint64_t count = 0;  // --seeds, every shard together
  std::uint64_t base = 1;
};

// The JUnit report of a sweep (sim/trellis/sim/sweep_report.h): one test case per seed run,
// in seed order; `replay` is the first failure's replay file.
void write_junit(const std::string& path, const SweepPlan& plan, const std::string& policy,
                 std::vector<SeedOutcome> outcomes, double seconds, bool complete,
                 const std::string& replay) {
  std::sort(outcomes.begin(), outcomes.end(),
            [](const SeedOutcome& a, const SeedOutcome& b) { return a.seed < b.seed; });
  sim::SweepReport report;
  report.scenario = plan.name;
  report.options = sim::sweep_report_text(absl::GetFlag(FLAGS_options));
  report.policy = sim::sweep_report_text(policy);
  report.base_seed = plan.base;
  report.seeds = plan.count;
  report.shard = plan.shard;
  report.complete = complete;
  report.micros = static_cast<std::uint64_t>(seconds * 1e6);
  report.replay = sim::sweep_report_text(replay, std::string::npos);
  for (const SeedOutcome& o : outcomes) {
    std::string message = o.failed ? sim::sweep_report_text(o.message) : std::string();
    if (o.failed && message.empty()) message = "failed";
    report.cases.push_back({o.seed, o.micros, o.failed, std::move(message)});
  }
  sim::write_sweep_report(path, report);
  std::printf("JUnit report: %s\n", path.c_str());
}

// Forks `workers` processes that run the shard's seeds (worker w: seeds.shard(w, workers)) and
// write one outcome line per seed to `write_fd`.
std::vector<pid_t> start_sweep_workers(const Job& job, const sim::SeedSlice& seeds, int workers,
                                       int read_fd, int write_fd) {
  std::vector<pid_t> children;
  for (int w = 0; w < workers; ++w) {
    const sim::SeedSlice mine =
        seeds.shard(static_cast<std::uint64_t>(w), static_cast<std::uint64_t>(workers));
    const pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error("fork failed");
    if (pid == 0) {
      ::close(read_fd);
      sweep_worker(job, mine, write_fd);
    }
    children.push_back(pid);
  }
  return children;
}

// The sweep's progress. On a terminal one line redrawn in place at most every 200 ms; on a
// pipe or a CI log a plain line every 5 s, so the log stays readable. Times the host process
// (the tidy test allows tools/ to read the steady clock), never a run.
class SweepProgress {
 public:
  explicit SweepProgress(std::uint64_t count)
      : count_(count), terminal_(::isatty(STDOUT_FILENO) == 1) {}

  void show(const SweepTally& tally, bool force) {
    const auto now = std::chrono::steady_clock::now();
    const auto every = terminal_ ? std::chrono::milliseconds(200) : std::chrono::seconds(5);
    if (!force && now - last_ < every) return;
    last_ = now;
    const double elapsed = seconds();
    const double rate = elapsed > 0 ? static_cast<double>(tally.done) / elapsed : 0;
    const double eta = rate > 0 ? static_cast<double>(count_ - tally.done) / rate : 0;
    std::printf("%s  %llu/%llu seeds  %.0f seeds/s  %zu failed  ETA %s%s", terminal_ ? "\r" : "",
                static_cast<unsigned long long>(tally.done),
                static_cast<unsigned long long>(count_), rate, tally.failures.size(),
                format_duration(eta).c_str(), terminal_ ? "   " : "\n");
    std::fflush(stdout);
  }

  // Ends the progress display: a terminal's line is still open.
  void finish() const {
    if (terminal_) std::printf("\n");
  }

  double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

 private:
  const std::uint64_t count_;
  const bool terminal_;
  const std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point last_ = start_ - std::chrono::hours(1);
};

// Reads outcome lines from the workers until they all close the pipe, or until the first
// failure unless keep_going.
void collect_outcomes(int read_fd, bool keep_going, bool keep_outcomes, SweepTally& tally,
                      SweepProgress& progress) {
  std::string pending;
  char buffer[4096];
  while (!tally.stopped) {
    const ssize_t n = ::read(read_fd, buffer, sizeof buffer);
    if (n <= 0) break;
    pending.append(buffer, static_cast<std::size_t>(n));
    std::size_t eol;
    while ((eol = pending.find('\n')) != std::string::npos) {
      const std::string line = pending.substr(0, eol);
      pending.erase(0, eol + 1);
      ++tally.done;
      SeedOutcome outcome = parse_outcome(line);
      tally.reported.insert(outcome.seed);
      if (outcome.failed) {
        tally.failures.push_back(outcome.seed);
        if (!keep_going) tally.stopped = true;
      }
      if (keep_outcomes) tally.outcomes.push_back(std::move(outcome));
    }
    progress.show(tally, false);
  }
}

// Waits for every worker. A worker that died (an assertion, a crash in the scenario) leaves
// seeds unreported: the first of them is where it died. Says so; returns those seeds.
std::vector<std::uint64_t> reap_sweep_workers(const Job& job, const SweepPlan& plan,
                                              const std::vector<pid_t>& children,
                                              const SweepTally& tally) {
  std::vector<std::uint64_t> died_at;
  for (std::size_t w = 0; w < children.size(); ++w) {
    int status = 0;
    ::waitpid(children[w], &status, 0);
    if (tally.stopped) continue;  // we stopped them
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) continue;
    const sim::SeedSlice mine = plan.seeds.shard(w, children.size());
    for (std::uint64_t i = 0; i < mine.count; ++i) {
      const std::uint64_t seed = mine.at(i);
      if (tally.reported.count(seed) != 0) continue;
      const std::string how =
          WIFSIGNALED(status) ? std::string("killed by signal ") + std::to_string(WTERMSIG(status))
                              : "exit status " + std::to_string(WEXITSTATUS(status));
      std::printf(
          "\n  worker %zu died (%s) running seed %llu: rerun it with\n    trellis run %s "
          "--seed=%llu%s\n",
          w, how.c_str(), static_cast<unsigned long long>(seed), plan.name.c_str(),
          static_cast<unsigned long long>(seed),
          job.options.empty() ? "" : (" --options=" + absl::GetFlag(FLAGS_options)).c_str());
      died_at.push_back(seed);
      break;
    }
  }
  return died_at;
}

// Reruns the first failing seed here (deterministic: it fails again), shrinks and reports it.
// Returns its replay file ("" if the rerun passed: nondeterminism, reported).
std::string rerun_first_failure(const Job& job, std::vector<std::uint64_t> failures) {
  std::sort(failures.begin(), failures.end());
  const sim::RunResult again = sim::run_simulation(body_of(job), config_for(job, failures.front()));
  if (!again.failed) {
    std::printf("seed %llu failed in its worker but passed when rerun: nondeterminism!\n",
                static_cast<unsigned long long>(failures.front()));
    return {};
  }
  return report_failure(job, again, absl::GetFlag(FLAGS_replay_dir));
}

// The shard this process sweeps (--shard, the environment; sim/trellis/sim/shard.h).
SweepPlan plan_sweep(const std::string& name) {
  SweepPlan plan;
  plan.name = name;
  plan.count = absl::GetFlag(FLAGS_seeds);
  plan.base = absl::GetFlag(FLAGS_base_seed);
  if (plan.count == 0) throw UsageFailure("--seeds must be at least 1");
  try {
    plan.shard = sim::resolve_shard(sim::ShardInputs::from_environment(
        absl::GetFlag(FLAGS_shard), absl::GetFlag(FLAGS_shards)));
    plan.seeds =
        sim::SeedSlice::range(plan.base, plan.count).shard(plan.shard.index, plan.shard.total);
  } catch (const sim::ShardError& e) {
    throw UsageFailure(e.what());
  }
  return plan;
}

void print_sweep_header(const Job& job, const SweepPlan& plan, int workers) {
  std::string shard;
  if (plan.shard.total > 1) {
    shard = ", shard " + plan.shard.name() + " (" + std::to_string(plan.seeds.count) + " seeds";
    if (plan.seeds.count > 0) shard += ": " + std::to_string(plan.seeds.first);
    if (plan.seeds.count > 1) shard += ", " + std::to_string(plan.seeds.at(1)) + ", ...";
    shard += ")";
  }
  std::printf("sweep %s: seeds %llu..%llu%s, %d workers, policy %s%s\n", plan.name.c_str(),
              static_cast<unsigned long long>(plan.base),
              static_cast<unsigned long long>(plan.base + plan.count - 1), shard.c_str(), workers,
              job.policy.name().c_str(),
              job.options.empty() ? "" : (", options " + absl::GetFlag(FLAGS_options)).c_str());
  std::fflush(stdout);
}

// Runs the shard's seeds in `workers` processes; the tally of what they reported.
SweepTally run_sweep_workers(const Job& job, const SweepPlan& plan, int workers,
                             SweepProgress& progress, std::vector<std::uint64_t>& died_at) {
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
  const std::vector<pid_t> children =
      start_sweep_workers(job, plan.seeds, workers, pipe_fds[0], pipe_fds[1]);
  ::close(pipe_fds[1]);
  SweepTally tally;
  collect_outcomes(pipe_fds[0], absl::GetFlag(FLAGS_keep_going),
                   !absl::GetFlag(FLAGS_junit).empty(), tally, progress);
  if (tally.stopped) {
    for (pid_t pid : children) ::kill(pid, SIGTERM);
  }
  ::close(pipe_fds[0]);
  died_at = reap_sweep_workers(job, plan, children, tally);
  return tally;
}

int command_sweep(const std::string& name) {
  const SweepPlan plan = plan_sweep(name);
  // PCT's steps estimate is learned from the sweep's first seed, not the shard's: every shard
  // of a sweep runs the same policy as the unsharded sweep (the reports name it).
  const Job job = make_job(name, plan.base);
  if (job.policy.exhaustive) {
    throw UsageFailure("--policy=exhaustive explores one seed: use `trellis run --seed=S`");
  }
  const int workers = std::clamp(absl::GetFlag(FLAGS_j), 1, 256);
  print_sweep_header(job, plan, workers);
  if (plan.shard.total > 1 && absl::GetFlag(FLAGS_junit).empty()) {
    std::printf("note: a shard without --junit=FILE leaves nothing for `trellis sweep-merge`\n");
  }
  SweepProgress progress(plan.seeds.count);
  std::vector<std::uint64_t> died_at;
  const SweepTally tally = run_sweep_workers(job, plan, workers, progress, died_at);
  const double elapsed = progress.seconds();
  progress.show(tally, true);
  progress.finish();
  std::printf("%llu seeds in %.1f s (%.0f seeds/s): %zu failed\n",
              static_cast<unsigned long long>(tally.done), elapsed,
              elapsed > 0 ? static_cast<double>(tally.done) / elapsed : 0.0, tally.failures.size());
  // Rerunning a seed whose worker died would die the same way: no replay then.
  const std::string replay = tally.failures.empty() || !died_at.empty()
                                 ? std::string()
                                 : rerun_first_failure(job, tally.failures);
  const bool complete = tally.done == plan.seeds.count && died_at.empty();
  if (!absl::GetFlag(FLAGS_junit).empty()) {
    write_junit(absl::GetFlag(FLAGS_junit), plan, job.policy.name(), tally.outcomes, elapsed,
                complete, replay);
  }
  return complete && tally.failures.empty() ? kExitPassed : kExitFailed;
}

// Where a report's replay file is from here: as recorded (relative to where its shard ran),
// or else beside the report (CI artifacts downloaded into one folder per shard).
std::string locate_replay(const std::string& recorded, const std::string& report_path) {
  if (recorded.empty() || ::access(recorded.c_str(), R_OK) == 0) return recorded;
  const std::size_t slash = report_path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : report_path.substr(0, slash);
  const std::size_t base = recorded.rfind('/');
  const std::string beside =
      dir + "/" + (base == std::string::npos ? recorded : recorded.substr(base + 1));
  return ::access(beside.c_str(), R_OK) == 0 ? beside : recorded;
}

void print_merge(const sim::SweepMerge& m, const std::string& replay) {
  std::printf("sweep %s: seeds %llu..%llu in %llu shard%s, policy %s%s\n", m.scenario.c_str(),
              static_cast<unsigned long long>(m.base_seed),
              static_cast<unsigned long long>(m.base_seed + m.seeds - 1),
              static_cast<unsigned long long>(m.shards), m.shards == 1 ? "" : "s", m.policy.c_str(),
              m.options.empty() ? "" : (", options " + m.options).c_str());
  std::printf("%llu of %llu seeds run: %llu failed\n", static_cast<unsigned long long>(m.run),
              static_cast<unsigned long long>(m.seeds), static_cast<unsigned long long>(m.failed));
  for (const sim::Shard& shard : m.incomplete) {
    std::printf("shard %s did not run all its seeds (stopped at a failure, or a worker died)\n",
                shard.name().c_str());
  }
  if (!m.first_failure) return;
  std::printf("first failing seed: %llu (shard %s)\n",
              static_cast<unsigned long long>(*m.first_failure),
              m.first_failure_shard.name().c_str());
  if (replay.empty()) {
    std::printf("  no replay file (rerun it: trellis run %s --seed=%llu%s%s)\n", m.scenario.c_str(),
                static_cast<unsigned long long>(*m.first_failure),
                m.options.empty() ? "" : (" --options=" + m.options).c_str(),
                m.policy == "random" ? "" : (" --policy=" + m.policy).c_str());
    return;
  }
  std::printf("  replay file: %s\n  replay it:   trellis replay %s\n", replay.c_str(),
              replay.c_str());
}

// `sweep-merge`: the union of a sharded sweep's reports. Exit 0: every seed ran and passed;
// 1: a seed failed or a shard did not finish; 2: the reports are not one whole sweep.
int command_sweep_merge(const std::vector<std::string>& paths) {
  std::vector<sim::SweepReport> reports;
  try {
    for (const std::string& path : paths) reports.push_back(sim::read_sweep_report(path));
    const sim::SweepMerge m = sim::merge_sweep_reports(reports, paths);
    print_merge(m, locate_replay(m.replay, paths[m.first_failure_report]));
    return m.failed == 0 && m.incomplete.empty() && m.run == m.seeds ? kExitPassed : kExitFailed;
  } catch (const sim::SweepReportError& e) {
    throw UsageFailure(e.what());
  }
}

sim::ReplayFile load_replay(const std::string& path) {
  try {
    return sim::read_replay_file(path);
  } catch (const std::exception& e) {
    throw UsageFailure(e.what());
  }
}

Job job_for_replay(const sim::ReplayFile& replay) {
  Job job;
  try {
    job.scenario = &scenarios::find_scenario(replay.scenario);
    scenarios::check_options(*job.scenario, replay.options);
  } catch (const std::invalid_argument& e) {
    throw UsageFailure(std::string("replay file: ") + e.what());
  }
  job.options = replay.options;
  return job;
}

sim::Config replay_config_for(const Job& job, const sim::ReplayFile& replay) {
  sim::Config config = config_for(job, replay.seed);
  return sim::replay_config(replay, config);
}

int command_replay(const std::string& path) {
  const sim::ReplayFile replay = load_replay(path);
  const Job job = job_for_replay(replay);
  std::printf("replaying %s: scenario %s, seed %llu, %zu decisions\n", path.c_str(),
              replay.scenario.c_str(), static_cast<unsigned long long>(replay.seed),
              replay.decisions.size());
  const sim::RunResult r = sim::run_simulation(body_of(job), replay_config_for(job, replay));
  print_result(r);
  std::printf(r.failed ? "the failure reproduced\n"
                       : "the run passed: the failure did not reproduce\n");
  return r.failed ? kExitFailed : kExitPassed;
}

int command_shrink(const std::string& path) {
  const sim::ReplayFile replay = load_replay(path);
  const Job job = job_for_replay(replay);
  const sim::RunResult r = sim::run_simulation(body_of(job), replay_config_for(job, replay));
  if (!r.failed) {
    std::printf("%s does not fail: nothing to shrink\n", path.c_str());
    return kExitUsage;
  }
  sim::RunResult failing = r;
  failing.decisions = replay.decisions;
  const sim::ShrinkResult minimal =
      sim::shrink(body_of(job), failing, {}, {.runs_max = absl::GetFlag(FLAGS_shrink_runs)});
  const std::string out =
      absl::GetFlag(FLAGS_out).empty() ? path + ".min" : absl::GetFlag(FLAGS_out);
  sim::write_replay_file(out, minimal.run.replay(replay.scenario, replay.options));
  print_shrink_summary(minimal);
  std::printf("  shrunk replay file: %s\n", out.c_str());
  return kExitFailed;
}

int command_trace(const std::string& path) {
  if (absl::GetFlag(FLAGS_format) != "chrome") {
    throw std::invalid_argument("unknown trace format '" + absl::GetFlag(FLAGS_format) +
                                "' (formats: chrome)");
  }
  const sim::ReplayFile replay = load_replay(path);
  const Job job = job_for_replay(replay);
  sim::Config config = replay_config_for(job, replay);
  config.trace_events_kept = std::size_t{1} << 21;
  sim::World world(config);
  std::string failure;
  try {
    job.scenario->simulate(world, job.options);
  } catch (const std::exception& e) {
    failure = e.what();
  }
  const std::string out =
      absl::GetFlag(FLAGS_out).empty() ? path + ".trace.json" : absl::GetFlag(FLAGS_out);
  FILE* file = std::fopen(out.c_str(), "w");
  if (file == nullptr) throw std::runtime_error("cannot write " + out);
  const std::string json = sim::chrome_trace_json(world.trace(), world.host_names());
  const bool written = std::fwrite(json.data(), 1, json.size(), file) == json.size();
  if (std::fclose(file) != 0 || !written) throw std::runtime_error("error writing " + out);
  std::printf("%s: %llu events (%s)\nopen it in https://ui.perfetto.dev or chrome://tracing\n",
              out.c_str(), static_cast<unsigned long long>(world.trace().event_count()),
              failure.empty() ? "the run passed" : ("the run failed: " + failure).c_str());
  return kExitPassed;
}

int command_check_determinism(const std::string& name) {
  const Job job = make_job(name, absl::GetFlag(FLAGS_base_seed));
  const std::uint64_t count = absl::GetFlag(FLAGS_seeds);
  const std::uint64_t base = absl::GetFlag(FLAGS_base_seed);
  for (std::uint64_t seed = base; seed < base + count; ++seed) {
    if (std::optional<std::string> divergence =
            sim::check_determinism(body_of(job), config_for(job, seed))) {
      std::printf("%s\n", divergence->c_str());
      return kExitFailed;
    }
  }
  std::printf("%llu seeds, each run twice: identical traces\n",
              static_cast<unsigned long long>(count));
  return kExitPassed;
}

}  // namespace

// Flags spelled with dashes (--keep-going) name the same flags as with underscores, and a
// flag that does not exist or a value that does not parse is bad usage (exit 2, one line)
// instead of Abseil's own exit 1 — which would read as "a seed failed".
std::vector<std::string> normalize_flags(int argc, char** argv) {
  std::vector<std::string> args(argv, argv + argc);
  for (std::size_t i = 1; i < args.size(); ++i) {
    std::string& arg = args[i];
    if (arg == "--") break;
    if (arg.size() < 2 || arg[0] != '-') continue;
    const std::size_t dashes = arg[1] == '-' ? 2 : 1;
    const std::size_t eq = arg.find('=');
    std::string name =
        arg.substr(dashes, eq == std::string::npos ? std::string::npos : eq - dashes);
    std::replace(name.begin(), name.end(), '-', '_');
    if (name.empty()) throw UsageFailure("bad flag '" + arg + "'");
    static const char* const kAbseilBuiltins[] = {
        "help",    "helpfull",        "helpshort", "helppackage", "helpon",     "helpmatch",
        "version", "only_check_args", "flagfile",  "fromenv",     "tryfromenv", "undefok"};
    if (std::any_of(std::begin(kAbseilBuiltins), std::end(kAbseilBuiltins),
                    [&](const char* builtin) { return name == builtin; })) {
      continue;
    }
    std::string lookup = name;
    if (lookup.rfind("no", 0) == 0 && absl::FindCommandLineFlag(lookup) == nullptr) {
      lookup = lookup.substr(2);  // --nokeep_going
    }
    absl::CommandLineFlag* flag = absl::FindCommandLineFlag(lookup);
    if (flag == nullptr) {
      throw UsageFailure("unknown flag --" + name + " (see trellis --help)");
    }
    std::optional<std::string> value;
    if (eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg = "--" + name + "=" + *value;
    } else {
      arg = "--" + name;
      if (!flag->IsOfType<bool>() && lookup == name) {
        if (i + 1 >= args.size()) throw UsageFailure("flag --" + name + " needs a value");
        value = args[i + 1];
      }
    }
    if (value.has_value() && lookup == name) {
      std::string error;
      if (!flag->ParseFrom(*value, &error)) {
        throw UsageFailure("bad value '" + *value + "' for --" + name + ": " + error);
      }
    }
  }
  return args;
}

int main(int argc, char** argv) {
  // `trellis serve actor-tree` re-executes this binary as its child actors.
  trellis::actor::maybe_run_actor(argc, argv);
  absl::SetProgramUsageMessage(
      "the Trellis simulator tool\n"
      "  trellis list\n"
      "  trellis run SCENARIO --seed=S [--options=k=v,...] [--policy=P]\n"
      "      P: fifo | random | pct[:depth=D,steps=S] |\n"
      "         exhaustive[:preemptions=P,budget=N,reduction=none|dpor]\n"
      "         [--pct-depth=D] [--pct-steps=S] [--preemptions=P] [--budget=N]\n"
      "         [--reduction=none|dpor]\n"
      "  trellis sweep SCENARIO --seeds=N [--base_seed=B] [--j=J] [--keep_going] [--junit=F]\n"
      "                [--replay_dir=D] [--shard=I/N | --shards=N with JOB_COMPLETION_INDEX]\n"
      "  trellis sweep-merge REPORT...   (the --junit reports of every shard of one sweep)\n"
      "  trellis replay FILE\n"
      "  trellis shrink FILE [--out=FILE] [--shrink_runs=N]\n"
      "  trellis check-determinism SCENARIO --seeds=N\n"
      "  trellis trace FILE [--format=chrome] [--out=trace.json]\n"
      "  trellis serve SCENARIO [--options=k=v,...]   (real mode, until Ctrl-C)\n"
      "  trellis serve chat --tls [--tls_cert=chain.pem --tls_key=key.pem | "
      "--tls_ca_out=ca.pem]\n"
      "      (chat over TLS; without --tls_cert a test CA is generated and its certificate,\n"
      "       what clients must trust, is written to --tls_ca_out or printed)");
  std::vector<std::string> normalized;
  try {
    normalized = normalize_flags(argc, argv);
  } catch (const UsageFailure& e) {
    std::fprintf(stderr, "trellis: %s\n", e.what());
    return kExitUsage;
  }
  std::vector<char*> normalized_argv;
  for (std::string& arg : normalized) normalized_argv.push_back(arg.data());
  normalized_argv.push_back(nullptr);
  std::vector<char*> positional =
      absl::ParseCommandLine(static_cast<int>(normalized.size()), normalized_argv.data());
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  if (positional.size() < 2) {
    std::fprintf(stderr, "%s\n", absl::ProgramUsageMessage().data());
    return kExitUsage;
  }
  const std::string command = positional[1];
  const std::string argument = positional.size() > 2 ? positional[2] : "";
  try {
    if (command == "sweep-merge") {
      if (positional.size() < 3) throw UsageFailure("`sweep-merge` needs the shards' reports");
      return command_sweep_merge({positional.begin() + 2, positional.end()});
    }
    if (positional.size() > 3) throw UsageFailure("too many arguments");
    if (command == "list") return command_list();
    if (argument.empty()) throw UsageFailure("`" + command + "` needs an argument");
    if (command == "run") return command_run(argument);
    if (command == "sweep") return command_sweep(argument);
    if (command == "replay") return command_replay(argument);
    if (command == "shrink") return command_shrink(argument);
    if (command == "check-determinism") return command_check_determinism(argument);
    if (command == "trace") return command_trace(argument);
    if (command == "serve") return command_serve(argument);
    throw UsageFailure(
        "unknown command '" + command +
        "' (commands: list, run, sweep, sweep-merge, replay, shrink, check-determinism, trace, "
        "serve)");
  } catch (const UsageFailure& e) {
    std::fprintf(stderr, "trellis: %s\n", e.what());
    return kExitUsage;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "trellis: error: %s\n", e.what());
    return kExitUsage;
  }
}
