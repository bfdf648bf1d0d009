// trellis/pipeline/timed.h — sections that read the run's clock: Repeat, Metronome, Delay,
// RateLimit, Group, Window. They use current_time()/sleep_until() only, so under a MockClock
// with autojump or in a sim::World an hour of them takes no real time and every run with the
// same seed is the same.
//
//   pipeline::create(nursery, Chain(std::move(readings)),
//                    RateLimit(1s, [](const Reading& r) { return r.sensor; }),  // per sensor
//                    Group(100, 5s));                   // batches: 100 items or 5 s, whichever
//                    first
#pragma once

#include <cstddef>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "trellis/channel/memory_channel.h"
#include "trellis/core/cancel_scope.h"
#include "trellis/core/errors.h"
#include "trellis/core/nursery.h"
#include "trellis/core/run.h"
#include "trellis/core/time.h"
#include "trellis/pipeline/internal/section_traits.h"
#include "trellis/sync/event.h"

namespace trellis::pipeline {
namespace internal {

inline Duration positive_interval(Duration interval, const char* what) {
  if (interval <= Duration::zero()) throw std::invalid_argument(std::string(what) + " must be > 0");
  return interval;
}

// Receives one item before `deadline`: the item, or nullopt at the deadline. Throws
// EndOfChannel at the end of the input. Cancellation-safe: an item is never lost.
template <class T>
std::optional<T> receive_before(MemoryReceiveChannel<T>& input, Time deadline) {
  std::optional<T> item;
  move_on_at(deadline, [&] { item.emplace(input.receive()); });
  return item;
}

// The value a Repeat/Metronome starts with: none (Default = void) or a T.
template <class Default>
struct DefaultValue {
  std::optional<Default> value;
};
template <>
struct DefaultValue<void> {};

// source_output only for a section that has a default value (it can then start a pipeline).
template <class Default>
struct SourceOutput {
  using source_output = Default;
};
template <>
struct SourceOutput<void> {};

}  // namespace internal

// Sends its latest item again every `interval` until a new item arrives, which is sent at once
// and restarts the timer. With a default value it can start a pipeline (repeating that value
// for ever) or repeats the default until the first input. Ends when its input ends. A stalled
// downstream holds the repetition back (it never queues repeats). Items must be copyable.
template <class Default = void>
class Repeat : public internal::SectionTag, public internal::SourceOutput<Default> {
 public:
  static constexpr const char* kName = "pipeline.Repeat";
  explicit Repeat(Duration interval) requires std::is_void_v<Default>
      : interval_(internal::positive_interval(interval, "Repeat: interval")) {}
  template <class V>
  requires(!std::is_void_v<Default> && std::is_constructible_v<Default, V&&>)
      Repeat(Duration interval, V&& value)
      : interval_(internal::positive_interval(interval, "Repeat: interval")),
        default_{Default(std::forward<V>(value))} {}

  template <class In>
  using output = In;

  template <class D = Default>
  requires(!std::is_void_v<D>) void refine(MemorySendChannel<D>& out) {
    for (;;) {
      out.send(D(*default_.value));
      sleep(interval_);
    }
  }
  template <class In>
  void refine(MemoryReceiveChannel<In>& input, MemorySendChannel<In>& out) {
    std::optional<In> current;
    if constexpr (!std::is_void_v<Default>) {
      static_assert(std::is_same_v<In, Default>,
                    "Repeat: the default's type differs from the "
                    "upstream output type");
      current = std::move(default_.value);
    }
    try {
      for (;;) {
        if (current.has_value()) out.send(In(*current));
        const Time next = current.has_value() ? current_time() + interval_ : Time::max();
        if (std::optional<In> item = internal::receive_before(input, next)) {
          current = std::move(item);
        }
      }
    } catch (const EndOfChannel&) {
      // The input ended: so does the repetition.
    }
  }

 private:
  Duration interval_;
  internal::DefaultValue<Default> default_;
};
Repeat(Duration)->Repeat<void>;
template <class D>
Repeat(Duration, D) -> Repeat<D>;

// Sends the latest item at every tick of the run's clock, the ticks falling on whole
// multiples of `interval` (since the clock's epoch); the input is read as it comes and only
// its latest item is kept (older ones between two ticks are dropped). Without a default, the
// first tick waits for the first item. Ends when its input ends. Items must be copyable.
template <class Default = void>
class Metronome : public internal::SectionTag, public internal::SourceOutput<Default> {
 public:
  static constexpr const char* kName = "pipeline.Metronome";
  explicit Metronome(Duration interval) requires std::is_void_v<Default>
      : interval_(internal::positive_interval(interval, "Metronome: interval")) {}
  template <class V>
  requires(!std::is_void_v<Default> && std::is_constructible_v<Default, V&&>)
      Metronome(Duration interval, V&& value)
      : interval_(internal::positive_interval(interval, "Metronome: interval")),
        default_{Default(std::forward<V>(value))} {}

