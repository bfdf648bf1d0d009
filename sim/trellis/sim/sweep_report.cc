#include "trellis/sim/sweep_report.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>

#include "trellis/base/assert.h"

namespace trellis::sim {
namespace {

// A report larger than this is refused unread (1,000,000 seeds take about 70 MB).
constexpr std::uintmax_t kReportBytesMax = std::uintmax_t{1} << 30;
constexpr std::size_t kMissingShown = 10;  // missing shards listed in an error, at most

bool is_clean(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u >= 0x20 && u < 0x7f;
  });
}

bool is_word(std::string_view text) {
  return !text.empty() && is_clean(text) && text.find(' ') == std::string_view::npos;
}

std::string escape(std::string_view text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string seconds_text(std::uint64_t micros) {
  char buffer[48];
  std::snprintf(buffer, sizeof buffer, "%llu.%06llu",
                static_cast<unsigned long long>(micros / 1'000'000),
                static_cast<unsigned long long>(micros % 1'000'000));
  return buffer;
}

std::string suite_name(const SweepReport& r) {
  return "trellis sweep " + r.scenario + (r.shard.total == 1 ? "" : " shard " + r.shard.name());
}

// What a failing test case's body says: the command that reruns the seed.
std::string rerun_command(const SweepReport& r, std::uint64_t seed) {
  std::string command = "replay: trellis run " + r.scenario + " --seed=" + std::to_string(seed);
  if (!r.options.empty()) command += " --options=" + r.options;
  if (r.policy != "random") command += " --policy=" + r.policy;
  return command;
}

// The writer never writes what the parser refuses: the cases are the shard's, ascending.
void check_cases(const SweepReport& r) {
  if (r.seeds == 0 || r.shard.total == 0 || r.shard.index >= r.shard.total) {
    throw std::invalid_argument("sweep report: no seeds, or not a shard");
  }
  const SeedSlice slice = r.slice();  // ShardError (an invalid_argument) if it overflows
  for (std::size_t i = 0; i < r.cases.size(); ++i) {
    if (!slice.contains(r.cases[i].seed) || (i > 0 && r.cases[i - 1].seed >= r.cases[i].seed)) {
      throw std::invalid_argument("sweep report: the cases must be the shard's seeds, ascending");
    }
  }
  if (r.complete ? r.cases.size() != slice.count : r.cases.size() > slice.count) {
    throw std::invalid_argument("sweep report: a complete report has every seed of its shard");
  }
  if (!r.replay.empty() && r.failures() == 0) {
    throw std::invalid_argument("sweep report: a replay file without a failure");
  }
}

void check_fields(const SweepReport& r) {
  if (!is_word(r.scenario)) {
    throw std::invalid_argument("sweep report: the scenario must be one printable word");
  }
  if (!is_clean(r.options) || !is_clean(r.policy) || !is_clean(r.replay)) {
    throw std::invalid_argument("sweep report: options, policy and replay must be printable");
  }
  for (const SweepCase& c : r.cases) {
    if (!is_clean(c.message) || c.failed == c.message.empty()) {
      throw std::invalid_argument(
          "sweep report: a failure's message must be printable and non-empty, a pass's empty");
    }
  }
  check_cases(r);
}

void append_properties(std::string& xml, const SweepReport& r) {
  const std::pair<const char*, std::string> properties[] = {
      {"trellis.sweep_report", std::to_string(SweepReport::kVersion)},
      {"scenario", r.scenario},
      {"options", r.options},
      {"policy", r.policy},
      {"base_seed", std::to_string(r.base_seed)},
      {"seeds", std::to_string(r.seeds)},
      {"shard", r.shard.name()},
      {"complete", r.complete ? "true" : "false"},
      {"replay", r.replay},
  };
  xml += "    <properties>\n";
  for (const auto& [name, value] : properties) {
    xml += "      <property name=\"" + std::string(name) + "\" value=\"" + escape(value) + "\"/>\n";
  }
  xml += "    </properties>\n";
}

}  // namespace

