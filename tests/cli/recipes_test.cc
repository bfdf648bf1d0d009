// The sharded-sweep recipes in tools/recipes/ cannot silently rot: this reads the GitHub
// Actions workflow and the Kubernetes manifest enough to pull out their shell scripts and
// settings, checks that the settings agree (matrix = 0..SHARDS-1, completions = parallelism =
// TRELLIS_SHARDS, a 1,000,000-seed sweep), and runs the very scripts with the real `trellis`
// tool and a few seeds: one folder per "machine", artifacts copied as CI would, then the merge.
// A flag the tool no longer has is exit 2 and fails here.
// GCC 12 at -O1 under ASan warns that std::regex's internal std::function "may be used
// uninitialized" (a false positive in libstdc++'s regex compiler, as in tests/tidy/), which
// -Werror turns into a failed sanitizer build.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <regex>
#include <string>
#include <vector>

#include "cli_process.h"

namespace {

namespace fs = std::filesystem;
using trellis::cli_testing::ChildResult;
using trellis::cli_testing::read_text;
using trellis::cli_testing::run_child;
using trellis::cli_testing::run_trellis;
using trellis::cli_testing::TempDir;

const fs::path kRecipes = fs::path(TRELLIS_SOURCE_DIR) / "tools" / "recipes";
constexpr const char* kSmallSeeds = "40";

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    out.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

std::size_t indent_of(const std::string& line) {
  const std::size_t first = line.find_first_not_of(' ');
  return first == std::string::npos ? line.size() : first;
}

// The literal block scalars (`key: |` or `- |`) of a YAML text, dedented, in order.
std::vector<std::string> block_scalars(const std::string& yaml) {
  static const std::regex opener(R"(^\s*(- |[\w-]+: )\|\s*$)");
  const std::vector<std::string> lines = split_lines(yaml);
  std::vector<std::string> blocks;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (!std::regex_match(lines[i], opener)) continue;
    const std::size_t block_indent = i + 1 < lines.size() ? indent_of(lines[i + 1]) : 0;
    if (block_indent <= indent_of(lines[i])) continue;
    std::string block;
    std::size_t j = i + 1;
    for (; j < lines.size(); ++j) {
      const bool blank = lines[j].find_first_not_of(' ') == std::string::npos;
      if (!blank && indent_of(lines[j]) < block_indent) break;
      block += (blank ? std::string() : lines[j].substr(block_indent)) + "\n";
    }
    blocks.push_back(block);
    i = j - 1;
  }
  return blocks;
}

// The one block scalar that contains `needle`.
std::string script_with(const std::string& yaml, const std::string& needle) {
  std::vector<std::string> found;
  for (const std::string& block : block_scalars(yaml)) {
    if (block.find(needle) != std::string::npos) found.push_back(block);
  }
  EXPECT_EQ(found.size(), 1u) << "scripts containing '" << needle << "'";
  return found.empty() ? std::string() : found.front();
}

