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

#include <functional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

#include "trellis/to_process/frame.h"
#include "trellis/to_process/registry.h"

namespace trellis::actor {
class Context;
}  // namespace trellis::actor

namespace trellis::actor::internal {

// Called with the context of an open_context call, nullptr for a Portal::run call; writes
// the result (one msgpack value, nil for void) into the answer's frame.
using ActorFunction = std::function<void(Context* context, const msgpack::object& arguments,
                                         to_process::FrameBuilder& result)>;

// The arguments as the parameters' types (as to_process's worker functions take them);
// throws ArgumentError.
template <class... A>
std::tuple<std::decay_t<A>...> actor_arguments(const msgpack::object& arguments) {
  using to_process::internal::ArgumentError;
  if (arguments.type != msgpack::type::ARRAY || arguments.via.array.size != sizeof...(A)) {
    throw ArgumentError("expected " + std::to_string(sizeof...(A)) + " arguments");
  }
  try {
    return arguments.as<std::tuple<std::decay_t<A>...>>();
  } catch (const msgpack::type_error&) {
    throw ArgumentError("the arguments do not convert to the function's parameter types");
  }
}

// Calls `call` with the decoded arguments and packs its result into `result`.
template <class R, class Call, class Arguments>
void call_and_pack(Call& call, Arguments&& decoded, to_process::FrameBuilder& result) {
  msgpack::packer<to_process::FrameBuilder> packer(result);
  if constexpr (std::is_void_v<R>) {
    std::apply(call, std::forward<Arguments>(decoded));
    packer.pack_nil();
  } else {
    packer.pack(std::apply(call, std::forward<Arguments>(decoded)));
  }
}

// A function whose first parameter is Context&: run by open_context only.
template <class R, class... A>
ActorFunction wrap_context_function(R (*function)(Context&, A...)) {
  static_assert(!std::is_reference_v<R>, "TRELLIS_ACTOR_FUNCTION: return by value");
  return [function](Context* context, const msgpack::object& arguments,
                    to_process::FrameBuilder& result) {
    if (context == nullptr) {
      throw to_process::internal::ArgumentError(
          "a context function (its first parameter is Context&): call it with "
          "Portal::open_context, not Portal::run");
    }
    auto decoded = actor_arguments<A...>(arguments);
    auto call = [&](auto&&... a) { return function(*context, a...); };
    call_and_pack<R>(call, std::move(decoded), result);
  };
}

template <class... A>
struct FirstIsContext : std::false_type {};
template <class... A>
struct FirstIsContext<Context&, A...> : std::true_type {};

template <class R, class... A>
ActorFunction wrap_actor_function(R (*function)(A...)) {
  if constexpr (FirstIsContext<A...>::value) {
    return wrap_context_function(function);
  } else {
    static_assert(!std::is_reference_v<R>, "TRELLIS_ACTOR_FUNCTION: return by value");
    return
        [function](Context*, const msgpack::object& arguments, to_process::FrameBuilder& result) {
          auto decoded = actor_arguments<A...>(arguments);
          call_and_pack<R>(function, std::move(decoded), result);
        };
  }
}

void register_actor_function(std::string_view name, ActorFunction function);
// nullptr if no function has that name. Read-only after static initialization.
const ActorFunction* find_actor_function(std::string_view name);

struct ActorRegistration {
  template <class F>
  ActorRegistration(std::string_view name, F function) {
    register_actor_function(name, wrap_actor_function(+function));
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
