// trellis/actor/registry.h — functions an actor may run, registered by name.
//
//   int add(int a, int b) { return a + b; }
//   TRELLIS_ACTOR_FUNCTION("add", add);     // at namespace scope, in a file of the executable
//
// A parent names the function and the child actor (the same executable) looks it up here.
// Arguments and results are msgpack-encoded exactly as to_process's worker functions
// (to_process/registry.h: the same wrapper, the same compile-time check for adaptors), but
// an actor function runs as a task of the child's run loop: it may sleep, do I/O, open
// nurseries and actor nurseries of its own (grandchildren), and it is cancellable.
#pragma once

#include <string_view>

#include "trellis/to_process/registry.h"

namespace trellis::actor::internal {

using ActorFunction = to_process::internal::WorkerFunction;

void register_actor_function(std::string_view name, ActorFunction function);
// nullptr if no function has that name. Read-only after static initialization.
const ActorFunction* find_actor_function(std::string_view name);

struct ActorRegistration {
  template <class F>
  ActorRegistration(std::string_view name, F function) {
    register_actor_function(name, to_process::internal::wrap_worker_function(+function));
  }
};

}  // namespace trellis::actor::internal

// Registers `function` (a function, or a lambda without captures) under `name`, a string
// literal. At namespace scope. Two functions under one name: std::logic_error at startup.
#define TRELLIS_ACTOR_FUNCTION(name, function)                                          \
  static const ::trellis::actor::internal::ActorRegistration TRELLIS_TO_PROCESS_CONCAT( \
      trellis_actor_function_, __COUNTER__) {                                           \
    name, function                                                                      \
  }
