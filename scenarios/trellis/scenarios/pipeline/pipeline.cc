#include "trellis/scenarios/pipeline/pipeline.h"

#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

#include "trellis/core/errors.h"
#include "trellis/core/nursery.h"
#include "trellis/core/run.h"

namespace trellis::scenarios {

Pipeline::Pipeline(Options options, Work work) : options_(options), work_(std::move(work)) {
  if (options_.workers == 0) throw std::invalid_argument("Pipeline: no workers");
  if (!work_) throw std::invalid_argument("Pipeline: no work function");
  for (std::size_t i = 0; i < options_.workers; ++i) {
    stop_scopes_.push_back(std::make_unique<CancelScope>());
  }
}

void Pipeline::worker(std::size_t index, MemoryReceiveChannel<std::uint64_t> items,
                      MemorySendChannel<PipelineResult> results, PipelineReport& report) {
  stop_scopes_[index]->run([&] {
    for (;;) {
      std::uint64_t item = 0;
      try {
        item = items.receive();
      } catch (const EndOfChannel&) {
        return;
      }
      // From here the item is this worker's to deliver: neither a stop nor the deadline
      // may lose it (the shield), only a collector that has gone.
      CancelScope finish(kNoDeadline, /*shield=*/!options_.drop_item_on_stop);
      finish.run([&] {
        try {
          results.send({.item = item, .value = work_(item), .worker = index});
        } catch (const BrokenResourceError&) {
          ++report.abandoned;
        }
      });
      checkpoint_if_cancelled();  // a stop during the shielded part ends the worker here
    }
  });
}

PipelineReport Pipeline::run(std::uint64_t count, Time deadline) {
  if (std::exchange(ran_, true)) throw std::logic_error("Pipeline::run: called twice");
  PipelineReport report;
  // (Not structured bindings: clang 14 cannot capture those in a lambda.)
  auto items = open_memory_channel<std::uint64_t>(options_.buffer_size);
  auto results = open_memory_channel<PipelineResult>(options_.buffer_size);
  auto& items_tx = items.first;
  auto& items_rx = items.second;
  auto& results_tx = results.first;
  auto& results_rx = results.second;
  move_on_at(deadline, [&] {
    open_nursery([&](Nursery& nursery) {
      nursery.start_soon(SpawnOptions{.name = "pipeline producer"},
                         [&report, count, tx = items_tx.clone()]() mutable {
                           for (std::uint64_t item = 0; item < count; ++item) {
                             tx.send(item);
                             ++report.produced;
                           }
                         });
      for (std::size_t i = 0; i < options_.workers; ++i) {
        nursery.start_soon(
            SpawnOptions{.name = "pipeline worker " + std::to_string(i)},
            [this, i, &report, rx = items_rx.clone(), tx = results_tx.clone()]() mutable {
              worker(i, std::move(rx), std::move(tx), report);
            });
      }
      nursery.start_soon(SpawnOptions{.name = "pipeline collector"},
                         [&report, rx = results_rx.clone()]() mutable {
                           for (PipelineResult& result : rx) report.collected.push_back(result);
                           // Every worker's handle is closed: nothing more can come.
                           report.completed = true;
                         });
      // The tasks own their clones; the originals only report the end state.
      items_tx.close();
      items_rx.close();
      results_tx.close();
      results_rx.close();
    });
  });
  report.items_at_end = items_tx.statistics();
  report.results_at_end = results_tx.statistics();
  return report;
}

}  // namespace trellis::scenarios
