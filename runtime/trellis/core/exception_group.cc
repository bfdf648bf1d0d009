#include "trellis/core/exception_group.h"

#include "trellis/base/assert.h"
#include "trellis/core/errors.h"

namespace trellis {
namespace {

std::string build_what(const std::string& message,
                       const std::vector<std::exception_ptr>& exceptions) {
  std::string what = message + " (" + std::to_string(exceptions.size()) + " sub-exception" +
                     (exceptions.size() == 1 ? "" : "s") + ")";
  for (const std::exception_ptr& e : exceptions) {
    what += "\n  - " + describe_exception(e);
  }
  return what;
}

}  // namespace

const char* Cancelled::what() const noexcept {
  switch (source_) {
    case CancelSource::kExplicit:
      return "cancelled due to explicit";
    case CancelSource::kDeadline:
      return "cancelled due to deadline";
    case CancelSource::kNursery:
      return "cancelled due to nursery";
    case CancelSource::kShutdown:
      return "cancelled due to shutdown";
    case CancelSource::kKeyboardInterrupt:
      return "cancelled due to KeyboardInterrupt";
    case CancelSource::kDeadlock:
      return "cancelled due to deadlock";
    case CancelSource::kUnknown:
      return "cancelled due to unknown";
  }
  return "cancelled";
}

const char* to_string(CancelSource source) noexcept {
  switch (source) {
    case CancelSource::kExplicit:
      return "explicit";
    case CancelSource::kDeadline:
      return "deadline";
    case CancelSource::kNursery:
      return "nursery";
    case CancelSource::kShutdown:
      return "shutdown";
    case CancelSource::kKeyboardInterrupt:
      return "KeyboardInterrupt";
    case CancelSource::kDeadlock:
      return "deadlock";
    case CancelSource::kUnknown:
      return "unknown";
  }
  return "unknown";
}

ExceptionGroup::ExceptionGroup(std::string message, std::vector<std::exception_ptr> exceptions,
                               bool loose)
    : message_(std::move(message)),
      exceptions_(std::move(exceptions)),
      loose_(loose),
      what_(build_what(message_, exceptions_)) {
  for (const std::exception_ptr& e : exceptions_) TRELLIS_ASSERT(e != nullptr);
}

std::size_t ExceptionGroup::leaf_count() const {
  std::size_t count = 0;
  for (const std::exception_ptr& e : exceptions_) {
    try {
      std::rethrow_exception(e);
    } catch (const ExceptionGroup& group) {
      count += group.leaf_count();
    } catch (...) {
      ++count;
    }
  }
  return count;
}

std::string describe_exception(const std::exception_ptr& error) {
  if (error == nullptr) return "(no exception)";
  try {
    std::rethrow_exception(error);
  } catch (const Cancelled& cancelled) {
    return std::string("Cancelled: ") + cancelled.what();
  } catch (const ExceptionGroup& group) {
    return "ExceptionGroup: " + group.message() + " (" + std::to_string(group.exceptions().size()) +
           ")";
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "unknown exception";
  }
}

namespace internal {

bool is_cancelled(const std::exception_ptr& error) noexcept {
  if (error == nullptr) return false;
  try {
    std::rethrow_exception(error);
  } catch (const Cancelled&) {
    return true;
  } catch (...) {
    return false;
  }
}

std::exception_ptr strip_cancelled(const std::exception_ptr& error, bool* matched) {
  TRELLIS_ASSERT(matched != nullptr);
  if (error == nullptr) return nullptr;
  try {
    std::rethrow_exception(error);
  } catch (const Cancelled&) {
    *matched = true;
    return nullptr;
  } catch (const ExceptionGroup& group) {
    std::vector<std::exception_ptr> kept;
    bool changed = false;
    for (const std::exception_ptr& member : group.exceptions()) {
      bool member_matched = false;
      std::exception_ptr rest = strip_cancelled(member, &member_matched);
      if (member_matched) {
        changed = true;
        *matched = true;
      }
      if (rest != nullptr) kept.push_back(rest);
    }
    if (!changed) return error;
    if (kept.empty()) return nullptr;
    if (group.loose() && kept.size() == 1) return kept.front();
    return std::make_exception_ptr(ExceptionGroup(group.message(), std::move(kept), group.loose()));
  } catch (...) {
    return error;
  }
}

}  // namespace internal
}  // namespace trellis
