// trellis/pipeline/combiners.h — sections that read several channels: Chain, Merge, Zip,
// ZipLatest. Each is a source (it can start a pipeline); used after another section, the
// upstream output is its first input (Slurry's place_input='first').
//
//   auto p = pipeline::create(nursery, Merge(std::move(rx_a), std::move(rx_b)));
//   auto z = pipeline::create(nursery, Zip(std::move(names), std::move(ages)));  // tuples
//
// The channels are taken by value (move them in); the section owns them and closes them when
// it ends, so their senders see BrokenResourceError once nobody will read them.
#pragma once

#include <cstddef>
#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "trellis/channel/memory_channel.h"
#include "trellis/core/errors.h"
#include "trellis/core/nursery.h"
#include "trellis/pipeline/internal/section_traits.h"

namespace trellis::pipeline {
namespace internal {

// Sends every item of `input` to `out`; false if downstream went away (nobody reads `out`).
template <class T>
bool forward_all(MemoryReceiveChannel<T>& input, MemorySendChannel<T>& out) {
  try {
    for (T& item : input) out.send(std::move(item));
  } catch (const BrokenResourceError&) {
    if (out.statistics().open_receive_channels != 0) throw;
    return false;
  }
  return true;
}

template <class T, class... Rest>
std::vector<MemoryReceiveChannel<T>> channel_list(MemoryReceiveChannel<T> first, Rest... rest) {
  static_assert((std::is_same_v<Rest, MemoryReceiveChannel<T>> && ...),
                "Chain/Merge: every source must be a MemoryReceiveChannel of the same type");
  std::vector<MemoryReceiveChannel<T>> list;
  list.push_back(std::move(first));
  (list.push_back(std::move(rest)), ...);
  return list;
}

template <class T>
std::vector<MemoryReceiveChannel<T>> non_empty(std::vector<MemoryReceiveChannel<T>> sources,
                                               const char* section) {
  if (sources.empty()) throw std::invalid_argument(std::string(section) + ": needs a source");
  return sources;
}

}  // namespace internal

// Sends every item of the first source until it ends, then of the next, and so on (a source
// that never ends holds back the ones after it). After another section: upstream first, or
// last with .input_last() (Slurry's place_input='last'; upstream then waits, back-pressured,
// until the sources ended).
template <class T>
class Chain : public internal::SectionTag {
 public:
  static constexpr const char* kName = "pipeline.Chain";
  using source_output = T;
  template <class... Rest>
  explicit Chain(MemoryReceiveChannel<T> first, Rest... rest)
      : sources_(internal::channel_list(std::move(first), std::move(rest)...)) {}
  // As many sources as the vector holds (at least one; std::invalid_argument otherwise).
  explicit Chain(std::vector<MemoryReceiveChannel<T>> sources)
      : sources_(internal::non_empty(std::move(sources), "Chain")) {}

  template <class In>
  using output = T;

  // Starting a pipeline with one source, Chain would only copy it: the welder passes that
  // channel on instead of starting a task (one hop less per item; same semantics).
  bool single_source() const noexcept { return sources_.size() == 1; }
  MemoryReceiveChannel<T> take_single_source() { return std::move(sources_.front()); }

  void refine(MemorySendChannel<T>& out) {
    for (MemoryReceiveChannel<T>& source : sources_) {
      if (!internal::forward_all(source, out)) return;
      source.close();
    }
  }
  template <class In>
  void refine(MemoryReceiveChannel<In>& input, MemorySendChannel<T>& out) {
    static_assert(std::is_same_v<In, T>,
                  "Chain: the upstream output type differs from the sources' item type");
    sources_.insert(input_last_ ? sources_.end() : sources_.begin(), std::move(input));
    refine(out);
  }

  // Used after another section: read the upstream output after the sources, not before.
  Chain&& input_last() && {
    input_last_ = true;
    return std::move(*this);
  }

 private:
  std::vector<MemoryReceiveChannel<T>> sources_;
  bool input_last_ = false;
};
template <class T, class... Rest>
Chain(MemoryReceiveChannel<T>, Rest...) -> Chain<T>;
template <class T>
Chain(std::vector<MemoryReceiveChannel<T>>) -> Chain<T>;

// Sends the items of every source as they arrive (each source's order is kept; across sources
// the order is whatever the schedule gives). Ends when every source ended. After another
// section: upstream is one more source.
template <class T>
class Merge : public internal::SectionTag {
 public:
  static constexpr const char* kName = "pipeline.Merge";
  using source_output = T;
  template <class... Rest>
  explicit Merge(MemoryReceiveChannel<T> first, Rest... rest)
      : sources_(internal::channel_list(std::move(first), std::move(rest)...)) {}
  // As many sources as the vector holds (at least one; std::invalid_argument otherwise).
  explicit Merge(std::vector<MemoryReceiveChannel<T>> sources)
      : sources_(internal::non_empty(std::move(sources), "Merge")) {}

  template <class In>
  using output = T;

  // Starting a pipeline with one source, Merge would only copy it: the welder passes that
  // channel on instead of starting a task (one hop less per item; same semantics).
  bool single_source() const noexcept { return sources_.size() == 1; }
  MemoryReceiveChannel<T> take_single_source() { return std::move(sources_.front()); }