// `key: value` at exactly `indent` spaces (the first), without quotes or a trailing comment.
std::string scalar(const std::string& yaml, const std::string& key, std::size_t indent) {
  const std::regex line("^" + std::string(indent, ' ') + key +
                        R"re(: *(?:"([^"]*)"|([^#"]*?)) *(#.*)?$)re");
  for (const std::string& l : split_lines(yaml)) {
    std::smatch m;
    if (std::regex_match(l, m, line)) return m[1].matched ? m[1].str() : m[2].str();
  }
  ADD_FAILURE() << "no '" << key << ":' at indent " << indent;
  return {};
}

// A Kubernetes container's env list: `- name: X` then `value: Y`.
std::map<std::string, std::string> k8s_env(const std::string& yaml) {
  static const std::regex name(R"re(^\s*- name: (\w+)\s*(#.*)?$)re");
  static const std::regex value(R"re(^\s*value: *("([^"]*)"|(\S*))\s*$)re");
  std::map<std::string, std::string> env;
  const std::vector<std::string> lines = split_lines(yaml);
  for (std::size_t i = 0; i + 1 < lines.size(); ++i) {
    std::smatch n;
    std::smatch v;
    if (!std::regex_match(lines[i], n, name)) continue;
    if (!std::regex_match(lines[i + 1], v, value)) continue;
    env[n[1].str()] = v[2].matched ? v[2].str() : v[3].str();
  }
  return env;
}

void copy_folder(const fs::path& from, const fs::path& to) {
  fs::create_directories(to);
  if (fs::exists(from)) fs::copy(from, to, fs::copy_options::recursive);
}

struct Workflow {
  std::string text;
  std::string sweep_script;
  std::string merge_script;
  std::map<std::string, std::string> env;  // the workflow's top-level env
  int shards = 0;
};

Workflow read_workflow() {
  Workflow w;
  w.text = read_text(kRecipes / "github-actions-nightly-sweep.yml");
  w.sweep_script = script_with(w.text, "trellis sweep ");
  w.merge_script = script_with(w.text, "trellis sweep-merge");
  for (const char* key : {"SCENARIO", "SEEDS", "SHARDS", "OPTIONS"}) {
    w.env[key] = scalar(w.text, key, 2);
  }
  w.shards = std::stoi(w.env["SHARDS"]);
  return w;
}

TEST(Recipes, GithubActionsSettingsAgree) {
  const Workflow w = read_workflow();
  EXPECT_EQ(w.env.at("SEEDS"), "1000000");
  ASSERT_GE(w.shards, 2);
  std::string matrix = "[";
  for (int k = 0; k < w.shards; ++k) matrix += (k == 0 ? "" : ", ") + std::to_string(k);
  EXPECT_EQ(scalar(w.text, "shard", 8), matrix + "]") << "the matrix must list 0..SHARDS-1";
  for (const std::string& script : block_scalars(w.text)) {
    EXPECT_EQ(script.find("${{"), std::string::npos) << "a run script uses ${{ }}:\n" << script;
  }
  int builds = 0;  // each job builds the tool and puts it on the PATH
  for (const std::string& script : block_scalars(w.text)) {
    if (script.find("--target trellis_cli") == std::string::npos) continue;
    ++builds;
    EXPECT_NE(script.find("build/release/tools\" >> \"$GITHUB_PATH\""), std::string::npos)
        << script;
  }
  EXPECT_EQ(builds, 2);
  EXPECT_NE(read_text(fs::path(TRELLIS_SOURCE_DIR) / "tools" / "CMakeLists.txt")
                .find("add_executable(trellis_cli "),
            std::string::npos);
}

// Runs the workflow's scripts: SHARDS "machines", their out/ as artifacts, then the merge.
ChildResult run_workflow(const Workflow& w, const std::string& options, const TempDir& tmp) {
  const fs::path merge_dir = tmp.path() / "merge";
  for (int k = 0; k < w.shards; ++k) {
    const fs::path machine = tmp.path() / ("machine" + std::to_string(k));
    fs::create_directories(machine);
    std::map<std::string, std::string> env = w.env;
    env["SEEDS"] = kSmallSeeds;
    env["OPTIONS"] = options;
    env["SHARD"] = std::to_string(k);
    const ChildResult r =
        run_child({"/bin/bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", w.sweep_script},
                  env, machine.string());
    EXPECT_EQ(r.exit_code, 0) << "shard " << k << ":\n" << r.output;
    copy_folder(machine / "out", merge_dir / "shards" / ("sweep-shard-" + std::to_string(k)));
  }
  return run_child({"/bin/bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", w.merge_script},
                   w.env, merge_dir.string());
}

TEST(Recipes, GithubActionsScriptsSweepAndMerge) {
  const Workflow w = read_workflow();
  {
    const TempDir tmp;
    const ChildResult clean = run_workflow(w, w.env.at("OPTIONS"), tmp);
    EXPECT_EQ(clean.exit_code, 0) << clean.output;
    EXPECT_NE(clean.output.find("40 of 40 seeds run: 0 failed"), std::string::npos) << clean.output;
  }
  const TempDir tmp;
  const ChildResult bug = run_workflow(w, "planted_bug=on", tmp);
  EXPECT_EQ(bug.exit_code, 1) << bug.output;
  std::smatch replay;
  ASSERT_TRUE(std::regex_search(bug.output, replay, std::regex(R"(replay file: (\S+))")))
      << bug.output;
  // The replay file is found among the downloaded artifacts, and it reproduces.
  const fs::path file = tmp.path() / "merge" / replay[1].str();
  EXPECT_NE(replay[1].str().find("shards/sweep-shard-"), std::string::npos) << bug.output;
  EXPECT_EQ(run_trellis({"replay", file.string()}).exit_code, 1) << file;
}

struct Manifest {
  std::string text;
  std::string script;
  std::map<std::string, std::string> env;
};

Manifest read_manifest() {
  Manifest m;
  m.text = read_text(kRecipes / "kubernetes-nightly-sweep.yaml");
  m.script = script_with(m.text, "trellis sweep ");
  m.env = k8s_env(m.text);
  return m;
}

TEST(Recipes, KubernetesSettingsAgree) {
  Manifest m = read_manifest();  // (env[] of a missing name is "": a mismatch below)
  EXPECT_EQ(m.env["SEEDS"], "1000000");
  EXPECT_EQ(scalar(m.text, "completionMode", 6), "Indexed");
  EXPECT_EQ(scalar(m.text, "completions", 6), m.env["TRELLIS_SHARDS"]);
  EXPECT_EQ(scalar(m.text, "parallelism", 6), m.env["TRELLIS_SHARDS"]);
  EXPECT_EQ(scalar(m.text, "mountPath", 18), m.env["SWEEP_DIR"]);
  EXPECT_NE(m.text.find(R"(command: ["/bin/sh", "-c"])"), std::string::npos);
  EXPECT_NE(m.script.find("trellis sweep-merge"), std::string::npos);
  // What the test sets in place of the downward API comes from it in the manifest.
  EXPECT_NE(m.text.find("fieldPath: metadata.labels['batch.kubernetes.io/job-name']"),
            std::string::npos);
  EXPECT_NE(m.text.find("resource: requests.cpu"), std::string::npos);
  // The shard comes from the Job's index, not from a --shard the manifest would have to keep
  // in step with completions.
  EXPECT_EQ(m.script.find("--shard"), std::string::npos);
}

// Runs the manifest's script as the pods would: index 1.. first, then index 0 (which waits for
// the others' reports and merges), each with the variables the manifest and Kubernetes set.
ChildResult run_pods(const Manifest& m, const std::string& options, const TempDir& tmp, int pods,
                     const std::string& wait_seconds = "20") {
  const int shards = std::stoi(m.env.at("TRELLIS_SHARDS"));
  ChildResult pod0;
  for (int i = pods - 1; i >= 0; --i) {
    std::map<std::string, std::string> env = m.env;
    env["SEEDS"] = kSmallSeeds;
    env["OPTIONS"] = options;
    env["SWEEP_DIR"] = tmp.path().string();
    env["WAIT_SECONDS"] = wait_seconds;
    env["RUN"] = "trellis-nightly-sweep-1";  // these two come from the downward API
    env["WORKERS"] = "2";
    env["JOB_COMPLETION_INDEX"] = std::to_string(i);
    const ChildResult r = run_child({"/bin/sh", "-c", m.script}, env);
    if (i == 0) {
      pod0 = r;
    } else {
      EXPECT_EQ(r.exit_code, 0) << "pod " << i << " of " << shards << ":\n" << r.output;
    }
  }
  return pod0;
}

TEST(Recipes, KubernetesScriptSweepsAndIndexZeroMerges) {
  const Manifest m = read_manifest();
  const int shards = std::stoi(m.env.at("TRELLIS_SHARDS"));
  ASSERT_GE(shards, 2);
  {
    const TempDir tmp;
    const ChildResult clean = run_pods(m, m.env.at("OPTIONS"), tmp, shards);
    EXPECT_EQ(clean.exit_code, 0) << clean.output;
    EXPECT_NE(clean.output.find("40 of 40 seeds run: 0 failed"), std::string::npos) << clean.output;
  }
  {
    const TempDir tmp;
    const ChildResult bug = run_pods(m, "planted_bug=on", tmp, shards);
    EXPECT_EQ(bug.exit_code, 1) << bug.output;
    EXPECT_NE(bug.output.find("first failing seed: "), std::string::npos) << bug.output;
  }
  // A pod that never ran: index 0 stops waiting and the merge names the missing shards.
  const TempDir tmp;
  const ChildResult missing = run_pods(m, m.env.at("OPTIONS"), tmp, 1, "0");
  EXPECT_EQ(missing.exit_code, 2) << missing.output;
  EXPECT_NE(missing.output.find("missing shards: " + std::to_string(shards - 1) + " of"),
            std::string::npos)
      << missing.output;
}

// A full YAML parser's view, where one is installed (python3 with PyYAML): both files load,
// and the workflow's matrix is what the line-based reading above found.
TEST(Recipes, FilesAreValidYaml) {
  if (run_child({"/usr/bin/env", "python3", "-c", "import yaml"}).exit_code != 0) {
    GTEST_SKIP() << "python3 with PyYAML is not installed; the checks above still ran";
  }
  const std::string check =
      "import sys, yaml\n"
      "w = yaml.safe_load(open(sys.argv[1]))\n"
      "n = int(w['env']['SHARDS'])\n"
      "assert w['jobs']['sweep']['strategy']['matrix']['shard'] == list(range(n)), 'matrix'\n"
      "assert w['jobs']['merge']['needs'] == 'sweep'\n"
      "docs = list(yaml.safe_load_all(open(sys.argv[2])))\n"
      "job = [d for d in docs if d['kind'] == 'CronJob'][0]['spec']['jobTemplate']['spec']\n"
      "env = {e['name']: e.get('value') for e in "
      "job['template']['spec']['containers'][0]['env']}\n"
      "assert job['completions'] == job['parallelism'] == int(env['TRELLIS_SHARDS'])\n"
      "print('ok')\n";
  const ChildResult r = run_child({"/usr/bin/env", "python3", "-c", check,
                                   (kRecipes / "github-actions-nightly-sweep.yml").string(),
                                   (kRecipes / "kubernetes-nightly-sweep.yaml").string()});
  EXPECT_EQ(r.exit_code, 0) << r.output;
}

}  // namespace
