// trellis/pipeline/process_section.h — ProcessSection: a pipeline section whose function runs
// in a worker process (trellis/to_process.h), for CPU-bound or crash-prone work. Link
// trellis::to_process besides trellis::pipeline, and register the function with
// TRELLIS_WORKER_FUNCTION.
//
//   TRELLIS_WORKER_FUNCTION("digest", digest);                 // std::string digest(std::string)
//   pipeline::create(nursery, Chain(std::move(rx)),
//                    ProcessSection<std::string, std::string>("digest"));
//
// C++ cannot name a registered function's types from its name, so the section names its input
// and output types (Slurry's ProcessSection takes a picklable function instead). One call at a
// time, in order, through to_process::run_sync with `options` (cancellable, limiter,
// context); a WorkerError or BrokenWorkerError fails the pipeline like any section's error.
#pragma once

#include <string>
#include <utility>

#include "trellis/pipeline/refiners.h"
#include "trellis/to_process/run_sync.h"

namespace trellis::pipeline {

template <class In, class Out>
auto ProcessSection(std::string function, to_process::Options options = to_process::Options{}) {
  return Map([function = std::move(function), options](In item) -> Out {
    return to_process::run_sync<Out>(options, function, std::move(item));
  });
}

}  // namespace trellis::pipeline
