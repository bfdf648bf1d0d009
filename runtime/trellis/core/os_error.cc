#include "trellis/core/os_error.h"

#include <cerrno>
#include <cstring>

namespace trellis {

std::string errno_name(int errno_value) {
  // strerrorname_np is glibc >= 2.32 (Debian 12 has 2.36).
  const char* name = ::strerrorname_np(errno_value);
  return name != nullptr ? std::string(name) : "errno " + std::to_string(errno_value);
}

OSError::OSError(int errno_value, const std::string& operation)
    : std::system_error(errno_value, std::generic_category(),
                        operation + " (" + errno_name(errno_value) + ")"),
      operation_(operation) {}

}  // namespace trellis
