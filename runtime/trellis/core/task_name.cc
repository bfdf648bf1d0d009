// Task naming: lowlevel::Task::name() (core/task.h), computed on first use.
//
// A task spawned without SpawnOptions::name is named after what it runs: a plain function by
// its symbol (when the executable exports its symbols), a lambda by its demangled type with
// the call operators left out ("f()::{lambda()#1}::{lambda()#2}").
#include <cxxabi.h>
#include <dlfcn.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "trellis/core/task.h"

namespace trellis::lowlevel {
namespace {

std::string demangle(const char* mangled) {
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> demangled(
      abi::__cxa_demangle(mangled, nullptr, nullptr, &status), &std::free);
  return status == 0 && demangled != nullptr ? std::string(demangled.get()) : std::string(mangled);
}

// Shortens a demangled lambda type: "f()::{lambda()#1}::operator()() const::{lambda()#2}"
// becomes "f()::{lambda()#1}::{lambda()#2}" (the call operators add nothing to a name).
std::string shorten_lambda_name(std::string name) {
  static constexpr std::string_view kCallOperator = "::operator()(";
  std::size_t at = 0;
  while ((at = name.find(kCallOperator, at)) != std::string::npos) {
    std::size_t end = at + kCallOperator.size();
    int depth = 1;
    while (end < name.size() && depth > 0) {
      if (name[end] == '(') ++depth;
      if (name[end] == ')') --depth;
      ++end;
    }
    static constexpr std::string_view kConst = " const";
    if (name.compare(end, kConst.size(), kConst) == 0) end += kConst.size();
    name.erase(at, end - at);
  }
  return name;
}

}  // namespace

const std::string& Task::name() const {
  internal::TaskExtras& extras = this->extras();
  if (extras.name.empty()) {
    const internal::TaskNameSource source = name_source();
    std::string name;
    if (source.function != nullptr) {
      Dl_info info{};
      if (::dladdr(source.function, &info) != 0 && info.dli_sname != nullptr) {
        name = demangle(info.dli_sname);
      }
    }
    if (name.empty() && source.type != nullptr) {
      name = shorten_lambda_name(demangle(source.type->name()));
    }
    if (name.empty()) name = "task";
    extras.name = std::move(name);
  }
  return extras.name;
}

}  // namespace trellis::lowlevel
