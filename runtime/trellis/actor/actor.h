// trellis/actor/actor.h — actor nurseries and portals (tractor's model); see trellis/actor.h.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "trellis/actor/context.h"
#include "trellis/actor/errors.h"
#include "trellis/base/function_ref.h"
#include "trellis/core/cancel_scope.h"
#include "trellis/core/time.h"
#include "trellis/to_process/codec.h"

namespace trellis::actor {

// The argument that marks a child actor's command line (argv[1]).
inline constexpr std::string_view kActorFlag = "--trellis-actor";

// In main(), before anything else: in a child actor process it runs the actor (serving its
// parent's calls until the parent cancels it or vanishes), then exits the process (never
// returns). In any other process it returns at once. Same contract as
// to_process::maybe_run_worker (both may be called, in either order).
void maybe_run_actor(int argc, char** argv);

// The name of the actor this code runs in: its name in a child actor, "root" elsewhere (a
// task-local: in a World several actors share one process).
std::string current_actor_name();

// A child actor as a fake program of the simulator: argv as the parent built it (argv[0] the
// executable, argv[1] kActorFlag). Inside a World, install it under the executable's name on
// every host that starts actors, and the same actor code runs over simulated TCP:
//   host.install_program(std::string(to_process::kSelfExecutable), [](sim::ProgramIo& io) {
//     return actor::serve_actor_program(io.argv);
//   });
// Returns the exit status (as maybe_run_actor's process would).
int serve_actor_program(const std::vector<std::string>& argv);

struct ActorOptions {
  std::string executable{};  // empty: this executable (/proc/self/exe)
  // Empty: the child runs on this actor's machine. In a simulated World: the host (name or
  // address) to start the child actor on, so partitions, crashes and slow links between
  // actors can be tested; the actor nursery must then listen on an address other hosts can
  // reach (ActorNurseryOptions::address on the root's, e.g. its host's address), else
  // start_actor throws UsageError. The real backend has one machine and refuses a host
  // (UsageError from open_process): starting the child here instead would quietly make a
  // test of partitions test nothing.
  std::string host{};
};

struct ActorNurseryOptions {
  // How long each step of stopping a child waits for it to exit: the cancel request, then
  // SIGTERM, then SIGKILL (see ActorNursery).
  Duration cancel_grace = std::chrono::seconds(3);
  // How long start_actor waits for a new child to connect and say hello before it kills it
  // and raises BrokenActorError.
  Duration start_timeout = std::chrono::seconds(60);
  // Where this actor listens for its children and for the other actors of the tree (a
  // numeric address). Empty: the actor's address — for the root 127.0.0.1 (the first actor
  // nursery of a root fixes it for the whole root), for a child the one its parent chose
  // (its ActorOptions::host, else the parent's). In a World with actors on several hosts,
  // give the root's nursery its host's address.
  std::string address{};
};

class ActorNursery;

// The caller's handle on one child actor, owned by its nursery (valid until the nursery exits).
class Portal {
 public:
  struct State;
  explicit Portal(std::unique_ptr<State> state);
  Portal(const Portal&) = delete;
  Portal& operator=(const Portal&) = delete;
  ~Portal();

  // Runs the registered function `function` in the actor and returns its result (R: a type
  // with msgpack adaptors; void ignores it). A checkpoint. Throws RemoteActorError (the
  // function threw there; the actor keeps serving), BrokenActorError (the actor is gone),
  // msgpack::type_error (the result is not an R). Cancelling the caller cancels the remote
  // call (a cancel request is sent; the caller does not wait for the remote task to finish).
  template <class R = void, class... Args>
  R run(std::string_view function, const Args&... args) {
    // (The arguments are packed straight into the call's frame.)
    std::vector<char> value = run_writing(function, [&](to_process::FrameBuilder& frame) {
      msgpack::packer<to_process::FrameBuilder> packer(frame);
      packer.pack_array(sizeof...(Args));
      (packer.pack(args), ...);
    });
    if constexpr (!std::is_void_v<R>) return decode<R>(value);
  }
  // Runs a context function (its first parameter Context&) in the actor: see context.h.
  // Returns once the call is sent; ctx->first<T>() waits for the callee's started value.
  template <class... Args>
  ContextHandle open_context(std::string_view function, const Args&... args) {
    return open_context_packed(function, to_process::internal::pack_arguments(args...));
  }
  ContextHandle open_context_packed(std::string_view function, std::vector<char> arguments);
  // run_in_actor's result: waits for it. Throws what run would have thrown.
  template <class R>
  R result() {
    std::vector<char> value = result_packed();
    if constexpr (!std::is_void_v<R>) return decode<R>(value);
  }
  // Asks the actor to cancel everything and exit, waits for it (SIGTERM, then SIGKILL, each
  // after the nursery's cancel_grace) and reaps it. Shielded; idempotent.
  void cancel_actor();
  const std::string& actor_name() const;
  int pid() const;
  // The child's return code once it has exited and been reaped (0: it exited cleanly, minus
  // a signal number: killed), else nullopt. Not a checkpoint.
  std::optional<int> returncode();

