// The RAND_METHOD interface is deprecated in OpenSSL 3 in favour of providers, but it is the
// one hook that reaches every draw (RAND_bytes_ex and RAND_priv_bytes_ex consult it first) and
// that can be removed again at run time; a provider cannot be unloaded from the default
// library context while it is in use.
#define OPENSSL_SUPPRESS_DEPRECATED 1

#include "trellis/tls/openssl_random.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <climits>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>

#include "trellis/base/assert.h"
#include "trellis/core/backend.h"
#include "trellis/core/lowlevel.h"

namespace trellis {
namespace {

thread_local DeterministicOpenSslRandom* current_guard = nullptr;

// Guards alive in the process, under install_mutex: the method is installed while > 0.
std::mutex install_mutex;
std::size_t guards_alive = 0;

int method_bytes(unsigned char* out, int size) {
  if (size < 0) return 0;
  if (current_guard != nullptr) {
    current_guard->fill(out, static_cast<std::size_t>(size));
    return 1;
  }
  // Another thread: OpenSSL's own generator (its DRBG, not this method: no recursion).
  EVP_RAND_CTX* drbg = RAND_get0_private(nullptr);
  if (drbg == nullptr) return 0;
  return EVP_RAND_generate(drbg, out, static_cast<std::size_t>(size), 0, 0, nullptr, 0);
}

int method_status() {
  return 1;
}
int method_seed(const void*, int) {
  return 1;
}
int method_add(const void*, int, double) {
  return 1;
}

const RAND_METHOD kMethod = {
    .seed = method_seed,
    .bytes = method_bytes,
    .cleanup = nullptr,
    .add = method_add,
    .pseudorand = method_bytes,
    .status = method_status,
};

}  // namespace

DeterministicOpenSslRandom::DeterministicOpenSslRandom(std::uint64_t seed)
    : prng_(seed ^ 0x6f70656e73736c00ULL), outer_(current_guard) {
  std::lock_guard<std::mutex> hold(install_mutex);
  if (guards_alive++ == 0) {
    const int installed = RAND_set_rand_method(&kMethod);
    TRELLIS_ASSERT(installed == 1);
  }
  current_guard = this;
}

DeterministicOpenSslRandom::~DeterministicOpenSslRandom() {
  TRELLIS_ASSERT(current_guard == this);  // guards end in reverse order, on their thread
  current_guard = outer_;
  std::lock_guard<std::mutex> hold(install_mutex);
  TRELLIS_ASSERT(guards_alive > 0);
  if (--guards_alive == 0) RAND_set_rand_method(nullptr);  // back to OpenSSL's default
}

bool DeterministicOpenSslRandom::active() noexcept {
  return current_guard != nullptr;
}

void DeterministicOpenSslRandom::fill(unsigned char* out, std::size_t size) noexcept {
  bytes_drawn_ += size;
  while (size > 0) {
    const std::uint64_t word = prng_.next();
    const std::size_t n = size < sizeof(word) ? size : sizeof(word);
    std::memcpy(out, &word, n);
    out += n;
    size -= n;
  }
}

namespace internal {

void use_run_randomness() {
  if (!lowlevel::in_run() || DeterministicOpenSslRandom::active()) return;
  const std::optional<std::uint64_t> seed = lowlevel::current_backend().library_seed();
  if (!seed.has_value()) return;
  // Lives as long as the run (its run-local slot), on the run's thread.
  static const char key = 0;
  std::shared_ptr<void>& slot = lowlevel::run_local(&key);
  if (slot == nullptr) slot = std::make_shared<DeterministicOpenSslRandom>(*seed);
}

}  // namespace internal
}  // namespace trellis