  void refine(MemorySendChannel<T>& out) {
    open_nursery([&](Nursery& nursery) {
      for (MemoryReceiveChannel<T>& source : sources_) {
        nursery.start_soon(SpawnOptions{.name = "pipeline.Merge.pull"}, [&nursery, &source, &out] {
          // Downstream gone: stop the other pulls too (their sources close with the section).
          if (!internal::forward_all(source, out)) nursery.cancel_scope().cancel();
          source.close();
        });
      }
    });
  }
  template <class In>
  void refine(MemoryReceiveChannel<In>& input, MemorySendChannel<T>& out) {
    static_assert(std::is_same_v<In, T>,
                  "Merge: the upstream output type differs from the "
                  "sources' item type");
    sources_.insert(sources_.begin(), std::move(input));
    refine(out);
  }

 private:
  std::vector<MemoryReceiveChannel<T>> sources_;
};
template <class T, class... Rest>
Merge(MemoryReceiveChannel<T>, Rest...) -> Merge<T>;
template <class T>
Merge(std::vector<MemoryReceiveChannel<T>>) -> Merge<T>;

// Takes one item from every source and sends them as a std::tuple (in source order); ends as
// soon as any source ends. A fast source waits for the slow ones (back-pressure). After
// another section: std::tuple<upstream item, source items...>.
template <class... T>
class Zip : public internal::SectionTag {
  static_assert(sizeof...(T) > 0, "Zip needs at least one source");

 public:
  static constexpr const char* kName = "pipeline.Zip";
  using source_output = std::tuple<T...>;
  explicit Zip(MemoryReceiveChannel<T>... sources) : sources_(std::move(sources)...) {}

  template <class In>
  using output = std::tuple<In, T...>;

  void refine(MemorySendChannel<source_output>& out) { zip(sources_, out); }
  template <class In>
  void refine(MemoryReceiveChannel<In>& input, MemorySendChannel<output<In>>& out) {
    auto all = std::tuple_cat(std::make_tuple(std::move(input)), std::move(sources_));
    zip(all, out);
  }

 private:
  template <class... U>
  static void zip(std::tuple<MemoryReceiveChannel<U>...>& sources,
                  MemorySendChannel<std::tuple<U...>>& out) {
    for (;;) {
      std::optional<std::tuple<U...>> items;
      try {
        // Braced initialization evaluates left to right: source order, every time.
        std::apply([&](auto&... source) { items.emplace(std::tuple<U...>{source.receive()...}); },
                   sources);
      } catch (const EndOfChannel&) {
        return;  // the items already taken from the other sources are dropped, as in Slurry
      }
      out.send(std::move(*items));
    }
  }

  std::tuple<MemoryReceiveChannel<T>...> sources_;
};
template <class... T>
Zip(MemoryReceiveChannel<T>...) -> Zip<T...>;

// Sends, each time any source delivers an item, a tuple of the latest item of every source
// (std::nullopt for a source that has not delivered yet). With partial = false, nothing is sent
// until every source has delivered once. Ends (closing every source) as soon as one source
// ends. After another section: upstream is the first element.
template <class... T>
class ZipLatest : public internal::SectionTag {
  static_assert(sizeof...(T) > 0, "ZipLatest needs at least one source");

 public:
  static constexpr const char* kName = "pipeline.ZipLatest";
  using source_output = std::tuple<std::optional<T>...>;
  explicit ZipLatest(MemoryReceiveChannel<T>... sources) : sources_(std::move(sources)...) {}
  // partial: send before every source has delivered (Slurry's default, true).
  ZipLatest&& partial(bool on) && {
    partial_ = on;
    return std::move(*this);
  }

  template <class In>
  using output = std::tuple<std::optional<In>, std::optional<T>...>;

  void refine(MemorySendChannel<source_output>& out) { zip_latest(sources_, out); }
  template <class In>
  void refine(MemoryReceiveChannel<In>& input, MemorySendChannel<output<In>>& out) {
    auto all = std::tuple_cat(std::make_tuple(std::move(input)), std::move(sources_));
    zip_latest(all, out);
  }

 private:
  template <class... U>
  void zip_latest(std::tuple<MemoryReceiveChannel<U>...>& sources,
                  MemorySendChannel<std::tuple<std::optional<U>...>>& out) {
    std::tuple<std::optional<U>...> latest;
    open_nursery([&](Nursery& nursery) {
      start_pulls(nursery, sources, latest, out, std::index_sequence_for<U...>{});
    });
  }

  template <class... U, std::size_t... I>
  void start_pulls(Nursery& nursery, std::tuple<MemoryReceiveChannel<U>...>& sources,
                   std::tuple<std::optional<U>...>& latest,
                   MemorySendChannel<std::tuple<std::optional<U>...>>& out,
                   std::index_sequence<I...>) {
    (nursery.start_soon(SpawnOptions{.name = "pipeline.ZipLatest.pull"},
                        [&] {
                          pull(std::get<I>(sources), std::get<I>(latest), latest, out);
                          nursery.cancel_scope().cancel();  // one source ended: all end
                        }),
     ...);
  }

  template <class V, class Latest, class Out>
  void pull(MemoryReceiveChannel<V>& source, std::optional<V>& slot, const Latest& latest,
            Out& out) {
    try {
      for (V& item : source) {
        slot = std::move(item);
        const bool complete =
            std::apply([](const auto&... s) { return (s.has_value() && ...); }, latest);
        if (partial_ || complete) out.send(Latest(latest));
      }
    } catch (const BrokenResourceError&) {
      if (out.statistics().open_receive_channels != 0) throw;
    }
  }

  std::tuple<MemoryReceiveChannel<T>...> sources_;
  bool partial_ = true;
};
template <class... T>
ZipLatest(MemoryReceiveChannel<T>...) -> ZipLatest<T...>;

}  // namespace trellis::pipeline
