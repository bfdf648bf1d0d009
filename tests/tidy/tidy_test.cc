// Style rules enforced by a test (TigerBeetle's tidy): every rule names its replacement.
//
// Method: walk the source tree (runtime/ fakes/ sim/ scenarios/ tools/ tests/ bench/), read
// every .h/.cc, and check line length, the layering of includes, a list of banned tokens,
// where internal headers may be included, which containers sim/ may use, and the length of
// functions. A failure lists file:line, the rule broken and what to do instead.
//
// Each rule past the first few is a pure function of (repo path, text) returning its
// violations, so that a self-test can show it fails on a small inline text that breaks it
// (a rule that cannot fail checks nothing). Exceptions are listed next to their rule, one
// entry per file with its reason; an entry marked TEMPORARY names the work that removes it.

// GCC 12 at -O1 under ASan warns that std::regex's internal std::function "may be used
// uninitialized" (a false positive in libstdc++'s regex compiler, not in this file), which
// -Werror turns into a failed sanitizer build.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;

constexpr std::size_t kLineLengthMax = 100;

struct Ban {
  std::string token;
  std::string replacement;
  std::vector<std::string> allowed_under;  // path prefixes where the token is fine
};

std::vector<fs::path> source_files() {
  std::vector<fs::path> files;
  const fs::path root = TRELLIS_SOURCE_DIR;
  for (const char* folder : {"runtime", "fakes", "sim", "scenarios", "tools", "tests", "bench"}) {
    if (!fs::exists(root / folder)) continue;
    for (const auto& entry : fs::recursive_directory_iterator(root / folder)) {
      const fs::path& path = entry.path();
      if (entry.is_regular_file() && (path.extension() == ".h" || path.extension() == ".cc")) {
        files.push_back(path);
      }
    }
  }
  return files;
}

std::string repo_path(const fs::path& path) {
  return fs::relative(path, TRELLIS_SOURCE_DIR).generic_string();
}

