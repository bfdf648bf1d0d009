// trellis/pipeline/internal/weld.h — connects sections with rendezvous channels and starts one
// task per section in the pipeline's nursery (Slurry's weld()).
//
// Every link between two sections is a memory channel of size 0: a section's send() returns
// only when the next section took the item, so a slow consumer slows the whole pipeline down
// (back-pressure) and no link ever holds an item. A section task owns its input and output
// handles and its section object; when refine returns (or throws) they are destroyed, which
// closes the input (upstream's send() then fails with BrokenResourceError and upstream stops
// too) and the output (downstream's receive() drains, then sees EndOfChannel).
#pragma once

#include <tuple>
#include <type_traits>
#include <utility>

#include "trellis/channel/memory_channel.h"
#include "trellis/core/errors.h"
#include "trellis/core/nursery.h"
#include "trellis/pipeline/internal/section_traits.h"
#include "trellis/pipeline/section.h"

namespace trellis::pipeline::internal {

template <class>
inline constexpr bool dependent_false_v = false;

// Runs a section's body. A BrokenResourceError while nobody reads `output` any more is how a
// section learns that downstream is gone: it ends the section quietly, as in Slurry. Any other
// error (including a BrokenResourceError from some other channel) propagates to the nursery.
template <class Out, class F>
void run_section(MemorySendChannel<Out>& output, F&& body) {
  try {
    body();
  } catch (const BrokenResourceError&) {
    if (output.statistics().open_receive_channels != 0) throw;
  }
}

// Turns anything the user may pass as a section into a section object, by value.
template <class S>
auto adapt(S&& section) {
  using P = Plain<S>;
  if constexpr (is_section_v<P>) {
    return P(std::forward<S>(section));
  } else if constexpr (is_tuple_v<P>) {
    return std::apply([](auto&... parts) { return Sequence(adapt(std::move(parts))...); }, section);
  } else if constexpr (HasPlainRefine<P>) {
    return UserSection<P>(std::forward<S>(section));
  } else {
    static_assert(dependent_false_v<P>,
                  "not a pipeline section: pass a pipeline section (Map, Filter, Chain, ...), a "
                  "class with refine(input, output), a pipeline::Section(fn), a Sequence or a "
                  "std::tuple of sections");
  }
}

template <class S>
auto weld_source(Nursery& nursery, S&& section);
template <class In, class S>
auto weld_middle(Nursery& nursery, MemoryReceiveChannel<In> input, S&& section);

template <class In>
MemoryReceiveChannel<In> weld_rest(Nursery&, MemoryReceiveChannel<In> input) {
  return input;
}
template <class In, class S, class... Rest>
auto weld_rest(Nursery& nursery, MemoryReceiveChannel<In> input, S&& first, Rest&&... rest) {
  return weld_rest(nursery, weld_middle(nursery, std::move(input), std::forward<S>(first)),
                   std::forward<Rest>(rest)...);
}
template <class S, class... Rest>
auto weld_all(Nursery& nursery, S&& first, Rest&&... rest) {
  return weld_rest(nursery, weld_source(nursery, std::forward<S>(first)),
                   std::forward<Rest>(rest)...);
}

template <class S>
auto weld_source(Nursery& nursery, S&& section) {
  auto adapted = adapt(std::forward<S>(section));
  using Sec = decltype(adapted);
  if constexpr (is_sequence_v<Sec>) {
    return std::apply([&](auto&... parts) { return weld_all(nursery, std::move(parts)...); },
                      adapted.sections);
  } else {
    static_assert(SourceSection<Sec>,
                  "pipeline: the first section must be a source: Chain(rx...), Merge(rx...), "
                  "Zip(rx...), ZipLatest(rx...), Repeat/Metronome with a default value, or a "
                  "section whose refine takes only an output");
    using Out = typename Sec::source_output;
    if constexpr (requires { adapted.take_single_source(); }) {
      if (adapted.single_source()) return adapted.take_single_source();
    }
    auto [tx, rx] = open_memory_channel<Out>(0);
    nursery.start_soon(SpawnOptions{.name = Sec::kName},
                       [sec = std::move(adapted), tx = std::move(tx)]() mutable {
                         Sec local = std::move(sec);
                         MemorySendChannel<Out> output = std::move(tx);
                         run_section(output, [&] { local.refine(output); });
                       });
    return std::move(rx);
  }
}

template <class In, class S>
auto weld_middle(Nursery& nursery, MemoryReceiveChannel<In> input, S&& section) {
  auto adapted = adapt(std::forward<S>(section));
  using Sec = decltype(adapted);
  if constexpr (is_sequence_v<Sec>) {
    return std::apply(
        [&](auto&... parts) { return weld_rest(nursery, std::move(input), std::move(parts)...); },
        adapted.sections);
  } else {
    using Out = typename Sec::template output<In>;
    auto [tx, rx] = open_memory_channel<Out>(0);
    nursery.start_soon(
        SpawnOptions{.name = Sec::kName},
        [sec = std::move(adapted), in = std::move(input), tx = std::move(tx)]() mutable {
          Sec local = std::move(sec);
          MemoryReceiveChannel<In> receive = std::move(in);
          MemorySendChannel<Out> output = std::move(tx);
          run_section(output, [&] { local.refine(receive, output); });
        });
    return std::move(rx);
  }
}

// The input type a section names (input_type), for extend() without an explicit type.
template <class S>
struct NamedInput {
  static_assert(dependent_false_v<S>,
                "Pipeline::extend: the first section does not name its input type (a generic "
                "section such as Skip or Enumerate); name the pipeline's output type: "
                "pipeline.extend<T>(sections...)");
};
template <class S>
requires NamesInput<S>
struct NamedInput<S> {
  using type = typename Plain<S>::input_type;
};
template <class S>
requires(!NamesInput<S> && HasPlainRefine<S>) struct NamedInput<S> {
  using type = typename RefineSignature<decltype(&S::refine)>::input;
};
template <class... S>
struct NamedInput<Sequence<S...>> : NamedInput<std::tuple_element_t<0, std::tuple<S...>>> {};
template <class... S>
struct NamedInput<std::tuple<S...>> : NamedInput<std::tuple_element_t<0, std::tuple<S...>>> {};

}  // namespace trellis::pipeline::internal
