// The actor test binary's main(): child actors are this executable re-executed, so
// maybe_run_actor must come before GoogleTest sees the command line. With
// TRELLIS_ACTOR_TEST_MISBEHAVE set, a child instead breaks the protocol on purpose.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string_view>

#include "actor_functions.h"
#include "trellis/actor.h"

int main(int argc, char** argv) {
  if (const char* how = std::getenv("TRELLIS_ACTOR_TEST_MISBEHAVE");
      how != nullptr && argc > 1 && argv[1] == trellis::actor::kActorFlag) {
    trellis::actor::testing::misbehaving_child_main(argc, argv, how);
  }
  trellis::actor::maybe_run_actor(argc, argv);
  testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
