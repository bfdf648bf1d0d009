// The to_process test binary's main(): workers are this executable re-executed, so
// maybe_run_worker must come before GoogleTest sees the command line. With
// TRELLIS_TO_PROCESS_SIGINT_CHILD set, the binary is instead the program that
// sigint_test.cc interrupts.
#include <gtest/gtest.h>

#include <cstdlib>

#include "trellis/to_process.h"
#include "worker_functions.h"

int main(int argc, char** argv) {
  trellis::to_process::maybe_run_worker(argc, argv);
  if (const char* report = std::getenv("TRELLIS_TO_PROCESS_SIGINT_CHILD")) {
    return trellis::to_process::testing::sigint_child_main(report);
  }
  testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