  template <class In>
  using output = In;

  template <class D = Default>
  requires(!std::is_void_v<D>) void refine(MemorySendChannel<D>& out) {
    for (;;) {
      sleep_until(next_tick());
      out.send(D(*default_.value));
    }
  }
  template <class In>
  void refine(MemoryReceiveChannel<In>& input, MemorySendChannel<In>& out) {
    std::optional<In> latest;
    if constexpr (!std::is_void_v<Default>) {
      static_assert(std::is_same_v<In, Default>,
                    "Metronome: the default's type differs from "
                    "the upstream output type");
      latest = std::move(default_.value);
    }
    Event first;
    if (latest.has_value()) first.set();
    open_nursery([&](Nursery& nursery) {
      nursery.start_soon(SpawnOptions{.name = "pipeline.Metronome.pull"}, [&] {
        for (In& item : input) {
          latest = std::move(item);
          first.set();
        }
        nursery.cancel_scope().cancel();  // the input ended: so does the metronome
      });
      first.wait();
      try {
        for (;;) {
          sleep_until(next_tick());
          out.send(In(*latest));
        }
      } catch (const BrokenResourceError&) {
        if (out.statistics().open_receive_channels != 0) throw;
        nursery.cancel_scope().cancel();  // downstream gone: stop reading the input too
      }
    });
  }

 private:
  // The first multiple of interval_ after now (Slurry: interval - time() % interval).
  Time next_tick() const {
    const Duration since_epoch = current_time().time_since_epoch();
    return Time((since_epoch / interval_ + 1) * interval_);
  }

  Duration interval_;
  internal::DefaultValue<Default> default_;
};
Metronome(Duration)->Metronome<void>;
template <class D>
Metronome(Duration, D) -> Metronome<D>;

// Sends each item `delay` after it arrived, in order. Up to max_buffer_size items wait at once
// (a bound, unlike Slurry's unbounded queue): when it is full, the input is not read (back-
// pressure). When the input ends, the waiting items are still sent, on time.
class Delay : public internal::SectionTag {
 public:
  static constexpr const char* kName = "pipeline.Delay";
  static constexpr std::size_t kDefaultBufferSizeMax = 1024;
  explicit Delay(Duration delay, std::size_t max_buffer_size = kDefaultBufferSizeMax)
      : delay_(delay), buffer_size_max_(max_buffer_size) {
    if (delay < Duration::zero()) throw std::invalid_argument("Delay: delay must be >= 0");
    if (max_buffer_size == 0) throw std::invalid_argument("Delay: max_buffer_size must be > 0");
  }

  template <class In>
  using output = In;

  template <class In>
  void refine(MemoryReceiveChannel<In>& input, MemorySendChannel<In>& out) {
    auto [buffer_tx, buffer_rx] = open_memory_channel<std::pair<In, Time>>(buffer_size_max_);
    open_nursery([&](Nursery& nursery) {
      nursery.start_soon(SpawnOptions{.name = "pipeline.Delay.pull"},
                         [&, tx = std::move(buffer_tx)]() mutable {
                           for (In& item : input) {
                             tx.send({std::move(item), current_time() + delay_});
                           }
                         });
      try {
        for (std::pair<In, Time>& entry : buffer_rx) {
          sleep_until(entry.second);
          out.send(std::move(entry.first));
        }
      } catch (const BrokenResourceError&) {
        if (out.statistics().open_receive_channels != 0) throw;
        nursery.cancel_scope().cancel();  // downstream gone: stop reading the input too
      }
    });
  }

 private:
  Duration delay_;
  std::size_t buffer_size_max_;
};

// Passes an item iff more than `interval` passed since the last item that passed (per key
// when a key function is given, else for all items), and drops it otherwise. Keys must be
// ordered (operator<); keys idle for more than `interval` are forgotten, so the memory held
// is bounded by the number of keys seen within one interval.
struct NoKey {
  template <class T>
  std::monostate operator()(const T&) const noexcept {
    return {};
  }
};
template <class KeyFn = NoKey>
class RateLimit : public internal::SectionTag {
 public:
  static constexpr const char* kName = "pipeline.RateLimit";
  static constexpr std::size_t kPruneKeysAt = 1024;  // forget idle keys when this many
  explicit RateLimit(Duration interval, KeyFn key = {})
      : interval_(interval), key_(std::move(key)) {
    if (interval < Duration::zero())
      throw std::invalid_argument("RateLimit: interval must be >= 0");
  }