SweepReportError::SweepReportError(const std::string& where, std::size_t line,
                                   const std::string& problem)
    : std::runtime_error("sweep report" + (where.empty() ? std::string() : " " + where) +
                         (line == 0 ? std::string() : ", line " + std::to_string(line)) + ": " +
                         problem),
      line_(line) {}

SeedSlice SweepReport::slice() const {
  return SeedSlice::range(base_seed, seeds).shard(shard.index, shard.total);
}

std::size_t SweepReport::failures() const {
  return static_cast<std::size_t>(
      std::count_if(cases.begin(), cases.end(), [](const SweepCase& c) { return c.failed; }));
}

std::optional<std::uint64_t> SweepReport::first_failure() const {
  const auto it =
      std::find_if(cases.begin(), cases.end(), [](const SweepCase& c) { return c.failed; });
  if (it == cases.end()) return std::nullopt;
  return it->seed;
}

std::string sweep_report_text(std::string_view text, std::size_t max_size) {
  std::string out;
  for (char c : text.substr(0, max_size)) {
    const auto u = static_cast<unsigned char>(c);
    out += u < 0x20 || u == 0x7f ? ' ' : (u > 0x7f ? '?' : c);
  }
  return out;
}

std::string format_sweep_report(const SweepReport& r) {
  check_fields(r);
  std::string xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n";
  xml += "  <testsuite name=\"" + escape(suite_name(r)) + "\" tests=\"" +
         std::to_string(r.cases.size()) + "\" failures=\"" + std::to_string(r.failures()) +
         "\" time=\"" + seconds_text(r.micros) + "\">\n";
  append_properties(xml, r);
  for (const SweepCase& c : r.cases) {
    xml += "    <testcase classname=\"" + escape(r.scenario) + "\" name=\"seed " +
           std::to_string(c.seed) + "\" time=\"" + seconds_text(c.micros) + "\"";
    if (!c.failed) {
      xml += "/>\n";
      continue;
    }
    xml += ">\n      <failure message=\"" + escape(c.message) + "\">" +
           escape(rerun_command(r, c.seed)) + "</failure>\n    </testcase>\n";
  }
  xml += "  </testsuite>\n</testsuites>\n";
  return xml;
}

namespace {

// A report's text line by line. Invariant: line_ is the 1-based number of the line last
// returned by next(), which every error names.
class ReportParser {
 public:
  ReportParser(std::string_view text, const std::string& where) : text_(text), where_(where) {}

  SweepReport parse() {
    expect_exact("<?xml version=\"1.0\" encoding=\"UTF-8\"?>",
                 "not a trellis sweep report (no XML declaration)");
    expect_exact("<testsuites>", "not a trellis sweep report (expected <testsuites>)");
    read_suite_header();
    read_properties();
    check_suite_name();
    while (read_case()) {
    }
    expect_exact("</testsuites>", "expected </testsuites>");
    if (position_ != text_.size()) fail("text after </testsuites>");
    check_totals();
    return std::move(report_);
  }

 private:
  [[noreturn]] void fail(const std::string& problem) const {
    throw SweepReportError(where_, line_, problem);
  }

  std::string_view next() {
    if (position_ >= text_.size()) {
      line_ = 0;
      fail("the report ends early (truncated?)");
    }
    const std::size_t eol = text_.find('\n', position_);
    if (eol == std::string_view::npos) {
      ++line_;
      fail("the last line has no newline (truncated?)");
    }
    const std::string_view line = text_.substr(position_, eol - position_);
    position_ = eol + 1;
    ++line_;
    return line;
  }

  void expect_exact(std::string_view expected, const std::string& problem) {
    if (next() != expected) fail(problem);
  }

  // The escaped value of attribute `name` at the front of `rest` (` name="..."`), consumed.
  std::string attribute(std::string_view& rest, std::string_view name) const {
    const std::string head = " " + std::string(name) + "=\"";
    if (rest.substr(0, head.size()) != head) fail("expected attribute " + std::string(name));
    rest.remove_prefix(head.size());
    const std::size_t quote = rest.find('"');
    if (quote == std::string_view::npos) fail("attribute " + std::string(name) + " not closed");
    std::string value = unescape(rest.substr(0, quote));
    rest.remove_prefix(quote + 1);
    return value;
  }

