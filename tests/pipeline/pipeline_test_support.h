// Helpers for the pipeline tests: feed a source channel from a task, collect a tap.
#pragma once

#include <initializer_list>
#include <utility>
#include <vector>

#include "trellis/trellis.h"

namespace trellis::pipeline::testing {

// A channel fed by a task of `nursery` with `items`, `gap` apart (after each item), then closed.
template <class T>
MemoryReceiveChannel<T> feed(Nursery& nursery, std::vector<T> items, Duration gap = Duration{}) {
  auto [tx, rx] = open_memory_channel<T>(0);
  nursery.start_soon([items = std::move(items), gap, tx = std::move(tx)]() mutable {
    try {
      for (T& item : items) {
        tx.send(std::move(item));
        if (gap > Duration::zero()) sleep(gap);
      }
    } catch (const BrokenResourceError&) {
      // The pipeline stopped reading: fine.
    }
  });
  return std::move(rx);
}
template <class T>
MemoryReceiveChannel<T> feed(Nursery& nursery, std::initializer_list<T> items,
                             Duration gap = Duration{}) {
  return feed<T>(nursery, std::vector<T>(items), gap);
}

// Every item of `channel` until its end.
template <class T>
std::vector<T> collect(MemoryReceiveChannel<T> channel) {
  std::vector<T> out;
  for (T& item : channel) out.push_back(std::move(item));
  return out;
}

}  // namespace trellis::pipeline::testing
