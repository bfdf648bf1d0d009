#include "trellis/sim/replay_file.h"

#include <charconv>
#include <fstream>
#include <limits>
#include <optional>
#include <sstream>
#include <string>

namespace trellis::sim {
namespace {

constexpr std::size_t kDecisionsMax = std::size_t{1} << 28;  // 1 GiB of choices: a bound
constexpr std::size_t kDecisionsPerLine = 32;
constexpr std::size_t kFaultsMax = 100'000;
constexpr std::uint64_t kFaultMicrosMax = std::uint64_t{1} << 50;  // 35 years

long long micros(Duration d) {
  return static_cast<long long>(std::chrono::duration_cast<std::chrono::microseconds>(d).count());
}

// A word the writer can write and the parser reads back as itself: printable ASCII, no
// space, no '#'. Both sides hold names and option values to this.
bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= ' ' || u >= 127 || c == '#') return false;
  }
  return true;
}

template <class T>
bool parse_integer(std::string_view text, T* out) {
  if (text.empty()) return false;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, *out);
  return ec == std::errc() && ptr == end;
}

// Splits a line into whitespace-separated words.
std::vector<std::string_view> words(std::string_view line) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) ++i;
    const std::size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t' && line[i] != '\r') ++i;
    if (i > start) out.push_back(line.substr(start, i - start));
  }
  return out;
}

std::string printable(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 40)) {
    out += (c >= 32 && c < 127) ? c : '?';
  }
  if (s.size() > 40) out += "...";
  return out;
}

}  // namespace

ReplayFileError::ReplayFileError(std::size_t line, const std::string& problem,
                                 const std::string& path)
    : std::runtime_error("replay file" + (path.empty() ? std::string() : " " + path) +
                         (line == 0 ? std::string() : ", line " + std::to_string(line)) + ": " +
                         problem),
      line_(line),
      problem_(problem) {}

std::string_view policy_name(PolicyKind kind) {
  switch (kind) {
    case PolicyKind::kFifo:
      return "fifo";
    case PolicyKind::kRandom:
      return "random";
    case PolicyKind::kPct:
      return "pct";
    case PolicyKind::kDecisions:
      return "decisions";
  }
  return "?";
}

PolicyKind parse_policy_name(std::string_view name) {
  for (PolicyKind kind :
       {PolicyKind::kFifo, PolicyKind::kRandom, PolicyKind::kPct, PolicyKind::kDecisions}) {
    if (policy_name(kind) == name) return kind;
  }
  throw std::invalid_argument("unknown policy '" + printable(name) +
                              "' (valid: fifo, random, pct, decisions)");
}

std::string format_replay_file(const ReplayFile& replay) {
  if (!is_token(replay.scenario)) {
    throw std::invalid_argument("replay file: scenario must be one word, got '" +
                                printable(replay.scenario) + "'");
  }
  std::ostringstream out;
  out << "# trellis replay file: rerun with  trellis replay <this file>\n";
  out << "trellis-replay " << ReplayFile::kVersion << "\n";
  out << "scenario " << replay.scenario << "\n";
  out << "seed " << replay.seed << "\n";
  out << "policy " << policy_name(replay.policy) << "\n";
  out << "pct_depth " << replay.pct_depth << "\n";
  for (const auto& [key, value] : replay.options) {
    if (!is_token(key) || !is_token(value)) {
      throw std::invalid_argument("replay file: option keys and values must be one word each");
    }
    out << "option " << key << " " << value << "\n";
  }
  out << "faults " << replay.fault_plan.faults.size() << "\n";
  for (const PlannedFault& f : replay.fault_plan.faults) {
    out << "fault " << planned_fault_name(f.kind) << " " << micros(f.at) << " " << f.a << " " << f.b
        << " " << micros(f.duration) << " " << micros(f.latency) << "\n";
  }
  out << "decisions " << replay.decisions.size() << "\n";
  for (std::size_t i = 0; i < replay.decisions.size(); ++i) {
    out << replay.decisions[i];
    out << ((i + 1) % kDecisionsPerLine == 0 || i + 1 == replay.decisions.size() ? "\n" : " ");
  }
  out << "end\n";
  return out.str();
}

namespace {

// One replay file's text, line by line, into a ReplayFile. Invariant: line_ is the 1-based
// number of the line being read (what every ReplayFileError names).
class ReplayParser {
 public:
  explicit ReplayParser(std::string_view text) : text_(text) {}

  ReplayFile parse() {
    while (!ended_ && next_line()) {
      const std::vector<std::string_view> w = words(line_text_);
      if (w.empty() || w[0].front() == '#') continue;
      if (in_decisions_block()) {
        read_decisions(w);
      } else if (!have_version_) {
        read_header(w);
      } else {
        read_key(w);
      }
    }
    check_complete();
    return std::move(replay_);
  }

