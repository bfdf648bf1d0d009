// trellis/scenarios/pipeline/pipeline.h — a bounded pipeline: a producer feeds numbered
// items through a bounded memory channel to N workers (each on its own clone of the
// receive handle), which forward their results through a second bounded channel to one
// collector. Production code: only the runtime API (memory channels, nurseries, cancel
// scopes).
//
//   Pipeline pipeline({.workers = 3, .buffer_size = 2},
//                     [](std::uint64_t item) { return item * item; });  // may block
//   PipelineReport report = pipeline.run(100, trellis::current_time() + 1s);
//   // report.completed: all 100 collected, each once, before the deadline
//
// Cancellation: stop_worker(i) scales the pipeline down while it runs — that worker stops
// taking items, but an item it has already received is still worked on and forwarded
// (shielded), so no item is lost; the other workers take the rest. The deadline stops the
// whole pipeline: every stage is cancelled, items in hand are still forwarded while the
// collector lives, and run() returns only when every task has finished and every channel
// handle is closed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "trellis/channel/memory_channel.h"
#include "trellis/core/cancel_scope.h"
#include "trellis/core/time.h"

namespace trellis::scenarios {

struct PipelineResult {
  std::uint64_t item = 0;
  std::uint64_t value = 0;  // work(item)
  std::size_t worker = 0;   // which worker produced it
};

struct PipelineReport {
  // Every item was collected (the collector saw the end of its channel) before the deadline.
  bool completed = false;
  std::uint64_t produced = 0;             // items the producer sent into the pipeline
  std::vector<PipelineResult> collected;  // in collection order
  std::uint64_t abandoned = 0;            // items a worker held when the collector had already gone
  // Both channels after run(): every handle closed, no task waiting.
  MemoryChannelStatistics items_at_end;
  MemoryChannelStatistics results_at_end;
};

class Pipeline {
 public:
  using Work = std::function<std::uint64_t(std::uint64_t item)>;  // may block (checkpoints)

  struct Options {
    std::size_t workers = 3;
    std::size_t buffer_size = 2;  // of both channels (0: rendezvous)
    // The planted bug: a stopped worker abandons the item it holds (received, not yet
    // forwarded) instead of finishing it — the item is lost. Off by default.
    bool drop_item_on_stop = false;
  };

  // Throws std::invalid_argument for 0 workers or an empty work function.
  Pipeline(Options options, Work work);

  // Runs items 0..count-1 through the pipeline until all are collected or `deadline`
  // passes; returns when every stage has finished. A checkpoint; single use (a second call
  // throws std::logic_error). Throws what work() throws (the pipeline is then cancelled).
  PipelineReport run(std::uint64_t count, Time deadline);

  // Stops worker `index` (before or during run(); idempotent): it takes no more items and
  // forwards the one it holds. Not a checkpoint. Throws std::out_of_range for a bad index.
  void stop_worker(std::size_t index) { stop_scopes_.at(index)->cancel(); }
  std::size_t workers() const noexcept { return stop_scopes_.size(); }

 private:
  void worker(std::size_t index, MemoryReceiveChannel<std::uint64_t> items,
              MemorySendChannel<PipelineResult> results, PipelineReport& report);

  Options options_;
  Work work_;
  // One per worker, no deadline: cancelled only by stop_worker.
  std::vector<std::unique_ptr<CancelScope>> stop_scopes_;
  bool ran_ = false;
};

}  // namespace trellis::scenarios
