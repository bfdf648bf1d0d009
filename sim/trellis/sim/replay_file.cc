#include "trellis/sim/replay_file.h"

#include <charconv>
#include <fstream>
#include <limits>
#include <sstream>

namespace trellis::sim {
namespace {

constexpr std::size_t kDecisionsMax = std::size_t{1} << 28;  // 1 GiB of choices: a bound
constexpr std::size_t kDecisionsPerLine = 32;
constexpr std::size_t kFaultsMax = 100'000;
constexpr std::uint64_t kFaultMicrosMax = std::uint64_t{1} << 50;  // 35 years

long long micros(Duration d) {
  return static_cast<long long>(std::chrono::duration_cast<std::chrono::microseconds>(d).count());
}

bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c <= ' ' || c == '#' || c == 127) return false;
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

ReplayFile parse_replay_file(std::string_view text) {
  ReplayFile replay;
  bool have_version = false;
  bool have_scenario = false;
  bool have_seed = false;
  bool have_decisions = false;
  bool ended = false;
  std::size_t decisions_expected = 0;
  std::size_t line_number = 0;
  std::size_t position = 0;
  while (position < text.size() && !ended) {
    std::size_t eol = text.find('\n', position);
    if (eol == std::string_view::npos) eol = text.size();
    const std::string_view line = text.substr(position, eol - position);
    position = eol + 1;
    ++line_number;
    if (line.find('\0') != std::string_view::npos) {
      throw ReplayFileError(line_number, "contains a NUL byte (not a text file?)");
    }
    const std::vector<std::string_view> w = words(line);
    if (w.empty() || w[0].front() == '#') continue;
    // Inside a decisions block: numbers only.
    if (have_decisions && replay.decisions.size() < decisions_expected) {
      for (std::string_view word : w) {
        std::uint32_t value = 0;
        if (!parse_integer(word, &value)) {
          throw ReplayFileError(line_number,
                                "expected a decision (0.." +
                                    std::to_string(std::numeric_limits<std::uint32_t>::max()) +
                                    "), got '" + printable(word) + "'");
        }
        if (replay.decisions.size() == decisions_expected) {
          throw ReplayFileError(line_number, "more decisions than the " +
                                                 std::to_string(decisions_expected) + " announced");
        }
        replay.decisions.push_back(value);
      }
      continue;
    }
    const std::string_view key = w[0];
    auto expect_args = [&](std::size_t n) {
      if (w.size() != n + 1) {
        throw ReplayFileError(line_number, "'" + std::string(key) + "' takes " + std::to_string(n) +
                                               " value" + (n == 1 ? "" : "s") + ", got " +
                                               std::to_string(w.size() - 1));
      }
    };
    if (!have_version) {
      if (key != "trellis-replay") {
        throw ReplayFileError(line_number, "not a trellis replay file (expected 'trellis-replay " +
                                               std::to_string(ReplayFile::kVersion) + "', got '" +
                                               printable(line) + "')");
      }
      expect_args(1);
      int version = 0;
      if (!parse_integer(w[1], &version)) {
        throw ReplayFileError(line_number, "bad version '" + printable(w[1]) + "'");
      }
      if (version != ReplayFile::kVersion) {
        throw ReplayFileError(line_number, "replay file version " + std::to_string(version) +
                                               " is not supported (this build reads version " +
                                               std::to_string(ReplayFile::kVersion) + ")");
      }
      have_version = true;
    } else if (key == "scenario") {
      expect_args(1);
      replay.scenario = std::string(w[1]);
      have_scenario = true;
    } else if (key == "seed") {
      expect_args(1);
      if (!parse_integer(w[1], &replay.seed)) {
        throw ReplayFileError(
            line_number, "seed must be an unsigned 64-bit integer, got '" + printable(w[1]) + "'");
      }
      have_seed = true;
    } else if (key == "policy") {
      expect_args(1);
      try {
        replay.policy = parse_policy_name(w[1]);
      } catch (const std::invalid_argument& e) {
        throw ReplayFileError(line_number, e.what());
      }
    } else if (key == "pct_depth") {
      expect_args(1);
      if (!parse_integer(w[1], &replay.pct_depth) || replay.pct_depth < 1 ||
          replay.pct_depth > 1000) {
        throw ReplayFileError(line_number,
                              "pct_depth must be 1..1000, got '" + printable(w[1]) + "'");
      }
    } else if (key == "option") {
      expect_args(2);
      if (!replay.options.emplace(std::string(w[1]), std::string(w[2])).second) {
        throw ReplayFileError(line_number, "option '" + printable(w[1]) + "' given twice");
      }
    } else if (key == "fault") {
      expect_args(6);
      if (replay.fault_plan.faults.size() == kFaultsMax) {
        throw ReplayFileError(line_number, "more than " + std::to_string(kFaultsMax) + " faults");
      }
      PlannedFault fault;
      try {
        fault.kind = parse_planned_fault_name(w[1]);
      } catch (const std::invalid_argument& e) {
        throw ReplayFileError(line_number, e.what());
      }
      std::uint64_t at = 0;
      std::uint64_t duration = 0;
      std::uint64_t latency = 0;
      if (!parse_integer(w[2], &at) || !parse_integer(w[3], &fault.a) ||
          !parse_integer(w[4], &fault.b) || !parse_integer(w[5], &duration) ||
          !parse_integer(w[6], &latency) || at > kFaultMicrosMax || duration > kFaultMicrosMax ||
          latency > kFaultMicrosMax) {
        throw ReplayFileError(line_number,
                              "a fault is: fault KIND AT_US HOST_A HOST_B DURATION_US LATENCY_US "
                              "(integers; times up to " +
                                  std::to_string(kFaultMicrosMax) + " us)");
      }
      fault.at = std::chrono::microseconds(at);
      fault.duration = std::chrono::microseconds(duration);
      fault.latency = std::chrono::microseconds(latency);
      replay.fault_plan.faults.push_back(fault);
    } else if (key == "decisions") {
      expect_args(1);
      if (have_decisions) throw ReplayFileError(line_number, "decisions given twice");
      if (!parse_integer(w[1], &decisions_expected) || decisions_expected > kDecisionsMax) {
        throw ReplayFileError(line_number, "decisions count must be 0.." +
                                               std::to_string(kDecisionsMax) + ", got '" +
                                               printable(w[1]) + "'");
      }
      replay.decisions.reserve(std::min<std::size_t>(decisions_expected, 1 << 20));
      have_decisions = true;
    } else if (key == "end") {
      expect_args(0);
      ended = true;
    } else {
      throw ReplayFileError(line_number, "unknown key '" + printable(key) + "'");
    }
  }
  if (!have_version) throw ReplayFileError(0, "empty (no 'trellis-replay' header)");
  if (have_decisions && replay.decisions.size() < decisions_expected) {
    throw ReplayFileError(0, "truncated: " + std::to_string(replay.decisions.size()) + " of " +
                                 std::to_string(decisions_expected) + " decisions");
  }
  if (!ended) throw ReplayFileError(0, "truncated: no 'end' line");
  if (!have_scenario) throw ReplayFileError(0, "missing 'scenario'");
  if (!have_seed) throw ReplayFileError(0, "missing 'seed'");
  if (!have_decisions) throw ReplayFileError(0, "missing 'decisions'");
  return replay;
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