  std::string unescape(std::string_view text) const {
    static const std::pair<std::string_view, char> kEntities[] = {
        {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}};
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
      const auto u = static_cast<unsigned char>(text[i]);
      if (u < 0x20 || u >= 0x7f || text[i] == '<' || text[i] == '>') {
        fail("a character a report never holds (code " + std::to_string(u) + ")");
      }
      if (text[i] != '&') {
        out += text[i];
        continue;
      }
      const auto* entity =
          std::find_if(std::begin(kEntities), std::end(kEntities),
                       [&](const auto& e) { return text.substr(i, e.first.size()) == e.first; });
      if (entity == std::end(kEntities)) fail("an unknown character reference");
      out += entity->second;
      i += entity->first.size() - 1;
    }
    return out;
  }

  // `<tag` + attributes at `indent`; returns their values and leaves what follows in `rest`.
  std::vector<std::string> element(std::string_view line, std::size_t indent, std::string_view tag,
                                   std::initializer_list<std::string_view> names,
                                   std::string_view& rest) const {
    const std::string head = std::string(indent, ' ') + "<" + std::string(tag);
    if (line.substr(0, head.size()) != head) fail("expected <" + std::string(tag) + ">");
    rest = line.substr(head.size());
    std::vector<std::string> values;
    for (std::string_view name : names) values.push_back(attribute(rest, name));
    return values;
  }

  template <class T>
  T number(std::string_view text, std::string_view what) const {
    T value{};
    const char* end = text.data() + text.size();
    const bool digits =
        !text.empty() && text.find_first_not_of("0123456789") == std::string_view::npos;
    const auto [ptr, ec] = std::from_chars(text.data(), end, value);
    if (!digits || ec != std::errc() || ptr != end) {
      fail(std::string(what) + " is not a decimal number");
    }
    return value;
  }

  // "S.UUUUUU" seconds, as seconds_text writes them.
  std::uint64_t micros(std::string_view text) const {
    const std::size_t dot = text.find('.');
    if (dot == std::string_view::npos || text.size() - dot != 7) fail("a time is not S.UUUUUU");
    const auto whole = number<std::uint64_t>(text.substr(0, dot), "a time");
    if (whole > UINT64_MAX / 1'000'000 - 1) fail("a time is out of range");
    return whole * 1'000'000 + number<std::uint64_t>(text.substr(dot + 1), "a time");
  }

  void read_suite_header() {
    std::string_view rest;
    const std::vector<std::string> v =
        element(next(), 2, "testsuite", {"name", "tests", "failures", "time"}, rest);
    if (rest != ">") fail("unexpected text after <testsuite ...");
    suite_name_ = v[0];
    tests_ = number<std::uint64_t>(v[1], "tests");
    failures_ = number<std::uint64_t>(v[2], "failures");
    report_.micros = micros(v[3]);
  }

  std::string property(std::string_view name) {
    std::string_view rest;
    const std::vector<std::string> v = element(next(), 6, "property", {"name", "value"}, rest);
    if (rest != "/>") fail("unexpected text after <property ...");
    if (v[0] != name) fail("expected property " + std::string(name) + ", got another");
    return v[1];
  }

  void read_properties() {
    expect_exact("    <properties>", "expected <properties> (not a trellis sweep report?)");
    if (property("trellis.sweep_report") != std::to_string(SweepReport::kVersion)) {
      fail("unsupported trellis.sweep_report version (this trellis reads version " +
           std::to_string(SweepReport::kVersion) + ")");
    }
    report_.scenario = property("scenario");
    if (!is_word(report_.scenario)) fail("the scenario is not one word");
    report_.options = property("options");
    report_.policy = property("policy");
    report_.base_seed = number<std::uint64_t>(property("base_seed"), "base_seed");
    report_.seeds = number<std::uint64_t>(property("seeds"), "seeds");
    if (report_.seeds == 0) fail("a sweep of 0 seeds (sweep refuses --seeds=0)");
    try {
      report_.shard = parse_shard(property("shard"), "shard");
      slice_ = report_.slice();
    } catch (const ShardError& e) {
      fail(e.what());
    }
    const std::string complete = property("complete");
    if (complete != "true" && complete != "false") fail("complete is neither true nor false");
    report_.complete = complete == "true";
    report_.replay = property("replay");
    expect_exact("    </properties>", "expected </properties>");
  }

