// The to_process test binary's main(): workers are this executable re-executed, so
// maybe_run_worker must come before GoogleTest sees the command line.
#include <gtest/gtest.h>

#include "trellis/to_process.h"

int main(int argc, char** argv) {
  trellis::to_process::maybe_run_worker(argc, argv);
  testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
