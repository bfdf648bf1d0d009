// trellis/pipeline/pipeline.h — Slurry's Pipeline: sections welded into tasks of a nursery,
// read through taps.
//
//   open_nursery([&](Nursery& nursery) {
//     auto [tx, rx] = open_memory_channel<int>(0);
//     nursery.start_soon([tx = std::move(tx)]() mutable { for (int i = 0; i < 10; ++i) tx.send(i);
//     }); Pipeline p = pipeline::create(nursery, Chain(std::move(rx)),
//                                   Map([](int v) { return v * v; }),
//                                   Filter([](const int& v) { return v % 2 == 0; }));
//     for (int v : p.tap<int>()) use(v);   // 0 4 16 36 64, then the tap ends
//   });
//
// Semantics (Slurry's, with Trio's structured concurrency):
// - Each section is one task of `nursery` (the pump that feeds the taps is one more). Links
//   are rendezvous channels: nothing is buffered between sections, so a tap that is not read
//   stops the whole pipeline (back-pressure). Buffers exist only where asked for, with a bound:
//   TapOptions::max_buffer_size, Delay's and Group's bounds.
// - Closing the sources drains the pipeline in order and closes every tap (EndOfChannel).
// - An exception in a section ends its task, so the nursery cancels the other sections and
//   the pump and re-raises it (inside an ExceptionGroup, as for any task); readers of the taps
//   then see EndOfChannel.
// - Closing every tap stops the pump, which closes the last section's output; each section
//   then learns that nobody reads (BrokenResourceError) and ends, up to the sources, which are
//   closed (their senders get BrokenResourceError).
// - Cancelling the nursery stops every section at its next checkpoint.
// - The pump waits for the first tap; if every handle of a pipeline is destroyed before any
//   tap was made, it stops at once (instead of leaving the nursery waiting for ever).
//
// Types flow through the sections at compile time; the output type is named at tap<T>(), and
// a mismatch throws PipelineTypeError (a std::invalid_argument naming both types).
#pragma once

#include <memory>
#include <stdexcept>
#include <string>
#include <typeinfo>
#include <utility>

#include "trellis/channel/memory_channel.h"
#include "trellis/core/nursery.h"
#include "trellis/pipeline/internal/output.h"
#include "trellis/pipeline/internal/weld.h"

namespace trellis::pipeline {

// tap<T>() or extend<T>() named a type other than the pipeline's output type.
class PipelineTypeError : public std::invalid_argument {
 public:
  PipelineTypeError(const std::type_info& requested, const std::type_info& actual);
  const std::string& requested() const noexcept { return requested_; }  // demangled
  const std::string& actual() const noexcept { return actual_; }

 private:
  std::string requested_, actual_;
};

class Pipeline {
 public:
  Pipeline(Pipeline&&) noexcept = default;
  Pipeline& operator=(Pipeline&& other) noexcept {
    if (this != &other) {
      release();
      nursery_ = other.nursery_;
      output_ = std::move(other.output_);
    }
    return *this;
  }
  ~Pipeline() { release(); }

  // Welds `sections` into tasks of `nursery` (see create() below).
  template <class... Sections>
  static Pipeline create(Nursery& nursery, Sections&&... sections);

  // A new output channel: every item the last section produces goes to every open tap. The
  // first tap starts the pipeline. Several taps each need a copy-constructible T. After the
  // pipeline ended, the returned channel is already at its end. Throws PipelineTypeError if T
  // is not the output type, std::invalid_argument for bad options, ClosedResourceError on a
  // moved-from handle. Not a checkpoint.
  template <class T>
  MemoryReceiveChannel<T> tap(TapOptions options = {}) {
    return typed<T>().add_tap(options, /*enable=*/true);
  }

  // A new pipeline fed by this one (through a tap that does not start this one; tapping the
  // new pipeline starts both): Slurry's extend. The first section must name its input type
  // (Map/Filter/SkipWhile/ThreadSection of a lambda with a concrete parameter, a user section);
  // otherwise use extend<T>(...) with this pipeline's output type T.
  template <class... S>
  Pipeline extend(S&&... sections) {
    using In = typename internal::NamedInput<
        internal::Plain<std::tuple_element_t<0, std::tuple<S...>>>>::type;
    return extend<In>(std::forward<S>(sections)...);
  }
  template <class T, class... S>
  Pipeline extend(S&&... sections) {
    static_assert(sizeof...(S) > 0, "Pipeline::extend needs at least one section");
    MemoryReceiveChannel<T> feed = typed<T>().add_tap(TapOptions{}, /*enable=*/false);
    Pipeline child = attach(
        *nursery_, internal::weld_rest(*nursery_, std::move(feed), std::forward<S>(sections)...));
    child.output_->set_parent(output_);
    return child;
  }

  // The output type's typeid (ClosedResourceError on a moved-from handle).
  const std::type_info& output_type() const { return checked().type(); }

 private:
  Pipeline(Nursery& nursery, std::shared_ptr<internal::OutputBase> output)
      : nursery_(&nursery), output_(std::move(output)) {}

  // Starts the pump task that feeds the taps from `last`.
  template <class T>
  static Pipeline attach(Nursery& nursery, MemoryReceiveChannel<T> last) {
    auto output = std::make_shared<internal::Output<T>>();
    nursery.start_soon(SpawnOptions{.name = "pipeline.pump"},
                       [output, in = std::move(last)]() mutable {
                         MemoryReceiveChannel<T> input = std::move(in);
                         output->pump(input);
                       });
    return Pipeline(nursery, std::move(output));
  }

  internal::OutputBase& checked() const {
    if (output_ == nullptr) throw ClosedResourceError("Pipeline: this handle was moved from");
    return *output_;
  }
  template <class T>
  internal::Output<T>& typed() const {
    internal::OutputBase& output = checked();
    if (output.type() != typeid(T)) throw PipelineTypeError(typeid(T), output.type());
    return static_cast<internal::Output<T>&>(output);
  }
  void release() noexcept {
    if (output_ != nullptr) output_->release();
  }

  Nursery* nursery_ = nullptr;
  std::shared_ptr<internal::OutputBase> output_;  // null: moved from
};

template <class... Sections>
Pipeline Pipeline::create(Nursery& nursery, Sections&&... sections) {
  static_assert(sizeof...(Sections) > 0, "pipeline::create needs at least a source section");
  return attach(nursery, internal::weld_all(nursery, std::forward<Sections>(sections)...));
}

// Welds `sections` into tasks of `nursery` and returns the pipeline; read it with tap<T>().
// The first section is a source (Chain, Merge, Zip, ZipLatest, Repeat/Metronome with a default,
// a user source); each later one takes the previous one's output. Not a checkpoint; the
// sections start at once and block until the first tap. Section misuse that can be found at
// compile time (a Map whose lambda does not take the upstream type) is a compile error.
template <class... Sections>
Pipeline create(Nursery& nursery, Sections&&... sections) {
  return Pipeline::create(nursery, std::forward<Sections>(sections)...);
}

}  // namespace trellis::pipeline
