// trellis/to_process/registry.cc — see registry.h.

#include "trellis/to_process/registry.h"

#include <cxxabi.h>

#include <cstdlib>
#include <map>
#include <memory>
#include <stdexcept>
#include <typeinfo>

namespace trellis::to_process::internal {
namespace {

// Filled during static initialization, read-only afterwards (so lookups need no lock).
// A function-local static: registrations in other files may run before this file's statics.
std::map<std::string, WorkerFunction, std::less<>>& registry() {
  static std::map<std::string, WorkerFunction, std::less<>> functions;
  return functions;
}

}  // namespace

void register_worker_function(std::string_view name, WorkerFunction function) {
  if (name.empty()) throw std::logic_error("TRELLIS_WORKER_FUNCTION: the name is empty");
  auto [it, inserted] = registry().emplace(std::string(name), std::move(function));
  if (!inserted) {
    throw std::logic_error("TRELLIS_WORKER_FUNCTION: two functions are registered as '" +
                           std::string(name) + "'");
  }
}

std::string type_name_of(const std::exception& error) {
  const char* mangled = typeid(error).name();
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> name(
      abi::__cxa_demangle(mangled, nullptr, nullptr, &status), std::free);
  return status == 0 && name != nullptr ? std::string(name.get()) : std::string(mangled);
}

const WorkerFunction* find_worker_function(std::string_view name) {
  auto it = registry().find(name);
  return it == registry().end() ? nullptr : &it->second;
}

}  // namespace trellis::to_process::internal
