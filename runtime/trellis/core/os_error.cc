#include "trellis/core/os_error.h"

#include <netdb.h>

#include <cerrno>
#include <cstring>

namespace trellis {
namespace {

// getaddrinfo's EAI_* codes (negative on glibc), which resolve() reports like errno values.
class AddrinfoCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "getaddrinfo"; }
  std::string message(int value) const override { return ::gai_strerror(value); }
};

const std::error_category& category_for(int value) {
  static const AddrinfoCategory addrinfo;
  return value < 0 ? addrinfo : std::generic_category();
}

const char* addrinfo_error_name(int value) {
  switch (value) {
    case EAI_ADDRFAMILY:
      return "EAI_ADDRFAMILY";
    case EAI_AGAIN:
      return "EAI_AGAIN";
    case EAI_BADFLAGS:
      return "EAI_BADFLAGS";
    case EAI_FAIL:
      return "EAI_FAIL";
    case EAI_FAMILY:
      return "EAI_FAMILY";
    case EAI_MEMORY:
      return "EAI_MEMORY";
    case EAI_NODATA:
      return "EAI_NODATA";
    case EAI_NONAME:
      return "EAI_NONAME";
    case EAI_SERVICE:
      return "EAI_SERVICE";
    case EAI_SOCKTYPE:
      return "EAI_SOCKTYPE";
    case EAI_SYSTEM:
      return "EAI_SYSTEM";
    default:
      return nullptr;
  }
}

}  // namespace

std::string errno_name(int errno_value) {
  if (errno_value < 0) {
    const char* name = addrinfo_error_name(errno_value);
    return name != nullptr ? std::string(name) : "EAI " + std::to_string(errno_value);
  }
  // strerrorname_np is glibc >= 2.32 (Debian 12 has 2.36).
  const char* name = ::strerrorname_np(errno_value);
  return name != nullptr ? std::string(name) : "errno " + std::to_string(errno_value);
}

OSError::OSError(int errno_value, const std::string& operation)
    : std::system_error(errno_value, category_for(errno_value),
                        operation + " (" + errno_name(errno_value) + ")"),
      operation_(operation) {}

}  // namespace trellis