  void check_suite_name() const {
    if (suite_name_ != suite_name(report_)) {
      fail("the suite's name does not match its scenario and shard");
    }
  }

  // One <testcase>, or false at </testsuite>.
  bool read_case() {
    const std::string_view line = next();
    if (line == "  </testsuite>") return false;
    std::string_view rest;
    const std::vector<std::string> v =
        element(line, 4, "testcase", {"classname", "name", "time"}, rest);
    SweepCase c;
    if (v[0] != report_.scenario) fail("a test case of another scenario");
    if (v[1].rfind("seed ", 0) != 0) fail("a test case not named 'seed N'");
    c.seed = number<std::uint64_t>(std::string_view(v[1]).substr(5), "a seed");
    c.micros = micros(v[2]);
    if (rest == ">") {
      read_failure(c);
    } else if (rest != "/>") {
      fail("unexpected text after <testcase ...");
    }
    add_case(std::move(c));
    return true;
  }

  void read_failure(SweepCase& c) {
    std::string_view rest;
    c.message = element(next(), 6, "failure", {"message"}, rest)[0];
    c.failed = true;
    if (c.message.empty()) fail("a failure without a message");
    if (rest != ">" + escape(rerun_command(report_, c.seed)) + "</failure>") {
      fail("a failure's text is not the command that reruns its seed");
    }
    expect_exact("    </testcase>", "expected </testcase>");
  }

  void add_case(SweepCase c) {
    if (!report_.cases.empty() && c.seed <= report_.cases.back().seed) {
      fail("seed " + std::to_string(c.seed) + " is out of order or repeated");
    }
    if (!slice_.contains(c.seed)) {
      fail("seed " + std::to_string(c.seed) + " is not one of shard " + report_.shard.name() +
           "'s seeds");
    }
    report_.cases.push_back(std::move(c));
  }

  void check_totals() {
    line_ = 0;
    if (tests_ != report_.cases.size() || failures_ != report_.failures()) {
      fail("tests=\"" + std::to_string(tests_) + "\" failures=\"" + std::to_string(failures_) +
           "\" do not count its test cases");
    }
    if (report_.complete && report_.cases.size() != slice_.count) {
      fail("says complete but ran " + std::to_string(report_.cases.size()) + " of its " +
           std::to_string(slice_.count) + " seeds");
    }
    if (!report_.replay.empty() && failures_ == 0) fail("a replay file without a failure");
    TRELLIS_ASSERT(report_.cases.size() <= slice_.count);
  }

  std::string_view text_;
  const std::string& where_;
  std::size_t position_ = 0;
  std::size_t line_ = 0;
  SweepReport report_;
  SeedSlice slice_;
  std::string suite_name_;
  std::uint64_t tests_ = 0;
  std::uint64_t failures_ = 0;
};

}  // namespace

SweepReport parse_sweep_report(std::string_view text, const std::string& where) {
  return ReportParser(text, where).parse();
}

SweepReport read_sweep_report(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw SweepReportError(path, 0, "cannot open it");
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  if (size < 0 || static_cast<std::uintmax_t>(size) > kReportBytesMax) {
    throw SweepReportError(path, 0, "not a readable file of at most 1 GiB");
  }
  in.seekg(0);
  std::string text(static_cast<std::size_t>(size), '\0');
  if (!in.read(text.data(), size)) throw SweepReportError(path, 0, "cannot read it");
  return parse_sweep_report(text, path);
}

