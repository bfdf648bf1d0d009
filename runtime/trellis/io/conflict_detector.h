// trellis/io/conflict_detector.h — ConflictDetector: turn "two tasks used a one-task resource
// at once" into a BusyResourceError (Trio's trio._util.ConflictDetector).
//
// Some operations must never overlap (two send_all calls on one stream would interleave
// bytes), yet overlapping them is a caller bug, not something to queue up behind a Lock. A
// ConflictDetector costs one bool: each such operation holds a Guard for its whole duration,
// and a second task that tries to enter while the first is inside gets BusyResourceError.
//
//   class MyStream final : public trellis::SendStream {
//     void send_all(std::span<const std::byte> data) override {
//       trellis::ConflictDetector::Guard guard(send_conflict_);  // throws if another task sends
//       ...  // may block: a concurrent send_all now fails fast instead of interleaving
//     }
//     trellis::ConflictDetector send_conflict_{"another task is using this stream for send"};
//   };
//
// Not thread-safe: for the tasks of one run (like everything a task touches).
#pragma once

#include "trellis/core/errors.h"

namespace trellis {

class ConflictDetector {
 public:
  // Holds the detector from construction to destruction. Constructing a Guard while another
  // Guard holds the same detector throws BusyResourceError(message) and holds nothing. Never
  // blocks; not a checkpoint.
  class [[nodiscard]] Guard {
   public:
    explicit Guard(ConflictDetector& detector) : detector_(detector) {
      if (detector_.held_) throw BusyResourceError(detector_.message_);
      detector_.held_ = true;
    }
    ~Guard() { detector_.held_ = false; }
    Guard(const Guard&) = delete;
    Guard& operator=(const Guard&) = delete;

   private:
    ConflictDetector& detector_;
  };

  // `message` becomes the BusyResourceError's what(); it must outlive the detector (use a
  // string literal), e.g. "another task is using this stream".
  explicit constexpr ConflictDetector(const char* message) noexcept : message_(message) {}
  ConflictDetector(const ConflictDetector&) = delete;
  ConflictDetector& operator=(const ConflictDetector&) = delete;

  // True while some task holds a Guard on this detector.
  bool held() const noexcept { return held_; }
  const char* message() const noexcept { return message_; }

 private:
  const char* message_;
  // Invariant: true iff exactly one live Guard refers to this detector (a Guard sets it only
  // after checking it was false, and clears it when destroyed).
  bool held_ = false;
};

}  // namespace trellis
