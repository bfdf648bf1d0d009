// trellis/posix/internal/fresh_seed.h — a schedule seed drawn afresh for every run, as Trio
// orders its batches differently in every run (posix/default_run.cc).
#pragma once

#include <cstdint>

namespace trellis::internal {

std::uint64_t fresh_schedule_seed();

}  // namespace trellis::internal
