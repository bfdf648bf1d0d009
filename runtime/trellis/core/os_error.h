// trellis/core/os_error.h — OSError: a failed operating-system call, with its errno and the
// operation that failed ("connect to 127.0.0.1:9: Connection refused (ECONNREFUSED)").
//
// Facets (core/io_facet.h, core/network_facet.h) return errno values; the layers above turn
// the ones they do not handle (EAGAIN is handled: it means park) into OSError. The simulator
// produces the same errno values the kernel would, so one catch handles both.
#pragma once

#include <string>
#include <system_error>

namespace trellis {

class OSError : public std::system_error {
 public:
  // `operation` names the call and its argument, e.g. "connect to 10.0.0.1:80". A negative
  // errno_value is a getaddrinfo EAI_* code (what NetworkFacet::resolve reports): its
  // category is then "getaddrinfo" and the message gai_strerror's.
  OSError(int errno_value, const std::string& operation);
  int errno_value() const noexcept { return code().value(); }
  const std::string& operation() const noexcept { return operation_; }

 private:
  std::string operation_;
};

// The symbolic name of an errno value ("ECONNREFUSED") or of a negative EAI_* code
// ("EAI_NONAME"), or "errno N" if unknown.
std::string errno_name(int errno_value);

}  // namespace trellis