 private:
  bool next_line() {
    if (position_ >= text_.size()) return false;
    std::size_t eol = text_.find('\n', position_);
    if (eol == std::string_view::npos) eol = text_.size();
    line_text_ = text_.substr(position_, eol - position_);
    position_ = eol + 1;
    ++line_;
    if (line_text_.find('\0') != std::string_view::npos) {
      fail("contains a NUL byte (not a text file?)");
    }
    return true;
  }

  [[noreturn]] void fail(const std::string& problem) const {
    throw ReplayFileError(line_, problem);
  }

  bool in_decisions_block() const {
    return have_decisions_ && replay_.decisions.size() < decisions_expected_;
  }

  void expect_args(const std::vector<std::string_view>& w, std::size_t n) const {
    if (w.size() == n + 1) return;
    fail("'" + std::string(w[0]) + "' takes " + std::to_string(n) + " value" + (n == 1 ? "" : "s") +
         ", got " + std::to_string(w.size() - 1));
  }

  // Inside a decisions block: numbers only.
  void read_decisions(const std::vector<std::string_view>& w) {
    for (std::string_view word : w) {
      std::uint32_t value = 0;
      if (!parse_integer(word, &value)) {
        fail("expected a decision (0.." +
             std::to_string(std::numeric_limits<std::uint32_t>::max()) + "), got '" +
             printable(word) + "'");
      }
      if (replay_.decisions.size() == decisions_expected_) {
        fail("more decisions than the " + std::to_string(decisions_expected_) + " announced");
      }
      replay_.decisions.push_back(value);
    }
  }

  void read_header(const std::vector<std::string_view>& w) {
    if (w[0] != "trellis-replay") {
      fail("not a trellis replay file (expected 'trellis-replay " +
           std::to_string(ReplayFile::kVersion) + "', got '" + printable(line_text_) + "')");
    }
    expect_args(w, 1);
    int version = 0;
    if (!parse_integer(w[1], &version)) fail("bad version '" + printable(w[1]) + "'");
    if (version != ReplayFile::kVersion) {
      fail("replay file version " + std::to_string(version) +
           " is not supported (this build reads version " + std::to_string(ReplayFile::kVersion) +
           ")");
    }
    have_version_ = true;
  }

  void read_key(const std::vector<std::string_view>& w) {
    const std::string_view key = w[0];
    if (key == "scenario") {
      expect_args(w, 1);
      require_token(w[1], "scenario");
      replay_.scenario = std::string(w[1]);
      have_scenario_ = true;
    } else if (key == "seed") {
      expect_args(w, 1);
      if (!parse_integer(w[1], &replay_.seed)) {
        fail("seed must be an unsigned 64-bit integer, got '" + printable(w[1]) + "'");
      }
      have_seed_ = true;
    } else if (key == "policy") {
      read_policy(w);
    } else if (key == "pct_depth") {
      expect_args(w, 1);
      if (!parse_integer(w[1], &replay_.pct_depth) || replay_.pct_depth < 1 ||
          replay_.pct_depth > 1000) {
        fail("pct_depth must be 1..1000, got '" + printable(w[1]) + "'");
      }
    } else if (key == "option") {
      expect_args(w, 2);
      require_token(w[1], "option key");
      require_token(w[2], "option value");
      if (!replay_.options.emplace(std::string(w[1]), std::string(w[2])).second) {
        fail("option '" + printable(w[1]) + "' given twice");
      }
    } else if (key == "faults") {
      read_faults_count(w);
    } else if (key == "fault") {
      read_fault(w);
    } else if (key == "decisions") {
      read_decisions_count(w);
    } else if (key == "end") {
      expect_args(w, 0);
      ended_ = true;
    } else {
      fail("unknown key '" + printable(key) + "'");
    }
  }

  void read_policy(const std::vector<std::string_view>& w) {
    expect_args(w, 1);
    try {
      replay_.policy = parse_policy_name(w[1]);
    } catch (const std::invalid_argument& e) {
      fail(e.what());
    }
  }

  // "faults N": N fault lines follow (files before it have fault lines only: still read).
  void read_faults_count(const std::vector<std::string_view>& w) {
    expect_args(w, 1);
    if (faults_expected_.has_value()) fail("faults given twice");
    std::size_t count = 0;
    if (!parse_integer(w[1], &count) || count > kFaultsMax) {
      fail("faults count must be 0.." + std::to_string(kFaultsMax) + ", got '" + printable(w[1]) +
           "'");
    }
    if (!replay_.fault_plan.faults.empty()) fail("'faults' must come before the fault lines");
    faults_expected_ = count;
    faults_count_line_ = line_;
  }