// Written beside, then renamed: a merge that waits for the shards' reports (the Kubernetes
// recipe) never reads half a report.
void write_sweep_report(const std::string& path, const SweepReport& report) {
  const std::string xml = format_sweep_report(report);
  const std::string partial = path + ".partial";
  std::ofstream out(partial, std::ios::binary | std::ios::trunc);
  out << xml;
  out.close();
  if (!out || std::rename(partial.c_str(), path.c_str()) != 0) {
    std::remove(partial.c_str());
    throw std::runtime_error("cannot write the sweep report " + path);
  }
}

namespace {

// Reports of one sweep and one partition: the same scenario, options, policy, seeds, total.
void check_same_sweep(const std::vector<SweepReport>& reports,
                      const std::vector<std::string>& names) {
  const SweepReport& a = reports.front();
  for (std::size_t i = 1; i < reports.size(); ++i) {
    const SweepReport& b = reports[i];
    if (a.scenario != b.scenario || a.options != b.options || a.policy != b.policy) {
      throw SweepReportError(names[i], 0,
                             "a report of another sweep than " + names.front() +
                                 " (scenario, options or policy differ)");
    }
    if (a.base_seed != b.base_seed || a.seeds != b.seeds || a.shard.total != b.shard.total) {
      throw SweepReportError(
          names[i], 0,
          "overlapping seed ranges: it is shard " + b.shard.name() + " of seeds " +
              std::to_string(b.base_seed) + " (" + std::to_string(b.seeds) + " seeds), " +
              names.front() + " is shard " + a.shard.name() + " of seeds " +
              std::to_string(a.base_seed) + " (" + std::to_string(a.seeds) + " seeds)");
    }
  }
}

// Every shard 0..N-1 exactly once.
void check_every_shard_once(const std::vector<SweepReport>& reports,
                            const std::vector<std::string>& names) {
  const std::uint64_t total = reports.front().shard.total;
  std::map<std::uint64_t, std::size_t> seen;  // shard index -> report
  for (std::size_t i = 0; i < reports.size(); ++i) {
    const auto [it, inserted] = seen.emplace(reports[i].shard.index, i);
    if (!inserted) {
      throw SweepReportError(names[i], 0,
                             "duplicate shard " + reports[i].shard.name() + ": " +
                                 names[it->second] + " is the same shard");
    }
  }
  if (seen.size() == total) return;
  std::string missing;
  std::size_t listed = 0;
  for (std::uint64_t k = 0; k < total && listed < kMissingShown; ++k) {
    if (seen.count(k) != 0) continue;
    missing += (listed++ == 0 ? "" : ", ") + Shard{k, total}.name();
  }
  throw SweepReportError({}, 0,
                         "missing shards: " + std::to_string(total - seen.size()) + " of " +
                             std::to_string(total) + " have no report (" + missing +
                             (total - seen.size() > listed ? ", ..." : "") + ")");
}

}  // namespace

SweepMerge merge_sweep_reports(const std::vector<SweepReport>& reports,
                               const std::vector<std::string>& names) {
  TRELLIS_ASSERT(reports.size() == names.size());
  if (reports.empty()) throw SweepReportError({}, 0, "no reports to merge");
  check_same_sweep(reports, names);
  check_every_shard_once(reports, names);
  const SweepReport& a = reports.front();
  SweepMerge m;
  m.scenario = a.scenario;
  m.options = a.options;
  m.policy = a.policy;
  m.base_seed = a.base_seed;
  m.seeds = a.seeds;
  m.shards = a.shard.total;
  for (std::size_t i = 0; i < reports.size(); ++i) {
    const SweepReport& r = reports[i];
    m.run += r.cases.size();
    m.failed += r.failures();
    if (!r.complete) m.incomplete.push_back(r.shard);
    const std::optional<std::uint64_t> first = r.first_failure();
    if (first && (!m.first_failure || *first < *m.first_failure)) {
      m.first_failure = first;
      m.first_failure_shard = r.shard;
      m.first_failure_report = i;
      m.replay = r.replay;
    }
  }
  std::sort(m.incomplete.begin(), m.incomplete.end(),
            [](const Shard& x, const Shard& y) { return x.index < y.index; });
  TRELLIS_ASSERT(m.run <= m.seeds);
  return m;
}

}  // namespace trellis::sim