bool starts_with_any(const std::string& text, const std::vector<std::string>& prefixes) {
  for (const std::string& prefix : prefixes) {
    if (text.rfind(prefix, 0) == 0) return true;
  }
  return false;
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// One broken rule at one place: `line` counts from 1.
struct Violation {
  int line = 0;
  std::string message;
  std::string subject;  // what broke it (an included path, a declaration), for is_allowed
};

// An exception to a rule: the file (repo path), what in it is allowed (an included path, or
// text from a function's declaration), and why.
struct Allowed {
  std::string file;
  std::string what;
  std::string reason;
};

bool is_allowed(const std::vector<Allowed>& allowed, const std::string& file,
                const std::string& text) {
  for (const Allowed& entry : allowed) {
    if (entry.file == file && text.find(entry.what) != std::string::npos) return true;
  }
  return false;
}

void report(const std::string& file, const std::vector<Violation>& violations) {
  for (const Violation& v : violations) ADD_FAILURE() << file << ":" << v.line << ": " << v.message;
}

// A rule: the violations in one file's text, except those `allowed`.
using Rule = std::vector<Violation> (*)(const std::string& file, const std::string& text,
                                        const std::vector<Allowed>& allowed);

void check_source_tree(Rule rule, const std::vector<Allowed>& allowed) {
  for (const fs::path& path : source_files()) {
    const std::string name = repo_path(path);
    report(name, rule(name, read_file(path), allowed));
  }
}

// The path an #include line names ("" if the line is no #include).
std::string included_path(const std::string& line) {
  static const std::regex include(R"(^\s*#\s*include\s*["<]([^">]+)[">])");
  std::smatch match;
  return std::regex_search(line, match, include) ? match[1].str() : std::string();
}

// The text with comments, string literals and character literals blanked out (newlines
// kept, so line numbers still hold): what the brace and token scanners read.
std::string code_only(const std::string& text) {
  std::string out = text;
  std::size_t i = 0;
  auto blank = [&](std::size_t from, std::size_t to) {
    for (std::size_t k = from; k < to && k < out.size(); ++k) {
      if (out[k] != '\n') out[k] = ' ';
    }
  };
  while (i < text.size()) {
    if (text.compare(i, 2, "//") == 0) {
      const std::size_t end = text.find('\n', i);
      blank(i, end == std::string::npos ? text.size() : end);
      i = end == std::string::npos ? text.size() : end;
    } else if (text.compare(i, 2, "/*") == 0) {
      const std::size_t end = text.find("*/", i + 2);
      const std::size_t stop = end == std::string::npos ? text.size() : end + 2;
      blank(i, stop);
      i = stop;
    } else if (text.compare(i, 2, "R\"") == 0) {
      const std::size_t open = text.find('(', i);
      const std::string close = ")" + text.substr(i + 2, open - i - 2) + "\"";
      const std::size_t end = text.find(close, open);
      const std::size_t stop = end == std::string::npos ? text.size() : end + close.size();
      blank(i + 1, stop);
      i = stop;
    } else if (text[i] == '"' || (text[i] == '\'' && (i == 0 || !std::isxdigit(text[i - 1])))) {
      // (A quote after a hex digit is a digit separator: 20'000.)
      const char quote = text[i];
      std::size_t k = i + 1;
      while (k < text.size() && text[k] != quote && text[k] != '\n') k += text[k] == '\\' ? 2 : 1;
      blank(i + 1, k);
      i = k + 1;
    } else {
      ++i;
    }
  }
  return out;
}

TEST(Tidy, SourceTreeIsFound) {
  EXPECT_GT(source_files().size(), 20u);
}

TEST(Tidy, LinesFitInOneHundredColumns) {
  for (const fs::path& path : source_files()) {
    std::ifstream in(path);
    std::string line;
    for (int number = 1; std::getline(in, line); ++number) {
      EXPECT_LE(line.size(), kLineLengthMax)
          << repo_path(path) << ":" << number << ": line longer than 100 columns";
    }
  }
}

TEST(Tidy, RuntimeNeverIncludesTheLayersAboveIt) {
  for (const fs::path& path : source_files()) {
    const std::string name = repo_path(path);
    const bool in_runtime = name.rfind("runtime/", 0) == 0;
    const bool in_fakes = name.rfind("fakes/", 0) == 0;
    std::ifstream in(path);
    std::string line;
    for (int number = 1; std::getline(in, line); ++number) {
      if (line.rfind("#include", 0) != 0) continue;
      if (in_runtime) {
        EXPECT_EQ(line.find("trellis/fakes"), std::string::npos)
            << name << ":" << number << ": runtime/ must not include fakes/ (layers point down)";
      }
      if (in_runtime || in_fakes) {
        EXPECT_EQ(line.find("trellis/sim"), std::string::npos)
            << name << ":" << number << ": runtime/ and fakes/ must not include sim/";
      }
    }
  }
}

TEST(Tidy, BannedTokensNameTheirReplacement) {
  const std::vector<Ban> bans = {
      {"std::random_device", "trellis::Prng with a seed (determinism)", {}},
      {"std::mt19937", "trellis::Prng with a seed (output fixed by our code)", {}},
      {"uniform_int_distribution", "Prng::below (library distributions vary)", {}},
      {" rand(", "trellis::Prng", {}},
      {"std::rand(", "trellis::Prng", {}},
      // tools/ may read the host's clock: a sweep's progress line times the host process,
      // never a run.
      {"steady_clock::now",
       "the run's Clock (current_time())",
       {"runtime/trellis/posix/", "bench/", "tools/"}},
      {"system_clock::now",
       "the run's Clock (current_time())",
       {"runtime/trellis/posix/", "bench/"}},
      {"std::this_thread::sleep_for",
       "trellis::sleep",
       {"runtime/trellis/posix/", "bench/", "tests/"}},
      {"FIX"
       "ME",
       "fixing it before merging",
       {}},
  };
  for (const fs::path& path : source_files()) {
    const std::string name = repo_path(path);
    if (name.rfind("tests/tidy/", 0) == 0) continue;
    std::ifstream in(path);
    std::string line;
    for (int number = 1; std::getline(in, line); ++number) {
      for (const Ban& ban : bans) {
        if (line.find(ban.token) == std::string::npos) continue;
        if (starts_with_any(name, ban.allowed_under)) continue;
        ADD_FAILURE() << name << ":" << number << ": '" << ban.token << "' is banned here; use "
                      << ban.replacement;
      }
    }
  }
}

// ---- core/ never includes posix/ --------------------------------------------------------
// The core knows the Clock and Backend interfaces only; the real ones (posix/) sit beside the
// simulated ones, above it.

const std::vector<Allowed> kCoreIncludesPosixAllowed = {};

std::vector<Violation> core_includes_posix(
    const std::string& file, const std::string& text,
    const std::vector<Allowed>& allowed = kCoreIncludesPosixAllowed) {
  std::vector<Violation> out;
  if (file.rfind("runtime/trellis/core/", 0) != 0) return out;
  const std::vector<std::string> lines = split_lines(text);
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const std::string path = included_path(lines[i]);
    if (path.rfind("trellis/posix/", 0) != 0) continue;
    if (is_allowed(allowed, file, path)) continue;
    out.push_back({static_cast<int>(i + 1),
                   "core/ must not include " + path +
                       "; use the Clock / Backend interfaces (core/clock.h, core/backend.h) "
                       "and let the caller pass the real ones",
                   path});
  }
  return out;
}

