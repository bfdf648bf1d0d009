// trellis/pipeline/internal/output.h — the end of a pipeline: the pump task that copies each
// item of the last section to every tap (Slurry's Pipeline._pump and Tap).
#pragma once

#include <cstddef>
#include <list>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <utility>

#include "trellis/base/assert.h"
#include "trellis/base/force_inline.h"
#include "trellis/channel/memory_channel.h"
#include "trellis/core/cancel_scope.h"
#include "trellis/core/errors.h"
#include "trellis/core/nursery.h"
#include "trellis/core/time.h"
#include "trellis/sync/event.h"

namespace trellis::pipeline {

// How the pipeline sends to one tap (Slurry's tap options).
struct TapOptions {
  // The tap channel's buffer: 0 (rendezvous) or a bound; kUnbounded is allowed but unbounded.
  std::size_t max_buffer_size = 0;
  // Longest wait for this tap's reader to take one item; zero: wait as long as it takes
  // (Slurry's math.inf). A reader that stalls past timeout * (retrys + 1) fails the pipeline
  // with BusyResourceError.
  Duration timeout{};
  int retrys = 0;  // further attempts after a timed-out one (Slurry's spelling)
};

namespace internal {

// The demangled name of a type, for error messages (pipeline.cc).
std::string type_name(const std::type_info& type);
// Throws std::invalid_argument if the options are out of range.
void validate_tap_options(const TapOptions& options, bool copyable);

// The type-erased part of a pipeline's output, shared by the Pipeline handles, the pump task
// and the pipelines that extend it.
class OutputBase {
 public:
  virtual ~OutputBase() = default;
  virtual const std::type_info& type() const noexcept = 0;

  // The first tap starts the pump; an extension's first tap starts its parent as well.
  void enable() noexcept {
    wake_.set();
    if (parent_ != nullptr) parent_->enable();
  }
  // The last Pipeline handle went away: a pump that never got a tap stops instead of waiting.
  void release() noexcept { wake_.set(); }
  void set_parent(std::shared_ptr<OutputBase> parent) { parent_ = std::move(parent); }

 protected:
  Event wake_;  // set by the first tap (or by release()): the pump may start

 private:
  std::shared_ptr<OutputBase> parent_;  // the pipeline this one extends, if any
};

template <class T>
class Output final : public OutputBase {
 public:
  const std::type_info& type() const noexcept override { return typeid(T); }

  // A new tap. `enable`: false for an extension's feed, which must not start the parent.
  MemoryReceiveChannel<T> add_tap(TapOptions options, bool enable) {
    validate_tap_options(options, std::is_copy_constructible_v<T>);
    if (!std::is_copy_constructible_v<T> && !taps_.empty()) {
      throw std::invalid_argument("Pipeline::tap: a second tap copies every item, but " +
                                  type_name(typeid(T)) + " is not copy-constructible");
    }
    auto [tx, rx] = open_memory_channel<T>(options.max_buffer_size);
    if (finished_) return std::move(rx);  // tx closes here: the reader sees EndOfChannel
    taps_.push_back(Tap{std::move(tx), options});
    if (enable) this->enable();
    return std::move(rx);
  }

  // The pump task's body: waits for the first tap, then sends every item to every tap, in
  // order, and closes the taps at the end. Returns when the input ends or every tap closed
  // (then the input is closed, which stops the sections upstream).
  void pump(MemoryReceiveChannel<T>& input) {
    try {
      wake_.wait();
      // Taps are checked once per item, after it arrived (as Slurry does): a reader that
      // closes its tap while the pump waits is noticed with the next item.
      if (!drop_closed_taps()) return finish();
      for (;;) {
        std::optional<T> item;
        try {
          item.emplace(input.receive());
        } catch (const EndOfChannel&) {
          break;
        }
        if (!drop_closed_taps()) break;  // Slurry drops this item too
        deliver(std::move(*item));
      }
    } catch (...) {
      finish();
      throw;
    }
    finish();
  }

 private:
  struct Tap {
    MemorySendChannel<T> channel;
    TapOptions options;
    bool closed = false;  // the reader closed its end

    // Sends one item, honouring timeout and retrys (Slurry's Tap.send).
    // (Forced inline down to the channel's send, as the channel's own paths are: the pump
    // resumes there after every switch, and each function it returned through would be a
    // mispredicted return; core/lowlevel_inline.h.)
    template <class V>
    TRELLIS_FORCE_INLINE void send(V&& item) {
      if (options.timeout == Duration::zero()) {
        send_once(T(std::forward<V>(item)));
        return;
      }
      if constexpr (std::is_copy_constructible_v<T>) {
        for (int attempt = 0; attempt <= options.retrys; ++attempt) {
          if (move_on_after(options.timeout, [&] { send_once(T(item)); })) return;
          checkpoint();
        }
        throw BusyResourceError("pipeline tap: unable to send item of type " +
                                type_name(typeid(T)) + " in " + std::to_string(options.retrys + 1) +
                                " attempt(s)");
      } else {
        TRELLIS_ASSERT(false);  // validate_tap_options refuses a timeout for move-only T
      }
    }
    TRELLIS_FORCE_INLINE void send_once(T value) {
      try {
        channel.send(std::move(value));
      } catch (const BrokenResourceError&) {
        closed = true;
      }
    }
  };

  // Forgets the taps whose reader is gone; false when none is left.
  bool drop_closed_taps() {
    taps_.remove_if([](const Tap& tap) {
      return tap.closed || tap.channel.statistics().open_receive_channels == 0;
    });
    return !taps_.empty();
  }

  // One tap: the item moves. Several: each gets a copy, sent concurrently so a slow tap does
  // not delay the others' delivery of this item; the next item waits for all of them
  // (back-pressure, bounded by the taps' timeouts).
  TRELLIS_FORCE_INLINE void deliver(T item) {
    TRELLIS_ASSERT(!taps_.empty());
    if (taps_.size() == 1) {
      taps_.front().send(std::move(item));
      return;
    }
    if constexpr (std::is_copy_constructible_v<T>) {
      open_nursery([&](Nursery& nursery) {
        // std::list: tap() may append while we send; these references stay valid.
        for (Tap& tap : taps_) nursery.start_soon([&tap, &item] { tap.send(item); });
      });
    }
  }

  void finish() noexcept {
    finished_ = true;
    for (Tap& tap : taps_) tap.channel.close();
    taps_.clear();
  }

  // Invariant: taps_ holds only taps added before finished_ was set; after it, none.
  std::list<Tap> taps_;
  bool finished_ = false;
};

}  // namespace internal
}  // namespace trellis::pipeline