  void read_fault(const std::vector<std::string_view>& w) {
    if (w.size() != 7) {
      fail("a fault line has 6 values, got " + std::to_string(w.size() - 1) + " (" + kFaultForm +
           ")");
    }
    if (replay_.fault_plan.faults.size() == faults_expected_.value_or(kFaultsMax)) {
      fail(faults_expected_.has_value()
               ? "more fault lines than the " + std::to_string(*faults_expected_) + " announced"
               : "more than " + std::to_string(kFaultsMax) + " faults");
    }
    PlannedFault fault;
    try {
      fault.kind = parse_planned_fault_name(w[1]);
    } catch (const std::invalid_argument& e) {
      fail(e.what());
    }
    fault.at = fault_time(w[2], "AT_US");
    if (!parse_integer(w[3], &fault.a))
      fail("bad HOST_A '" + printable(w[3]) + "' (" + kFaultForm + ")");
    if (!parse_integer(w[4], &fault.b))
      fail("bad HOST_B '" + printable(w[4]) + "' (" + kFaultForm + ")");
    if (fault.kind == PlannedFault::Kind::kSignal &&
        (fault.b == 0 || fault.b > kPlannedSignalMax)) {
      fail("a signal fault's fourth value is the signal number, 1.." +
           std::to_string(kPlannedSignalMax) + ", got '" + printable(w[4]) + "'");
    }
    fault.duration = fault_time(w[5], "DURATION_US");
    fault.latency = fault_time(w[6], "LATENCY_US");
    replay_.fault_plan.faults.push_back(fault);
  }

  // What the writer accepts (is_token), or a ReplayFileError naming the line: a file that
  // reads must also write back (`trellis shrink` rewrites what it reads).
  void require_token(std::string_view word, const char* what) const {
    if (!is_token(word)) {
      fail(std::string(what) + " '" + printable(word) +
           "' must be printable ASCII without spaces or '#'");
    }
  }

  Duration fault_time(std::string_view word, const char* what) const {
    std::uint64_t us = 0;
    if (!parse_integer(word, &us) || us > kFaultMicrosMax) {
      fail(std::string("bad ") + what + " '" + printable(word) + "': microseconds up to " +
           std::to_string(kFaultMicrosMax) + " (" + kFaultForm + ")");
    }
    return std::chrono::microseconds(us);
  }

  void read_decisions_count(const std::vector<std::string_view>& w) {
    expect_args(w, 1);
    if (have_decisions_) fail("decisions given twice");
    if (!parse_integer(w[1], &decisions_expected_) || decisions_expected_ > kDecisionsMax) {
      fail("decisions count must be 0.." + std::to_string(kDecisionsMax) + ", got '" +
           printable(w[1]) + "'");
    }
    replay_.decisions.reserve(std::min<std::size_t>(decisions_expected_, 1 << 20));
    have_decisions_ = true;
  }

  void check_complete() const {
    if (!have_version_) throw ReplayFileError(0, "empty (no 'trellis-replay' header)");
    if (have_decisions_ && replay_.decisions.size() < decisions_expected_) {
      throw ReplayFileError(0, "truncated: " + std::to_string(replay_.decisions.size()) + " of " +
                                   std::to_string(decisions_expected_) + " decisions");
    }
    if (!ended_) throw ReplayFileError(0, "truncated: no 'end' line");
    if (faults_expected_.has_value() && replay_.fault_plan.faults.size() < *faults_expected_) {
      throw ReplayFileError(faults_count_line_,
                            "only " + std::to_string(replay_.fault_plan.faults.size()) +
                                " fault lines of the " + std::to_string(*faults_expected_) +
                                " announced");
    }
    if (!have_scenario_) throw ReplayFileError(0, "missing 'scenario'");
    if (!have_seed_) throw ReplayFileError(0, "missing 'seed'");
    if (!have_decisions_) throw ReplayFileError(0, "missing 'decisions'");
  }

  static constexpr const char* kFaultForm = "fault KIND AT_US HOST_A HOST_B DURATION_US LATENCY_US";

  std::string_view text_;
  std::size_t position_ = 0;
  std::size_t line_ = 0;
  std::string_view line_text_;
  ReplayFile replay_;
  bool have_version_ = false;
  bool have_scenario_ = false;
  bool have_seed_ = false;
  bool have_decisions_ = false;
  bool ended_ = false;
  std::size_t decisions_expected_ = 0;
  std::optional<std::size_t> faults_expected_;
  std::size_t faults_count_line_ = 0;
};

}  // namespace

ReplayFile parse_replay_file(std::string_view text) {
  return ReplayParser(text).parse();
}

ReplayFile read_replay_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open replay file " + path);
  std::ostringstream buffer;
  buffer << in.rdbuf();
  try {
    return parse_replay_file(buffer.str());
  } catch (const ReplayFileError& e) {
    throw ReplayFileError(e.line(), e.problem(), path);
  }
}

void write_replay_file(const std::string& path, const ReplayFile& replay) {
  const std::string text = format_replay_file(replay);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw std::runtime_error("cannot write replay file " + path);
  out << text;
  out.close();
  if (!out) throw std::runtime_error("error writing replay file " + path);
}

}  // namespace trellis::sim
