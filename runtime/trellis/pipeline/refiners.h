// trellis/pipeline/refiners.h — sections that transform or filter items one by one: Map,
// Filter, Skip, SkipWhile, Enumerate, ThreadSection. None can start a pipeline (put a source
// such as Chain first); each keeps the order of its input and ends when its input ends.
//
//   pipeline::create(nursery, Chain(std::move(rx)), Skip(2), Enumerate(),
//                    Map([](std::pair<std::size_t, int> p) { return p.second * p.first; }));
#pragma once

#include <cstddef>
#include <functional>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "trellis/channel/memory_channel.h"
#include "trellis/pipeline/internal/section_traits.h"
#include "trellis/thread/to_thread.h"

namespace trellis::pipeline {

// Sends fn(item) for each item. fn runs in the section's task (keep it short and non-blocking;
// ThreadSection is for blocking work); an exception from fn fails the pipeline.
template <class F>
class Map : public internal::SectionTag, public internal::CallableInput<F> {
 public:
  static constexpr const char* kName = "pipeline.Map";
  explicit Map(F fn) : fn_(std::move(fn)) {}

  template <class In>
  using output = std::decay_t<std::invoke_result_t<F&, In&&>>;

  template <class In>
  void refine(MemoryReceiveChannel<In>& input, MemorySendChannel<output<In>>& out) {
    for (In& item : input) out.send(std::invoke(fn_, std::move(item)));
  }

 private:
  F fn_;
};

// Sends the items for which fn(item) is true (fn sees a const item).
template <class F>
class Filter : public internal::SectionTag, public internal::CallableInput<F> {
 public:
  static constexpr const char* kName = "pipeline.Filter";
  explicit Filter(F fn) : fn_(std::move(fn)) {}

  template <class In>
  using output = In;

  template <class In>
  void refine(MemoryReceiveChannel<In>& input, MemorySendChannel<In>& out) {
    for (In& item : input) {
      if (std::invoke(fn_, std::as_const(item))) out.send(std::move(item));
    }
  }

 private:
  F fn_;
};

// Drops the first `count` items, then sends the rest.
class Skip : public internal::SectionTag {
 public:
  static constexpr const char* kName = "pipeline.Skip";
  explicit Skip(std::size_t count) : count_(count) {}

  template <class In>
  using output = In;

  template <class In>
  void refine(MemoryReceiveChannel<In>& input, MemorySendChannel<In>& out) {
    std::size_t skipped = 0;
    for (In& item : input) {
      if (skipped < count_) {
        ++skipped;
      } else {
        out.send(std::move(item));
      }
    }
  }

 private:
  std::size_t count_;
};

// Drops items while fn(item) is true; from the first item for which it is false, sends every
// item (fn is not called again).
template <class F>
class SkipWhile : public internal::SectionTag, public internal::CallableInput<F> {
 public:
  static constexpr const char* kName = "pipeline.SkipWhile";
  explicit SkipWhile(F fn) : fn_(std::move(fn)) {}

  template <class In>
  using output = In;

  template <class In>
  void refine(MemoryReceiveChannel<In>& input, MemorySendChannel<In>& out) {
    bool skipping = true;
    for (In& item : input) {
      if (skipping && std::invoke(fn_, std::as_const(item))) continue;
      skipping = false;
      out.send(std::move(item));
    }
  }

 private:
  F fn_;
};

// Sends std::pair{index, item}, the index counting from `start` (default 0).
class Enumerate : public internal::SectionTag {
 public:
  static constexpr const char* kName = "pipeline.Enumerate";
  explicit Enumerate(std::size_t start = 0) : start_(start) {}

  template <class In>
  using output = std::pair<std::size_t, In>;

  template <class In>
  void refine(MemoryReceiveChannel<In>& input, MemorySendChannel<output<In>>& out) {
    std::size_t index = start_;
    for (In& item : input) out.send(output<In>(index++, std::move(item)));
  }

 private:
  std::size_t start_;
};

// Like Map, but fn(item) runs on a worker thread (to_thread::run_sync, with `options`), one
// item at a time, in order: for blocking or CPU-heavy work. In the simulator the "thread" is a
// task with a virtual latency, so the pipeline stays deterministic. Cancelling the pipeline
// waits for a call in progress to return unless options.abandon_on_cancel is set.
template <class F>
class ThreadSection : public internal::SectionTag, public internal::CallableInput<F> {
 public:
  static constexpr const char* kName = "pipeline.ThreadSection";
  explicit ThreadSection(F fn, to_thread::Options options = {})
      : fn_(std::move(fn)), options_(options) {
    if (options_.abandon_on_cancel && !std::is_copy_constructible_v<F>) {
      throw std::invalid_argument(
          "ThreadSection: abandon_on_cancel needs a copy-constructible function (an abandoned "
          "call keeps running on its own copy)");
    }
  }

  template <class In>
  using output = std::decay_t<std::invoke_result_t<F&, In&&>>;

  template <class In>
  void refine(MemoryReceiveChannel<In>& input, MemorySendChannel<output<In>>& out) {
    for (In& item : input) out.send(call(std::move(item)));
  }

 private:
  template <class In>
  std::decay_t<std::invoke_result_t<F&, In&&>> call(In item) {
    using Out = std::decay_t<std::invoke_result_t<F&, In&&>>;
    if constexpr (std::is_copy_constructible_v<F>) {
      if (options_.abandon_on_cancel) {  // the call may outlive this task: it owns its inputs
        return to_thread::run_sync(
            [fn = fn_, value = std::move(item)]() mutable -> Out {
              return std::invoke(fn, std::move(value));
            },
            options_);
      }
    }
    // The task waits for the call to return, so fn_ and item outlive it.
    return to_thread::run_sync([this, &item]() -> Out { return std::invoke(fn_, std::move(item)); },
                               options_);
  }

  F fn_;
  to_thread::Options options_;
};

}  // namespace trellis::pipeline
