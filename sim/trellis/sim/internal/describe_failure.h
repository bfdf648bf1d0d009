// sim/internal/describe_failure.h — a failed run's exception as a reader wants it (the
// harness's RunResult::failure, the exhaustive explorer's): nested exception groups
// flattened to their leaves.
#pragma once

#include <exception>
#include <string>

namespace trellis::sim::internal {

std::string describe_failure(const std::exception_ptr& error, int depth = 0);

}  // namespace trellis::sim::internal