  template <class In>
  using output = In;

  template <class In>
  void refine(MemoryReceiveChannel<In>& input, MemorySendChannel<In>& out) {
    using Key = std::decay_t<std::invoke_result_t<KeyFn&, const In&>>;
    std::map<Key, Time> passed;  // ordered: no hash-order dependence
    for (In& item : input) {
      const Time now = current_time();
      Key key = std::invoke(key_, std::as_const(item));
      auto it = passed.find(key);
      if (it != passed.end() && now - it->second <= interval_) continue;  // dropped
      if (it == passed.end()) {
        if (passed.size() >= kPruneKeysAt) prune(passed, now);
        passed.emplace(std::move(key), now);
      } else {
        it->second = now;
      }
      out.send(std::move(item));
    }
  }

 private:
  template <class Map>
  void prune(Map& passed, Time now) const {
    std::erase_if(passed, [&](const auto& entry) { return now - entry.second > interval_; });
  }

  Duration interval_;
  KeyFn key_;
};
RateLimit(Duration)->RateLimit<NoKey>;
template <class F>
RateLimit(Duration, F) -> RateLimit<F>;

// Collects items into a std::vector and sends it when it holds max_size items or when
// `interval` passed since its first item, whichever comes first (interval Duration::max(): by
// count only; max_size kUnbounded: by time only). At the end of the input, a partly filled
// group is sent. A group is never empty.
class Group : public internal::SectionTag {
 public:
  static constexpr const char* kName = "pipeline.Group";
  explicit Group(std::size_t max_size, Duration interval = Duration::max())
      : size_max_(max_size), interval_(interval) {
    if (max_size == 0) throw std::invalid_argument("Group: max_size must be > 0");
    if (interval <= Duration::zero()) throw std::invalid_argument("Group: interval must be > 0");
    if (max_size == kUnbounded && interval == Duration::max()) {
      throw std::invalid_argument("Group: needs a bound: a max_size or an interval");
    }
  }

  template <class In>
  using output = std::vector<In>;

  template <class In>
  void refine(MemoryReceiveChannel<In>& input, MemorySendChannel<std::vector<In>>& out) {
    bool ended = false;
    while (!ended) {
      std::vector<In> group;
      try {
        group.push_back(input.receive());
        const Time deadline = saturating_add(current_time(), interval_);
        while (group.size() < size_max_) {
          std::optional<In> item = internal::receive_before(input, deadline);
          if (!item.has_value()) break;  // the group's time is up
          group.push_back(std::move(*item));
        }
      } catch (const EndOfChannel&) {
        ended = true;
      }
      if (!group.empty()) out.send(std::move(group));
    }
  }

 private:
  std::size_t size_max_;
  Duration interval_;
};

// Sends, for each item, the window of the latest items: at most max_size of them, none older
// than max_age (Duration::max(): no age limit), oldest first, once it holds at least min_size.
// Items must be copyable (an item appears in several windows).
class Window : public internal::SectionTag {
 public:
  static constexpr const char* kName = "pipeline.Window";
  explicit Window(std::size_t max_size, Duration max_age = Duration::max(),
                  std::size_t min_size = 1)
      : size_max_(max_size), age_max_(max_age), size_min_(min_size) {
    if (max_size == 0 || max_size == kUnbounded) {
      throw std::invalid_argument("Window: max_size must be > 0 and bounded");
    }
    if (max_age < Duration::zero()) throw std::invalid_argument("Window: max_age must be >= 0");
    if (min_size > max_size) throw std::invalid_argument("Window: min_size must be <= max_size");
  }

  template <class In>
  using output = std::vector<In>;

  template <class In>
  void refine(MemoryReceiveChannel<In>& input, MemorySendChannel<std::vector<In>>& out) {
    std::deque<std::pair<In, Time>> window;  // Invariant: size() <= size_max_ between items
    for (In& item : input) {
      const Time now = current_time();
      window.emplace_back(std::move(item), now);
      while (window.size() > size_max_ || now - window.front().second > age_max_) {
        window.pop_front();
      }
      if (window.size() < size_min_) continue;
      std::vector<In> items;
      items.reserve(window.size());
      for (const auto& entry : window) items.push_back(entry.first);
      out.send(std::move(items));
    }
  }

 private:
  std::size_t size_max_;
  Duration age_max_;
  std::size_t size_min_;
};

}  // namespace trellis::pipeline
