// The actor functions of tree_functions.h (in the test binary, which child actors re-execute;
// in a World, the same functions run in fake programs).
#include <chrono>
#include <stdexcept>
#include <string>

#include "tree_functions.h"
#include "trellis/actor.h"
#include "trellis/trellis.h"

namespace {

using trellis::actor::ActorNursery;
using trellis::actor::Context;

void hold_child(Context& ctx, std::string name) {
  trellis::actor::open_actor_nursery([&](ActorNursery& an) {
    an.start_actor(name);
    ctx.started(0);
    trellis::sleep(std::chrono::hours(24 * 365));
  });
}
TRELLIS_ACTOR_FUNCTION("tree.hold_child", hold_child);

int find_and_add(std::string name) {
  return trellis::actor::find_actor(name).run<int>("add", 20, 22);
}
TRELLIS_ACTOR_FUNCTION("tree.find_and_add", find_and_add);

int wait_and_add(std::string name) {
  return trellis::actor::wait_for_actor(name).run<int>("add", 20, 22);
}
TRELLIS_ACTOR_FUNCTION("tree.wait_and_add", wait_and_add);

int spawn_and_call(std::string child, std::string function, std::string name) {
  return trellis::actor::open_actor_nursery(
      [&](ActorNursery& an) { return an.start_actor(child).run<int>(function, name); });
}
TRELLIS_ACTOR_FUNCTION("tree.spawn_and_call", spawn_and_call);

bool is_registered(std::string name) {
  try {
    trellis::actor::find_actor(name);
    return true;
  } catch (const trellis::actor::ActorNotFound&) {
    return false;
  }
}
TRELLIS_ACTOR_FUNCTION("tree.is_registered", is_registered);

void fail_deep(int depth, std::string message) {
  if (depth <= 0) throw std::domain_error(message);
  trellis::actor::open_actor_nursery([&](ActorNursery& an) {
    an.start_actor("deep" + std::to_string(depth)).run<void>("tree.fail_deep", depth - 1, message);
  });
}
TRELLIS_ACTOR_FUNCTION("tree.fail_deep", fail_deep);

}  // namespace

namespace {

// Sends 0..n-1 on its stream, then fails (the caller's loop must raise the error).
void produce_then_fail(trellis::actor::Context& ctx, int n) {
  ctx.started(0);
  trellis::actor::MsgStream stream = ctx.open_stream();
  for (int i = 0; i < n; ++i) stream.send(i);
  throw std::out_of_range("the producer failed after " + std::to_string(n));
}
TRELLIS_ACTOR_FUNCTION("tree.produce_then_fail", produce_then_fail);

// Sends "one", 2: a message that is not a string.
void produce_mixed(trellis::actor::Context& ctx) {
  ctx.started(0);
  trellis::actor::MsgStream stream = ctx.open_stream();
  stream.send(std::string("one"));
  stream.send(2);
  stream.close();
}
TRELLIS_ACTOR_FUNCTION("tree.produce_mixed", produce_mixed);

}  // namespace