TEST(Tidy, CoreNeverIncludesPosix) {
  check_source_tree(core_includes_posix, kCoreIncludesPosixAllowed);
}

TEST(TidySelfTest, CoreIncludingPosixFails) {
  EXPECT_EQ(core_includes_posix("runtime/trellis/core/nursery.cc",
                                "#include \"trellis/posix/epoll_backend.h\"\n")
                .size(),
            1u);
  EXPECT_TRUE(core_includes_posix("runtime/trellis/io/tcp.cc",
                                  "#include \"trellis/posix/epoll_backend.h\"\n")
                  .empty());
}

// ---- internal/ headers stay in their component --------------------------------------------
// `trellis/X/internal/...` may be included only by files under the folder holding that
// internal/ folder: <top>/trellis/X/** (runtime/trellis/core/**, sim/trellis/sim/**, ...).
// Anyone else uses X's public headers. tests/ and bench/ may include an internal header only
// when listed here, for a unit test or benchmark of an internal piece that nothing public
// reaches as directly (rare: most internals are tested through their component's API).

const std::vector<Allowed> kInternalIncludeAllowed = {
    {"tests/runtime/core/deadline_heap_test.cc", "trellis/core/internal/deadline_heap.h",
     "unit test of the deadline heap itself (its invariants and its order under ties)"},
    {"bench/trellis_bench.cc", "trellis/core/internal/deadline_heap.h",
     "benchmarks the deadline heap itself (DESIGN: a performance trick behind a small API, "
     "documented and benchmarked)"},
    {"tests/runtime/core/wakeup_prefetch_test.cc", "trellis/core/internal/wakeup_prefetch.h",
     "unit test of the next sleeper's prefetch (its learned distance and its fallback)"},
    {"tests/runtime/core/wakeup_prefetch_test.cc", "trellis/core/internal/runner.h",
     "checks the frame-layout assumption on the running Runner's prefetch, in a real run"},
};

std::vector<Violation> internal_includes(
    const std::string& file, const std::string& text,
    const std::vector<Allowed>& allowed = kInternalIncludeAllowed) {
  std::vector<Violation> out;
  static const std::regex internal_path(R"(^(trellis/.+)/internal/)");
  const std::vector<std::string> lines = split_lines(text);
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const std::string path = included_path(lines[i]);
    std::smatch match;
    if (!std::regex_search(path, match, internal_path)) continue;
    const std::string component = match[1].str() + "/";  // trellis/core/
    const std::size_t slash = file.find('/');
    const bool inside =
        slash != std::string::npos && file.compare(slash + 1, component.size(), component) == 0;
    if (inside || is_allowed(allowed, file, path)) continue;
    out.push_back({static_cast<int>(i + 1),
                   path + " is internal to " + component +
                       ": include that component's public headers (or give it a public "
                       "way to do this)",
                   path});
  }
  return out;
}

TEST(Tidy, InternalHeadersAreIncludedOnlyByTheirComponent) {
  check_source_tree(internal_includes, kInternalIncludeAllowed);
}

TEST(TidySelfTest, IncludingAnotherComponentsInternalHeaderFails) {
  const std::string include = "#include \"trellis/core/internal/fiber.h\"\n";
  EXPECT_TRUE(internal_includes("runtime/trellis/core/task.h", include).empty());
  EXPECT_TRUE(internal_includes("runtime/trellis/core/internal/runner.h", include).empty());
  EXPECT_EQ(internal_includes("runtime/trellis/io/tcp.cc", include).size(), 1u);
  EXPECT_EQ(internal_includes("sim/trellis/sim/world.cc", include).size(), 1u);
  EXPECT_EQ(
      internal_includes("tests/runtime/core/x_test.cc", "#include <trellis/core/internal/x.h>\n")
          .size(),
      1u);
}

// ---- sim/ iterates in an order fixed by the code ------------------------------------------
// No hash containers (Abseil's hash is salted per process, std's order is unspecified) and no
// ordered containers keyed by a pointer (the order of addresses changes from run to run).

const std::vector<Allowed> kSimContainerAllowed = {};

