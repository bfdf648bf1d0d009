// trellis/to_process.h — CPU parallelism in worker processes (trio-parallel's model).
//
//   int add(int a, int b) { return a + b; }
//   TRELLIS_WORKER_FUNCTION("add", add);
//
//   int main(int argc, char** argv) {
//     trellis::to_process::maybe_run_worker(argc, argv);   // first: workers stop here
//     trellis::run([] {
//       int five = trellis::to_process::run_sync<int>("add", 2, 3);
//     });   // every worker the run started has been stopped and reaped here
//   }
//
// run_sync sends a registered function's name and msgpack-encoded arguments over a pipe to a
// worker process (this executable, re-executed) and blocks the calling task until the result
// comes back. The worker pool (worker_context.h) reuses workers, replaces crashed ones and
// retires idle ones; a CapacityLimiter bounds concurrent calls.
//
// Link trellis::to_process (it brings msgpack-cxx). Headers:
//   to_process/run_sync.h        run_sync, Options, current_default_worker_limiter
//   to_process/worker_context.h  WorkerContext, WorkerContextOptions, cache_scope
//   to_process/registry.h        TRELLIS_WORKER_FUNCTION
//   to_process/worker.h          maybe_run_worker, the worker loop (and the simulator's)
//   to_process/errors.h          WorkerError, BrokenWorkerError
//   to_process/frame.h           the pipe protocol (FrameError)
#pragma once

#include "trellis/to_process/errors.h"
#include "trellis/to_process/frame.h"
#include "trellis/to_process/registry.h"
#include "trellis/to_process/run_sync.h"
#include "trellis/to_process/worker.h"
#include "trellis/to_process/worker_context.h"
