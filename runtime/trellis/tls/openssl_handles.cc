#include "trellis/tls/openssl_handles.h"

#include <openssl/err.h>

#include <limits>
#include <new>

namespace trellis::openssl {

std::string drain_error_queue() {
  std::string joined;
  // Bounded by OpenSSL's queue size (ERR_NUM_ERRORS = 16): each ERR_get_error pops one.
  for (unsigned long code = ERR_get_error(); code != 0; code = ERR_get_error()) {
    const char* reason = ERR_reason_error_string(code);
    std::string text = reason != nullptr ? reason : "OpenSSL error " + std::to_string(code);
    if (joined.find(text) != std::string::npos) continue;  // one line per distinct reason
    if (!joined.empty()) joined += "; ";
    joined += text;
  }
  return joined;
}

BioPtr memory_bio(std::string_view text) {
  if (text.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
    throw std::bad_alloc();
  }
  BioPtr bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
  if (bio == nullptr) throw std::bad_alloc();
  return bio;
}

std::string bio_contents(BIO* bio) {
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);
  return size > 0 ? std::string(data, static_cast<std::size_t>(size)) : std::string();
}

}  // namespace trellis::openssl