std::vector<Violation> sim_containers(const std::string& file, const std::string& text,
                                      const std::vector<Allowed>& allowed = kSimContainerAllowed) {
  std::vector<Violation> out;
  if (file.rfind("sim/", 0) != 0) return out;
  static const std::regex hashed(
      R"(\b(unordered_map|unordered_set|unordered_multimap|unordered_multiset|flat_hash_map|)"
      R"(flat_hash_set|node_hash_map|node_hash_set)\b)");
  static const std::regex pointer_keyed(
      R"(\b(map|set|multimap|multiset)\s*<\s*(const\s+)?[\w:]+(\s*<[^<>]*>)?\s*(const\s*)?\*)");
  const std::vector<std::string> lines = split_lines(code_only(text));
  for (std::size_t i = 0; i < lines.size(); ++i) {
    std::smatch match;
    std::string why;
    if (std::regex_search(lines[i], match, hashed)) {
      why = match[1].str() +
            " iterates in a salted or unspecified order; use std::map / "
            "std::set keyed by a stable id";
    } else if (std::regex_search(lines[i], match, pointer_keyed)) {
      why = "a " + match[1].str() +
            " keyed by a pointer iterates in address order; key it by "
            "a stable id (task id, host index, handle number)";
    } else {
      continue;
    }
    if (is_allowed(allowed, file, match[0].str())) continue;
    out.push_back({static_cast<int>(i + 1), why, match[0].str()});
  }
  return out;
}

TEST(Tidy, SimContainersIterateInAnOrderTheCodeFixes) {
  check_source_tree(sim_containers, kSimContainerAllowed);
}

TEST(TidySelfTest, HashedAndPointerKeyedContainersInSimFail) {
  for (const char* bad :
       {"std::unordered_map<int, int> m;", "absl::flat_hash_set<Host*> s;",
        "std::map<Task*, int> m;", "std::set<const lowlevel::Task*> s;",
        "std::map<const Host *, std::string> m;", "std::multimap<Foo<int>*, int> m;"}) {
    EXPECT_EQ(sim_containers("sim/trellis/sim/x.cc", bad).size(), 1u) << bad;
    EXPECT_TRUE(sim_containers("runtime/trellis/core/x.cc", bad).empty()) << bad;
  }
  for (const char* good : {"std::map<std::uint64_t, Task*> m;", "std::set<std::string> s;",
                           "// no unordered_map here", "std::map<std::pair<int, int>, X*> m;"}) {
    EXPECT_TRUE(sim_containers("sim/trellis/sim/x.cc", good).empty()) << good;
  }
}

// ---- functions fit on a screen --------------------------------------------------------------
// A function body is at most kFunctionLinesMax lines, counted from the line of its opening
// brace to the line of its closing brace. In scope: the .cc files of runtime/ fakes/ sim/
// scenarios/ tools/ (not tests/ nor bench/: a TEST body is a list of checks, and a port of a
// Trio test follows Trio's length).
//
// Method: a brace-matching scan of the text with comments and literals blanked out. An
// opening brace is a function body when no function body is open around it and the code
// before it ends with `)` or a qualifier (const, noexcept, override, final, mutable, a
// trailing return type): so functions at namespace level and member functions defined in a
// class body count, lambdas and blocks inside a function count toward the function, and
// namespaces, classes and initializers are not functions. (A constructor whose initializer
// list ends in a braced member initializer is missed; it is still read as code.)

constexpr int kFunctionLinesMax = 70;

const std::vector<Allowed> kLongFunctionAllowed = {
    {"fakes/trellis/fakes/check_streams.cc", "void check_one_way(",
     "a port of Trio's check_one_way_stream: one section per behaviour, in Trio's order, so the "
     "two read side by side"},
    {"fakes/trellis/fakes/check_streams.cc", "void check_half_closeable(",
     "a port of Trio's check_half_closeable_stream, as check_one_way"},
};

bool opens_function_body(const std::string& code, std::size_t brace) {
  static const std::regex tail(
      R"((\)|\bconst|\bnoexcept|\boverride|\bfinal|\bmutable|->\s*[\w:<>,&*\s]+)\s*$)");
  const std::size_t from = brace > 200 ? brace - 200 : 0;
  const std::string before = code.substr(from, brace - from);
  return std::regex_search(before, tail);
}

// The declaration before the brace at `brace`: the text since the previous `;`, `{` or `}`.
std::string declaration_before(const std::string& code, std::size_t brace) {
  const std::size_t start = code.find_last_of(";{}", brace == 0 ? 0 : brace - 1);
  return code.substr(start == std::string::npos ? 0 : start + 1,
                     brace - (start == std::string::npos ? 0 : start + 1));
}