  std::vector<char> run_packed(std::string_view function, std::vector<char> arguments);
  // run_packed with the arguments written into the call's frame by `write_arguments` (one
  // msgpack array).
  std::vector<char> run_writing(std::string_view function,
                                FunctionRef<void(to_process::FrameBuilder&)> write_arguments);
  std::vector<char> result_packed();
  State& state() noexcept { return *state_; }

 private:
  template <class R>
  static R decode(const std::vector<char>& value) {
    return to_process::internal::unpack_as<R>(value);
  }
  std::unique_ptr<State> state_;
};

// Spawns child actors (processes) and supervises them; opened by open_actor_nursery.
//
// When the body returns, the nursery waits for every run_in_actor result, then stops the
// remaining children (cancel request; SIGTERM after cancel_grace; SIGKILL after another) and
// reaps them: no child process outlives the nursery. A run_in_actor error (RemoteActorError,
// BrokenActorError) is an error of the nursery like a task's: it cancels the body and the
// other children and is raised from open_actor_nursery (in an ExceptionGroup). An error or a
// cancellation in the body stops every child the same way. Cancelling cancel_scope() is not
// an error.
class ActorNursery {
 public:
  struct State;
  explicit ActorNursery(std::unique_ptr<State> state);
  ActorNursery(const ActorNursery&) = delete;
  ActorNursery& operator=(const ActorNursery&) = delete;
  ~ActorNursery();

  // Starts a child actor named `name` and waits until it is connected. Throws
  // BrokenActorError if it exits before connecting, OSError if it cannot be started.
  Portal& start_actor(std::string name, ActorOptions options = {});
  // Starts a child actor that runs one function; collect it with portal.result<R>().
  template <class... Args>
  Portal& run_in_actor(std::string name, std::string_view function, const Args&... args) {
    return run_in_actor_packed(std::move(name), function,
                               to_process::internal::pack_arguments(args...));
  }
  Portal& run_in_actor_packed(std::string name, std::string_view function,
                              std::vector<char> arguments);
  CancelScope& cancel_scope();
  State& state() noexcept { return *state_; }

 private:
  std::unique_ptr<State> state_;
};

// Discovery across the whole actor tree (tractor's registrar, living in the root): every
// actor registers its name and address with the root when it starts (before start_actor
// returns) and leaves when it exits or its parent reaps it (crashed and killed ones too,
// with their subtrees). find_actor(name), from any actor of the tree, returns a portal to a
// running actor of that name: one of the caller's own children if it has one (the first
// started), else the earliest registered in the tree — a direct connection to that actor,
// kept and reused. Throws ActorNotFound (none registered; or the caller is not in a tree: a
// root outside every actor nursery), BrokenActorError (the registrar or the actor cannot be
// reached). A checkpoint (it may ask the root). wait_for_actor waits (a checkpoint,
// cancellable) until one of that name registers.
// Portals of actors that are not the caller's children are valid until the calling actor
// exits (the root: until its outermost actor nursery exits); their cancel_actor() closes the
// connection only (an actor is stopped by its parent), returncode() is nullopt, pid() 0.
Portal& find_actor(std::string_view name);
Portal& wait_for_actor(std::string_view name);

namespace internal {
void run_actor_nursery(const ActorNurseryOptions& options, FunctionRef<void(ActorNursery&)> body);
}  // namespace internal

// Opens an actor nursery for body(ActorNursery&) and returns what body returns, once every
// child has exited and been reaped (see ActorNursery). Needs a run.
template <class F>
auto open_actor_nursery(ActorNurseryOptions options, F&& body) {
  using R = std::invoke_result_t<F&, ActorNursery&>;
  if constexpr (std::is_void_v<R>) {
    internal::run_actor_nursery(options, [&](ActorNursery& nursery) { body(nursery); });
  } else {
    std::optional<R> result;
    internal::run_actor_nursery(options,
                                [&](ActorNursery& nursery) { result.emplace(body(nursery)); });
    return std::move(*result);
  }
}
template <class F>
auto open_actor_nursery(F&& body) {
  return open_actor_nursery(ActorNurseryOptions{}, std::forward<F>(body));
}

}  // namespace trellis::actor
