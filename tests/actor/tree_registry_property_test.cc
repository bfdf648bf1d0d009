// The root's registry (trellis/actor/tree_registry.h) against a model: after any sequence of
// registrations and subtree removals, find(name) is the earliest registered live actor of
// that name, and remove_subtree(uid) removes uid and its descendants only ("r.2" takes
// "r.2.1" but never "r.20").
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "trellis/actor/tree_registry.h"
#include "trellis/trellis.h"

namespace trellis::actor::internal {
namespace {

// A uid of the tree "r.a.b..." with small numbers, so prefixes like "r.2" / "r.20" collide.
rc::Gen<std::string> uid_gen() {
  return rc::gen::map(rc::gen::container<std::vector<int>>(rc::gen::inRange(1, 4)),
                      [](const std::vector<int>& path) {
                        std::string uid = "r";
                        for (std::size_t i = 0; i < path.size() && i < 3; ++i) {
                          uid += "." + std::to_string(path[i] == 3 ? 20 : path[i]);
                        }
                        return uid;
                      });
}

bool below(const std::string& uid, const std::string& root) {
  return uid == root ||
         (uid.size() > root.size() && uid.starts_with(root) && uid[root.size()] == '.');
}

RC_GTEST_PROP(ActorTreeRegistryProperty, FindIsTheEarliestLiveAndSubtreesGoWhole, ()) {
  struct Step {
    bool add;
    std::string uid;
    int name;
  };
  const auto steps = *rc::gen::container<std::vector<Step>>(rc::gen::build<Step>(
      rc::gen::set(&Step::add, rc::gen::weightedElement<bool>({{3, true}, {1, false}})),
      rc::gen::set(&Step::uid, uid_gen()), rc::gen::set(&Step::name, rc::gen::inRange(0, 3))));
  trellis::run([&] {
    TreeRegistry registry;
    std::map<std::string, std::pair<int, std::uint64_t>> model;  // uid -> {name, order}
    std::uint64_t order = 0;
    for (const Step& step : steps) {
      if (step.add) {
        registry.add({"n" + std::to_string(step.name), step.uid, "127.0.0.1", 1});
        model[step.uid] = {step.name, order++};
      } else {
        registry.remove_subtree(step.uid);
        std::erase_if(model, [&](const auto& entry) { return below(entry.first, step.uid); });
      }
      RC_ASSERT(registry.size() == model.size());
      for (int name = 0; name < 3; ++name) {
        const std::string* expected = nullptr;
        std::uint64_t best = 0;
        for (const auto& [uid, value] : model) {
          if (value.first == name && (expected == nullptr || value.second < best)) {
            expected = &uid;
            best = value.second;
          }
        }
        const std::optional<TreeEntry> found = registry.find("n" + std::to_string(name));
        RC_ASSERT(found.has_value() == (expected != nullptr));
        if (found) RC_ASSERT(found->uid == *expected);
      }
    }
  });
}

}  // namespace
}  // namespace trellis::actor::internal
