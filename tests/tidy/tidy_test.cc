// Style rules enforced by a test (TigerBeetle's tidy): every rule names its replacement.
//
// Method: walk the source tree (runtime/ fakes/ sim/ scenarios/ tools/ tests/ bench/), read
// every .h/.cc, and check line length, the layering of includes, and a list of banned
// tokens. A failure lists file:line and the rule broken.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
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

}  // namespace
