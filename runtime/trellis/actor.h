// trellis/actor.h — actors across processes with structured concurrency (tractor's model).
//
//   int add(int a, int b) { return a + b; }
//   TRELLIS_ACTOR_FUNCTION("add", add);
//
//   int main(int argc, char** argv) {
//     trellis::actor::maybe_run_actor(argc, argv);   // first: child actors stop here
//     trellis::run([] {
//       trellis::actor::open_actor_nursery([](trellis::actor::ActorNursery& an) {
//         trellis::actor::Portal& portal = an.start_actor("adder");
//         int five = portal.run<int>("add", 2, 3);
//       });   // every child actor has exited and been reaped here
//     });
//   }
//
// A child actor is this executable re-executed with an actor entry point; it runs its own
// run loop and serves its parent over TCP loopback with a framed, versioned message protocol
// (actor/protocol.h). Errors cross process boundaries (RemoteActorError), cancellation too
// (a cancelled caller cancels the remote task; a cancelled actor nursery cancels its children,
// then SIGTERM, then SIGKILL), and a child whose parent vanished exits by itself.
//
// Link trellis::actors (it brings msgpack-cxx). Headers:
//   actor/actor.h     open_actor_nursery, ActorNursery, Portal, maybe_run_actor
//   actor/registry.h  TRELLIS_ACTOR_FUNCTION
//   actor/errors.h    RemoteActorError, BrokenActorError
//   actor/protocol.h  the message protocol
#pragma once

#include "trellis/actor/actor.h"
#include "trellis/actor/errors.h"
#include "trellis/actor/protocol.h"
#include "trellis/actor/registry.h"
