// trellis/actor/registry.cc — see registry.h.

#include "trellis/actor/registry.h"

#include <map>
#include <stdexcept>
#include <string>

namespace trellis::actor::internal {
namespace {

// Filled during static initialization, read-only afterwards. A function-local static:
// registrations in other files may run before this file's statics.
std::map<std::string, ActorFunction, std::less<>>& registry() {
  static std::map<std::string, ActorFunction, std::less<>> functions;
  return functions;
}

}  // namespace

void register_actor_function(std::string_view name, ActorFunction function) {
  if (name.empty()) throw std::logic_error("TRELLIS_ACTOR_FUNCTION: the name is empty");
  auto [it, inserted] = registry().emplace(std::string(name), std::move(function));
  if (!inserted) {
    throw std::logic_error("TRELLIS_ACTOR_FUNCTION: two functions are registered as '" +
                           std::string(name) + "'");
  }
}

const ActorFunction* find_actor_function(std::string_view name) {
  auto it = registry().find(name);
  return it == registry().end() ? nullptr : &it->second;
}

}  // namespace trellis::actor::internal
