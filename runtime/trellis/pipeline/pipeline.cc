// trellis/pipeline/pipeline.cc — the non-template parts of Pipeline: type names for errors and
// the validation of tap options.
#include "trellis/pipeline/pipeline.h"

#include <cxxabi.h>

#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>

namespace trellis::pipeline {
namespace internal {

std::string type_name(const std::type_info& type) {
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> demangled(
      abi::__cxa_demangle(type.name(), nullptr, nullptr, &status), std::free);
  if (status != 0 || demangled == nullptr) return type.name();
  return demangled.get();
}

void validate_tap_options(const TapOptions& options, bool copyable) {
  if (options.timeout < Duration::zero()) {
    throw std::invalid_argument("Pipeline::tap: timeout must be >= 0 (0: no timeout)");
  }
  if (options.retrys < 0) throw std::invalid_argument("Pipeline::tap: retrys must be >= 0");
  if (options.retrys > 0 && options.timeout == Duration::zero()) {
    throw std::invalid_argument(
        "Pipeline::tap: retrys needs a timeout (a send without one never "
        "times out, so it is never retried)");
  }
  if (!copyable && options.timeout != Duration::zero()) {
    throw std::invalid_argument(
        "Pipeline::tap: a timeout needs a copy-constructible item type (a timed-out send "
        "would lose a move-only item)");
  }
}

}  // namespace internal

PipelineTypeError::PipelineTypeError(const std::type_info& requested, const std::type_info& actual)
    : std::invalid_argument("pipeline: requested item type " + internal::type_name(requested) +
                            " but the pipeline's output type is " + internal::type_name(actual)),
      requested_(internal::type_name(requested)),
      actual_(internal::type_name(actual)) {}

}  // namespace trellis::pipeline
