// trellis/sim/internal/handle_table.h — HandleTable: which part of the simulated backend owns
// an IoHandle (a socket or a pipe end), so IoFacet calls on any handle reach the right part.
//
// Handles are numbers from one counter, starting at 3 as descriptors do, never reused within a
// run; the table is indexed by number (one byte per handle ever made).
#pragma once

#include <cstdint>
#include <vector>

#include "trellis/base/assert.h"

namespace trellis::sim::internal {

enum class HandleKind : std::uint8_t { kNone, kSocket, kPipe };

class HandleTable {
 public:
  // A fresh handle owned by kind.
  std::int64_t allocate(HandleKind kind) {
    TRELLIS_ASSERT(kind != HandleKind::kNone);
    kinds_.push_back(kind);
    return kFirst + static_cast<std::int64_t>(kinds_.size()) - 1;
  }
  // kNone for a number never handed out or released.
  HandleKind kind(std::int64_t id) const noexcept {
    if (id < kFirst || id - kFirst >= static_cast<std::int64_t>(kinds_.size())) {
      return HandleKind::kNone;
    }
    return kinds_[static_cast<std::size_t>(id - kFirst)];
  }
  // The owner is done with id (the number is never handed out again).
  void release(std::int64_t id) {
    TRELLIS_ASSERT(kind(id) != HandleKind::kNone);
    kinds_[static_cast<std::size_t>(id - kFirst)] = HandleKind::kNone;
  }

 private:
  static constexpr std::int64_t kFirst = 3;  // as file descriptors: 0-2 are taken
  // Invariant: kinds_[i] is the owner of handle kFirst + i.
  std::vector<HandleKind> kinds_;
};

}  // namespace trellis::sim::internal