std::vector<Violation> long_functions(const std::string& file, const std::string& text,
                                      const std::vector<Allowed>& allowed = kLongFunctionAllowed) {
  std::vector<Violation> out;
  if (file.size() < 3 || file.compare(file.size() - 3, 3, ".cc") != 0) return out;
  bool in_scope = false;
  for (const char* top : {"runtime/", "fakes/", "sim/", "scenarios/", "tools/"}) {
    in_scope = in_scope || file.rfind(top, 0) == 0;
  }
  if (!in_scope) return out;
  std::string code = code_only(text);
  // Preprocessor lines are not code that opens braces.
  for (std::size_t at = 0; at < code.size();) {
    const std::size_t end = std::min(code.find('\n', at), code.size());
    const std::size_t first = code.find_first_not_of(" \t", at);
    if (first < end && code[first] == '#') std::fill(code.begin() + at, code.begin() + end, ' ');
    at = end + 1;
  }
  struct Open {
    int line;
    std::size_t at;
    bool function;
  };
  std::vector<Open> open;
  int line = 1;
  int functions_open = 0;
  for (std::size_t i = 0; i < code.size(); ++i) {
    if (code[i] == '\n') {
      ++line;
    } else if (code[i] == '{') {
      const bool function = functions_open == 0 && opens_function_body(code, i);
      open.push_back({line, i, function});
      if (function) ++functions_open;
    } else if (code[i] == '}' && !open.empty()) {
      const Open body = open.back();
      open.pop_back();
      if (!body.function) continue;
      --functions_open;
      const int length = line - body.line + 1;
      if (length <= kFunctionLinesMax) continue;
      const std::string declaration = declaration_before(code, body.at);
      if (is_allowed(allowed, file, declaration)) continue;
      out.push_back({body.line,
                     "function body of " + std::to_string(length) + " lines (at most " +
                         std::to_string(kFunctionLinesMax) + "); extract well-named functions",
                     declaration});
    }
  }
  return out;
}

TEST(Tidy, FunctionsAreAtMostSeventyLines) {
  check_source_tree(long_functions, kLongFunctionAllowed);
}

// n lines of body between the braces of `head`.
std::string function_text(const std::string& head, int body_lines) {
  std::string text = head + " {\n";
  for (int i = 0; i < body_lines; ++i) text += "  call(\"}{\");  // }\n";
  return text + "}\n";
}

TEST(TidySelfTest, LongFunctionsFailAndTheirLambdasCountTowardThem) {
  const std::string file = "runtime/trellis/core/x.cc";
  EXPECT_TRUE(long_functions(file, function_text("void f()", 68)).empty());  // 70 lines
  const std::vector<Violation> found =
      long_functions(file, "// one\n" + function_text("void f() const", 69));  // 71
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].line, 2);
  EXPECT_EQ(long_functions(file, "namespace x {\nclass C {\n" +
                                     function_text("  int m() noexcept", 69) + "};\n}\n")
                .size(),
            1u);
  // A lambda inside: the enclosing function is what counts, once.
  EXPECT_EQ(long_functions(file, function_text("void f()", 40) + "\n" +
                                     function_text("void g() {\n  auto l = [](int a)", 69) + "}\n")
                .size(),
            1u);
  EXPECT_TRUE(long_functions("tests/core/x_test.cc", function_text("TEST(A, B)", 90)).empty());
  EXPECT_TRUE(long_functions(file, "namespace x {\n" + std::string(90, '\n') + "}\n").empty());
}

// ---- every exception is still needed ------------------------------------------------------
// An entry whose file no longer breaks its rule in the way it names must go (so a TEMPORARY
// entry cannot outlive the work that removes it unnoticed).

void expect_every_entry_needed(const char* rule_name, Rule rule,
                               const std::vector<Allowed>& allowed) {
  for (const Allowed& entry : allowed) {
    const fs::path path = fs::path(TRELLIS_SOURCE_DIR) / entry.file;
    bool needed = false;
    if (fs::exists(path)) {
      for (const Violation& v : rule(entry.file, read_file(path), {})) {
        needed = needed || v.subject.find(entry.what) != std::string::npos;
      }
    }
    EXPECT_TRUE(needed) << entry.file << ": the " << rule_name << " exception for '" << entry.what
                        << "' is no longer needed; delete it";
  }
}

TEST(Tidy, EveryExceptionIsStillNeeded) {
  expect_every_entry_needed("core-includes-posix", core_includes_posix, kCoreIncludesPosixAllowed);
  expect_every_entry_needed("internal-include", internal_includes, kInternalIncludeAllowed);
  expect_every_entry_needed("sim-container", sim_containers, kSimContainerAllowed);
  expect_every_entry_needed("function-length", long_functions, kLongFunctionAllowed);
}

}  // namespace
