// trellis::check on histories no one here wrote: Porcupine's etcd and key-value histories and
// Knossos's cas-register histories (tests/data/histories, converted by
// tests/check/convert_histories.py), each with the verdict its own project's tests assert.
// Every history must get exactly that verdict, within the default bounds (kUnknown fails).
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <string>
#include <vector>

#include "trellis/check.h"

namespace trellis::check {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> history_files() {
  std::vector<std::string> out;
  const fs::path dir = fs::path(TRELLIS_SOURCE_DIR) / "tests/data/histories";
  for (const fs::directory_entry& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.ends_with(".txt") && !name.starts_with("LICENSE")) out.push_back(name);
  }
  std::sort(out.begin(), out.end());
  return out;
}

class PublicHistory : public testing::TestWithParam<std::string> {};

TEST_P(PublicHistory, GetsItsKnownVerdict) {
  const fs::path path = fs::path(TRELLIS_SOURCE_DIR) / "tests/data/histories" / GetParam();
  const HistoryFile h = read_history_file(path.string());
  ASSERT_TRUE(h.expect.has_value()) << path;
  const CheckResult r = check_linearizable(h.operations, *make_model(h.model, h.initial));
  EXPECT_EQ(r.verdict, *h.expect) << GetParam() << ": " << r.explanation;
  RecordProperty("operations", static_cast<int>(h.operations.size()));
  RecordProperty("steps", static_cast<int>(r.steps));
}

std::string test_name(const testing::TestParamInfo<std::string>& info) {
  std::string name = info.param.substr(0, info.param.size() - 4);
  std::replace_if(
      name.begin(), name.end(), [](char c) { return !std::isalnum(static_cast<unsigned char>(c)); },
      '_');
  return name;
}

INSTANTIATE_TEST_SUITE_P(Data, PublicHistory, testing::ValuesIn(history_files()), test_name);

TEST(PublicHistories, TheWholeSetIsThere) {
  const std::vector<std::string> files = history_files();
  const auto count = [&](const char* prefix) {
    return std::count_if(files.begin(), files.end(),
                         [&](const std::string& f) { return f.starts_with(prefix); });
  };
  EXPECT_EQ(count("porcupine-etcd_"), 102);
  EXPECT_EQ(count("porcupine-kv-"), 6);
  EXPECT_EQ(count("knossos-cas-good-"), 113);
  EXPECT_EQ(count("knossos-cas-bad-"), 7);
}

}  // namespace
}  // namespace trellis::check
