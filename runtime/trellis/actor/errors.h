// trellis/actor/errors.h — what actor calls throw besides Cancelled.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace trellis::actor {

// A function called in another actor threw. type_name() is the exception's C++ type,
// demangled ("std::invalid_argument"), message() its what(), actor_name() the actor where it
// was raised, relayed_through() the actors it crossed on its way up (nearest to the source
// first), as tractor's boxed errors. Special type names:
// "trellis::actor::UnknownFunctionError" (no TRELLIS_ACTOR_FUNCTION of that name in the
// child's executable), "trellis::actor::ArgumentError" (arguments that do not convert to the
// parameters), "trellis::actor::ProtocolError" (the child got a malformed call).
// The remote actor survives it and serves the next call.
// remote_tree() is the remote task tree (tractor's boxed traceback): the failing task first
// (its actor, the function it ran), then each task that relayed the error up, up to the
// one this actor called; what() shows it after the first line, outermost first:
//   std::domain_error: boom (raised in actor 'deep1', relayed by 'deep2', relayed by 'branch')
//   remote task tree (outermost first):
//     actor 'branch' running 'tree.fail_deep'
//       actor 'deep2' running 'tree.fail_deep'
//         actor 'deep1' running 'tree.fail_deep': raised std::domain_error: boom
class RemoteActorError : public std::runtime_error {
 public:
  struct Task {
    std::string actor;
    std::string function;
    friend bool operator==(const Task&, const Task&) = default;
  };
  RemoteActorError(std::string type_name, std::string message, std::string actor_name,
                   std::vector<std::string> relayed_through = {},
                   std::vector<Task> remote_tree = {});
  const std::string& type_name() const noexcept { return type_name_; }
  const std::string& message() const noexcept { return message_; }
  const std::string& actor_name() const noexcept { return actor_name_; }
  const std::vector<std::string>& relayed_through() const noexcept { return relayed_through_; }
  const std::vector<Task>& remote_tree() const noexcept { return remote_tree_; }

 private:
  std::string type_name_;
  std::string message_;
  std::string actor_name_;
  std::vector<std::string> relayed_through_;
  std::vector<Task> remote_tree_;  // the failing task first
};

// The channel to an actor is gone: the actor died (what() names the signal or exit status),
// was cancelled, or broke the protocol (what() names the malformed frame; the actor has been
// killed). Its process is reaped by its nursery.
class BrokenActorError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A context's remote task was cancelled by its caller (Context::cancel, a cancelled scope).
class ContextCancelled : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A stream's other side has not opened its stream and its buffer is full: sending more
// would wait forever.
class StreamOverrun : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A BroadcastReceiver fell behind by more than the buffer: skipped() messages are lost to it;
// its next receive continues with the oldest one kept.
class Lagged : public std::runtime_error {
 public:
  explicit Lagged(std::uint64_t skipped)
      : std::runtime_error("broadcast receiver lagged: " + std::to_string(skipped) +
                           " messages skipped"),
        skipped_(skipped) {}
  std::uint64_t skipped() const noexcept { return skipped_; }

 private:
  std::uint64_t skipped_;
};

// find_actor: no actor of that name is registered here.
class ActorNotFound : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace trellis::actor
