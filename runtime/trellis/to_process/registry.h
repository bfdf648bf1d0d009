// trellis/to_process/registry.h — worker functions registered by name.
//
//   int add(int a, int b) { return a + b; }
//   TRELLIS_WORKER_FUNCTION("add", add);      // at namespace scope, in any linked file
//
// A process cannot receive a closure, so the parent names the function and the worker (the
// same executable) looks it up here. Parameters are decoded from msgpack by value (decayed
// types), the result encoded; a parameter or result type without msgpack adaptors is a
// compile error here. Put registrations in a file linked into the executable itself (an
// object file of a static library that nothing else references is left out by the linker,
// and its registrations with it). Registering two functions under one name throws std::logic_error
// during static initialization (the program terminates naming it).
#pragma once

#include <functional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <vector>

#include "trellis/to_process/codec.h"

namespace trellis::to_process::internal {

// The arguments sent do not match the function's parameters (count or types).
class ArgumentError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Decodes the msgpack array of arguments, calls the function, returns the packed result.
// Throws what the function throws, or msgpack::type_error for arguments of the wrong shape.
using WorkerFunction = std::function<std::vector<char>(const msgpack::object& arguments)>;

void register_worker_function(std::string_view name, WorkerFunction function);
// The exception's dynamic C++ type, demangled ("std::out_of_range"): how errors are named to
// the other process (to_process's WorkerError, the actors' RemoteActorError).
std::string type_name_of(const std::exception& error);
// nullptr if no function has that name. Thread-safe after static initialization.
const WorkerFunction* find_worker_function(std::string_view name);

template <class R, class... A>
WorkerFunction wrap_worker_function(R (*function)(A...)) {
  static_assert(!std::is_reference_v<R>, "TRELLIS_WORKER_FUNCTION: return by value");
  return [function](const msgpack::object& arguments) -> std::vector<char> {
    if (arguments.type != msgpack::type::ARRAY || arguments.via.array.size != sizeof...(A)) {
      throw ArgumentError("expected " + std::to_string(sizeof...(A)) + " arguments");
    }
    std::tuple<std::decay_t<A>...> decoded;
    try {
      decoded = arguments.as<std::tuple<std::decay_t<A>...>>();
    } catch (const msgpack::type_error&) {
      throw ArgumentError("the arguments do not convert to the function's parameter types");
    }
    if constexpr (std::is_void_v<R>) {
      std::apply(function, std::move(decoded));
      return pack_nil();
    } else {
      return pack_value(std::apply(function, std::move(decoded)));
    }
  };
}

struct Registration {
  template <class F>
  Registration(std::string_view name, F function) {
    register_worker_function(name, wrap_worker_function(+function));
  }
};

}  // namespace trellis::to_process::internal

#define TRELLIS_TO_PROCESS_CONCAT_(a, b) a##b
#define TRELLIS_TO_PROCESS_CONCAT(a, b) TRELLIS_TO_PROCESS_CONCAT_(a, b)
// Registers `function` (a function, or a lambda without captures) under `name`, a string
// literal. At namespace scope.
#define TRELLIS_WORKER_FUNCTION(name, function)                                         \
  static const ::trellis::to_process::internal::Registration TRELLIS_TO_PROCESS_CONCAT( \
      trellis_worker_function_, __COUNTER__) {                                          \
    name, function                                                                      \
  }
