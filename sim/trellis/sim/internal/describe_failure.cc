#include "trellis/sim/internal/describe_failure.h"

#include "trellis/core/errors.h"
#include "trellis/core/exception_group.h"

namespace trellis::sim::internal {

std::string describe_failure(const std::exception_ptr& error, int depth) {
  try {
    std::rethrow_exception(error);
  } catch (const ExceptionGroup& group) {
    if (depth > 8) return group.what();
    std::string out;
    for (const std::exception_ptr& inner : group.exceptions()) {
      out += (out.empty() ? "" : "; ") + describe_failure(inner, depth + 1);
    }
    return out.empty() ? group.what() : out;
  } catch (const std::exception& e) {
    return e.what();
  } catch (const Cancelled&) {
    return "Cancelled escaped the run";
  } catch (...) {
    return "an exception of unknown type";
  }
}

}  // namespace trellis::sim::internal
