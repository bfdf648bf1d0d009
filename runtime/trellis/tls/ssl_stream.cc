#include "trellis/tls/ssl_stream.h"

#include "trellis/tls/openssl_random.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include <algorithm>
#include <limits>
#include <mutex>
#include <stdexcept>
#include <utility>

#include "trellis/base/assert.h"
#include "trellis/base/function_ref.h"
#include "trellis/core/run.h"
#include "trellis/io/close_forcefully.h"
#include "trellis/io/conflict_detector.h"
#include "trellis/sync/event.h"
#include "trellis/sync/lock.h"
#include "trellis/tls/internal/context_state.h"
#include "trellis/tls/internal/ssl_failure.h"
#include "trellis/tls/openssl_handles.h"

namespace trellis::tls_internal {
namespace {

// The first transport read of a stream asks for this much; later reads grow to the largest
// record seen, up to kReceiveSizeMax (Trio's STARTING_RECEIVE_SIZE and its growth).
constexpr std::size_t kReceiveSizeStart = 16384;
constexpr std::size_t kReceiveSizeMax = 65536;
// One SSL_write call writes at most this much (OpenSSL's lengths are int).
constexpr std::size_t kWriteChunkMax = std::size_t{1} << 30;
// What an operation passed to retry() returns for "wait for more input" when OpenSSL says so
// by a return value SSL_get_error cannot interpret (SSL_shutdown's 0).
constexpr int kWantRead = std::numeric_limits<int>::min();

bool is_ip_address(const std::string& host) {
  unsigned char buffer[16];
  return inet_pton(AF_INET, host.c_str(), buffer) == 1 ||
         inet_pton(AF_INET6, host.c_str(), buffer) == 1;
}

// Takes lock without a schedule point when it is free (the transport call that follows is
// the operation's checkpoint); waits for it otherwise. Returns a guard that releases it.
template <class L>
std::unique_lock<L> hold(L& lock) {
  std::unique_lock<L> guard(lock, std::try_to_lock);
  if (!guard.owns_lock()) guard.lock();
  return guard;
}

}  // namespace

enum class StreamStatus { kOk, kBroken, kClosed };
enum class HandshakeStatus { kNotStarted, kRunning, kDone };
// What retry() does with an operation that wants more input.
// kHandshake: a TLS 1.3 server's finished handshake puts its session tickets aside
// (deferred_); they go out in front of the next record this stream sends. Sending them at
// once would block the server's handshake (or its next receive) on the client reading, which
// a client that only sends next never does: over a lockstep transport that deadlocks both.
// kRaggedEofIsEof: an https_compatible stream's read, for which the peer closing the
// transport without close_notify is a clean end of file (Trio): reported as 0 with no
// exception thrown (and caught again), as a peer that just drops the connection is common.
enum class RetryMode { kNormal, kIgnoreWantRead, kHandshake, kRaggedEofIsEof };

// Everything an SslStream owns, on the heap so the stream can move while the locks, the
// detectors and the event (which tasks may be parked on) stay put.
class SslStreamState {
 public:
  SslStreamState(std::unique_ptr<Stream> transport, SslContext& context,
                 SslStream::Options options);

  void check_status() const;
  void ensure_handshake(bool checkpoint_if_done);
  // Trio's SSLStream._retry: runs op (an SSL_* call) until it completes, moving bytes between
  // OpenSSL's memory BIOs and the transport. Returns op's result (0 for a clean EOF).
  int retry(FunctionRef<int()> op, const char* operation, RetryMode mode = RetryMode::kNormal);
  void mark_broken(std::string reason) noexcept;

  void send_all(std::span<const std::byte> data);
  void wait_send_all_might_not_block();
  std::size_t receive_some(std::span<std::byte> buffer);
  void close();
  std::unique_ptr<Stream> unwrap(std::vector<std::byte>* trailing);

  // Invariant: non-null until unwrap() hands it out (then status_ is kClosed).
  std::unique_ptr<Stream> transport;
  // Keeps the SSL_CTX and the ALPN list its callback reads alive as long as ssl.
  std::shared_ptr<ContextState> context;
  openssl::SslPtr ssl;
  // Owned by ssl (SSL_set_bio): ciphertext from the transport, and ciphertext for it.
  BIO* incoming = nullptr;
  BIO* outgoing = nullptr;
  SslStream::Options options;

 private:
  // Returns whether op must wait for more input; throws (and breaks the stream) on failure,
  // except for a ragged EOF when ragged_eof is given: then the stream is broken, ret is 0
  // and *ragged_eof is set.
  bool interpret(int& ret, const char* operation, bool* ragged_eof);
  // What OpenSSL wrote for the transport (after what was deferred), or {} if nothing is to
  // go now. handshake_finished: this is the handshake's last output.
  std::vector<std::byte> take_outgoing(bool handshake_finished);
  void send_ciphertext(std::vector<std::byte> bytes);
  void receive_ciphertext();

  // Invariant: moves only kOk -> kBroken, kOk -> kClosed, kBroken -> kClosed.
  StreamStatus status_ = StreamStatus::kOk;
  std::string broken_reason_;
  // Invariant: kDone implies handshake_done_ is set; kRunning means exactly one task runs it.
  HandshakeStatus handshake_ = HandshakeStatus::kNotStarted;
  Event handshake_done_;
  // Held while a task hands ciphertext to (takes it from) the transport: a sender and a
  // receiver may both need to write (a TLS 1.3 key update, an alert), but the transport takes
  // one writer at a time. StrictFIFO so that records go out in the order they were made.
  StrictFIFOLock inner_send_lock_;
  Lock inner_receive_lock_;
  // Incremented by every transport read: a task that waited for inner_receive_lock_ while
  // another read does not read again before it retried its operation (Trio's
  // _inner_recv_count).
  std::uint64_t inner_receive_count_ = 0;
  std::size_t receive_size_ = kReceiveSizeStart;
  // Invariant: holds receive_buffer_size_ bytes (0: not allocated yet).
  std::unique_ptr<std::byte[]> receive_buffer_;
  std::size_t receive_buffer_size_ = 0;
  // Ciphertext made but not yet sent: a TLS 1.3 server's session tickets (see RetryMode).
  // Invariant: goes out before any later ciphertext, in one send_all with it.
  std::vector<std::byte> deferred_;
  ConflictDetector send_conflict_{"another task is using this SslStream for send"};
  ConflictDetector receive_conflict_{"another task is using this SslStream for receive"};
};

SslStreamState::SslStreamState(std::unique_ptr<Stream> transport_stream, SslContext& ssl_context,
                               SslStream::Options stream_options)
    : transport(std::move(transport_stream)),
      context(ssl_context.state()),
      options(std::move(stream_options)) {
  if (transport == nullptr) throw std::invalid_argument("SslStream: transport is null");
  if (context->client == options.server_side) {
    throw std::invalid_argument(options.server_side
                                    ? "SslStream: server_side needs a server context"
                                    : "SslStream: a client stream needs a client context");
  }
  const std::string& host = options.server_hostname;
  if (!options.server_side && context->verify_peer && host.empty()) {
    throw std::invalid_argument(
        "SslStream: the context verifies the server, so server_hostname is required");
  }
  ERR_clear_error();
  ssl.reset(SSL_new(context->ctx.get()));
  incoming = BIO_new(BIO_s_mem());
  outgoing = BIO_new(BIO_s_mem());
  if (ssl == nullptr || incoming == nullptr || outgoing == nullptr) {
    BIO_free(incoming);
    BIO_free(outgoing);
    throw SslError("SslStream: SSL_new failed", openssl::drain_error_queue());
  }
  BIO_set_mem_eof_return(incoming, -1);  // empty means "want more", until the transport's EOF
  SSL_set_bio(ssl.get(), incoming, outgoing);
  if (options.server_side) {
    SSL_set_accept_state(ssl.get());
  } else {
    SSL_set_connect_state(ssl.get());
    const bool ip = is_ip_address(host);
    bool ok = true;
    if (!host.empty() && !ip) ok = SSL_set_tlsext_host_name(ssl.get(), host.c_str()) == 1;
    if (!host.empty() && context->verify_peer) {
      X509_VERIFY_PARAM* param = SSL_get0_param(ssl.get());
      ok = ok && (ip ? X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str())
                     : X509_VERIFY_PARAM_set1_host(param, host.c_str(), host.size())) == 1;
    }
    if (!ok) throw SslError("SslStream: bad server_hostname", openssl::drain_error_queue());
  }
  TRELLIS_ASSERT(SSL_get_rbio(ssl.get()) == incoming && SSL_get_wbio(ssl.get()) == outgoing);
}

void SslStreamState::check_status() const {
  TRELLIS_ASSERT(status_ != StreamStatus::kOk || transport != nullptr);
  if (status_ == StreamStatus::kClosed) throw ClosedResourceError("this SslStream is closed");
  if (status_ == StreamStatus::kBroken) {
    throw BrokenResourceError("this SslStream is broken (" + broken_reason_ + ")");
  }
}

void SslStreamState::mark_broken(std::string reason) noexcept {
  if (status_ != StreamStatus::kOk) return;  // a close that came first stays a close
  status_ = StreamStatus::kBroken;
  broken_reason_ = std::move(reason);
}

bool SslStreamState::interpret(int& ret, const char* operation, bool* ragged_eof) {
  if (ret > 0) return false;
  if (ret == kWantRead) return true;
  const int error = SSL_get_error(ssl.get(), ret);
  switch (error) {
    case SSL_ERROR_WANT_READ:
      return true;
    case SSL_ERROR_WANT_WRITE:  // a memory BIO never refuses a write; nothing to wait for
      return false;
    case SSL_ERROR_ZERO_RETURN:  // the peer's close_notify: a clean end of file
      ERR_clear_error();
      ret = 0;
      return false;
    default: {
      SslError failure = make_ssl_error(ssl.get(), error, operation);
      mark_broken(failure.what());
      if (ragged_eof != nullptr && failure.unexpected_eof()) {
        *ragged_eof = true;
        ret = 0;
        return false;
      }
      throw failure;
    }
  }
}

void SslStreamState::send_ciphertext(std::vector<std::byte> bytes) {
  TRELLIS_ASSERT(!bytes.empty());
  // Any failure here (cancelled while waiting for the lock, or in the middle of the send)
  // loses records the peer needs: the stream cannot go on.
  try {
    const auto held = hold(inner_send_lock_);
    transport->send_all(bytes);
  } catch (...) {
    mark_broken("a send to the transport failed or was cancelled");
    throw;
  }
}

void SslStreamState::receive_ciphertext() {
  const std::uint64_t count = inner_receive_count_;
  const auto held = hold(inner_receive_lock_);
  if (count != inner_receive_count_) return;  // another task read while we waited: retry first
  // Kept between reads and never zero-filled (the transport overwrites what it reports);
  // grows with receive_size_.
  if (receive_buffer_size_ < receive_size_) {
    receive_buffer_ = std::make_unique_for_overwrite<std::byte[]>(receive_size_);
    receive_buffer_size_ = receive_size_;
  }
  const std::span<std::byte> buffer(receive_buffer_.get(), receive_size_);
  const std::size_t n = transport->receive_some(buffer);
  TRELLIS_ASSERT(n <= buffer.size());
  if (n == 0) {
    BIO_set_mem_eof_return(incoming, 0);  // OpenSSL now sees the transport's end of file
  } else {
    const int written = BIO_write(incoming, buffer.data(), static_cast<int>(n));
    TRELLIS_ASSERT(written == static_cast<int>(n));  // a memory BIO grows as needed
    if (n == buffer.size()) receive_size_ = std::min(receive_size_ * 2, kReceiveSizeMax);
  }
  ++inner_receive_count_;
}

std::vector<std::byte> SslStreamState::take_outgoing(bool handshake_finished) {
  std::vector<std::byte> bytes(BIO_ctrl_pending(outgoing));
  if (!bytes.empty()) {
    const int n = BIO_read(outgoing, bytes.data(), static_cast<int>(bytes.size()));
    TRELLIS_ASSERT(n == static_cast<int>(bytes.size()));
  }
  if (handshake_finished && options.server_side && SSL_version(ssl.get()) == TLS1_3_VERSION) {
    deferred_.insert(deferred_.end(), bytes.begin(), bytes.end());  // see RetryMode
    return {};
  }
  if (!bytes.empty() && !deferred_.empty()) {
    // Records carry sequence numbers: the deferred ones must go first.
    bytes.insert(bytes.begin(), deferred_.begin(), deferred_.end());
    deferred_.clear();
  }
  TRELLIS_ASSERT(bytes.empty() || deferred_.empty());
  return bytes;
}

int SslStreamState::retry(FunctionRef<int()> op, const char* operation, RetryMode mode) {
  bool yielded = false;
  // Each turn either finishes, sends the bytes OpenSSL produced, or reads more: it ends when
  // OpenSSL is satisfied or the transport fails (then the error propagates).
  for (;;) {
    TRELLIS_ASSERT(transport != nullptr);
    ERR_clear_error();
    int ret = op();
    bool ragged_eof = false;
    bool want_read =
        interpret(ret, operation, mode == RetryMode::kRaggedEofIsEof ? &ragged_eof : nullptr);
    if (ragged_eof) {
      // Read as EOF: done, and the alert OpenSSL queued for the peer stays unsent (the peer
      // is gone; sending it would fail).
      TRELLIS_ASSERT(ret == 0 && status_ != StreamStatus::kOk);  // broken (or closed meanwhile)
      if (!yielded) checkpoint();
      return ret;
    }
    if (mode == RetryMode::kIgnoreWantRead) want_read = false;
    std::vector<std::byte> to_send = take_outgoing(mode == RetryMode::kHandshake && !want_read);
    if (to_send.empty() && !want_read) {
      if (!yielded) checkpoint();
      return ret;
    }
    yielded = true;
    if (!to_send.empty()) {
      send_ciphertext(std::move(to_send));
      // op completed (it only had bytes to hand over): calling it again would repeat it.
      if (!want_read) return ret;
    } else {
      receive_ciphertext();
    }
  }
}

void SslStreamState::ensure_handshake(bool checkpoint_if_done) {
  switch (handshake_) {
    case HandshakeStatus::kDone:
      if (checkpoint_if_done) checkpoint();
      return;
    case HandshakeStatus::kRunning:
      handshake_done_.wait();
      check_status();  // the other task's handshake failed: we are broken too
      TRELLIS_ASSERT(handshake_ == HandshakeStatus::kDone);
      return;
    case HandshakeStatus::kNotStarted:
      break;
  }
  handshake_ = HandshakeStatus::kRunning;
  try {
    retry([this] { return SSL_do_handshake(ssl.get()); }, "TLS handshake failed",
          RetryMode::kHandshake);
  } catch (...) {
    // Cancelled or failed half way: the peer is somewhere in its handshake, we cannot resume.
    mark_broken("the TLS handshake failed or was cancelled");
    handshake_done_.set();
    throw;
  }
  handshake_ = HandshakeStatus::kDone;
  handshake_done_.set();
}

void SslStreamState::send_all(std::span<const std::byte> data) {
  ConflictDetector::Guard guard(send_conflict_);
  check_status();
  ensure_handshake(false);
  if (data.empty()) {
    checkpoint();
    return;
  }
  // One SSL_write per chunk; retry() sends each chunk's records before the next is made.
  bool first = true;
  while (!data.empty()) {
    const std::size_t chunk = std::min(data.size(), kWriteChunkMax);
    if (!first) check_status();
    retry(
        [&] {
          std::size_t written = 0;
          return SSL_write_ex(ssl.get(), data.data(), chunk, &written);
        },
        "TLS send failed");
    data = data.subspan(chunk);
    first = false;
  }
}

void SslStreamState::wait_send_all_might_not_block() {
  ConflictDetector::Guard guard(send_conflict_);
  check_status();
  // A receiving task may be writing to the transport (an alert, a key update): wait for it
  // rather than reporting a conflict the caller did not cause (Trio's comment explains).
  const auto held = hold(inner_send_lock_);
  transport->wait_send_all_might_not_block();
}

std::size_t SslStreamState::receive_some(std::span<std::byte> buffer) {
  if (buffer.empty()) throw std::invalid_argument("receive_some: the buffer is empty");
  ConflictDetector::Guard guard(receive_conflict_);
  check_status();
  const auto receive = [&] {
    ensure_handshake(false);
    std::size_t received = 0;
    retry([&] { return SSL_read_ex(ssl.get(), buffer.data(), buffer.size(), &received); },
          "TLS receive failed",
          options.https_compatible ? RetryMode::kRaggedEofIsEof : RetryMode::kNormal);
    TRELLIS_ASSERT(received <= buffer.size());
    return received;
  };
  // Without https_compatible an SslError goes straight to the caller: no catch and rethrow,
  // which would unwind the stack a second time (a peer that drops the connection without
  // close_notify, common, costs one exception, not two).
  if (!options.https_compatible) return receive();
  try {
    return receive();
  } catch (const SslError& error) {
    // A ragged EOF during the handshake (after it, retry reports it as 0 without throwing)
    // is a clean one for https_compatible streams;
    // the stream stays broken, but all that is left to do with it is close it (as Trio).
    if (!error.unexpected_eof()) throw;
    checkpoint();
    return 0;
  }
}

void SslStreamState::close() {
  if (status_ == StreamStatus::kClosed) {
    checkpoint();
    return;
  }
  if (status_ == StreamStatus::kBroken || options.https_compatible) {
    status_ = StreamStatus::kClosed;
    transport->close();
    return;
  }
  try {
    // close_notify is cryptographic: it needs the handshake done first.
    ensure_handshake(false);
    // SSL_shutdown once: send our close_notify, do not wait for the peer's (Trio's choice).
    try {
      retry(
          [this] {
            const int ret = SSL_shutdown(ssl.get());
            return ret == 0 ? kWantRead : ret;
          },
          "TLS close failed", RetryMode::kIgnoreWantRead);
    } catch (const BrokenResourceError&) {  // the peer is gone: nothing more to say to it
    } catch (const BusyResourceError&) {
    }
  } catch (...) {
    status_ = StreamStatus::kClosed;
    close_forcefully(*transport);
    throw;
  }
  status_ = StreamStatus::kClosed;
  transport->close();
}

std::unique_ptr<Stream> SslStreamState::unwrap(std::vector<std::byte>* trailing) {
  ConflictDetector::Guard receive_guard(receive_conflict_);
  ConflictDetector::Guard send_guard(send_conflict_);
  check_status();
  ensure_handshake(false);
  // Until both close_notifys crossed: SSL_shutdown returns 0 after sending ours, 1 once the
  // peer's arrived (retry() reads for it: 0 is "want read" here).
  retry(
      [this] {
        const int ret = SSL_shutdown(ssl.get());
        if (ret != 0) return ret;
        // Sent ours, the peer's not yet here: ask again, which reads (or wants to read).
        const int again = SSL_shutdown(ssl.get());
        return again == 0 ? kWantRead : again;
      },
      "TLS unwrap failed");
  std::vector<std::byte> rest(BIO_ctrl_pending(incoming));
  if (!rest.empty()) {
    const int n = BIO_read(incoming, rest.data(), static_cast<int>(rest.size()));
    TRELLIS_ASSERT(n == static_cast<int>(rest.size()));
  }
  if (trailing != nullptr) trailing->insert(trailing->end(), rest.begin(), rest.end());
  status_ = StreamStatus::kClosed;
  return std::move(transport);
}

}  // namespace trellis::tls_internal

namespace trellis {

using tls_internal::SslStreamState;

SslStream::SslStream(std::unique_ptr<Stream> transport, SslContext& context, Options options)
    // (Inside a World, OpenSSL's randomness comes from the world's seed before anything draws.)
    : state_(
          (::trellis::internal::use_run_randomness(),
           std::make_unique<SslStreamState>(std::move(transport), context, std::move(options)))) {}
SslStream::SslStream(SslStream&&) noexcept = default;
SslStream& SslStream::operator=(SslStream&&) noexcept = default;
SslStream::~SslStream() = default;

SslStreamState& SslStream::state() const {
  if (state_ == nullptr) throw UsageError("SslStream: used after being moved from");
  return *state_;
}

void SslStream::do_handshake() {
  SslStreamState& s = state();
  s.check_status();
  s.ensure_handshake(true);
}

void SslStream::send_all(std::span<const std::byte> data) {
  state().send_all(data);
}
void SslStream::wait_send_all_might_not_block() {
  state().wait_send_all_might_not_block();
}
std::size_t SslStream::receive_some(std::span<std::byte> buffer) {
  return state().receive_some(buffer);
}

void SslStream::close() {
  if (state_ == nullptr) {
    checkpoint();
    return;
  }
  state_->close();
}

std::unique_ptr<Stream> SslStream::unwrap(std::vector<std::byte>* trailing) {
  return state().unwrap(trailing);
}

std::optional<std::string> SslStream::selected_alpn_protocol() const {
  const unsigned char* data = nullptr;
  unsigned int length = 0;
  SSL_get0_alpn_selected(state().ssl.get(), &data, &length);
  if (data == nullptr || length == 0) return std::nullopt;
  return std::string(reinterpret_cast<const char*>(data), length);
}

std::optional<std::string> SslStream::peer_certificate_pem() const {
  SSL* ssl = state().ssl.get();
  if (SSL_is_init_finished(ssl) != 1) return std::nullopt;
  openssl::X509Ptr certificate(SSL_get1_peer_certificate(ssl));
  if (certificate == nullptr) return std::nullopt;
  openssl::BioPtr out(BIO_new(BIO_s_mem()));
  if (out == nullptr || PEM_write_bio_X509(out.get(), certificate.get()) != 1) {
    openssl::drain_error_queue();
    throw std::bad_alloc();
  }
  return openssl::bio_contents(out.get());
}

std::optional<std::string> SslStream::version() const {
  SSL* ssl = state().ssl.get();
  if (SSL_is_init_finished(ssl) != 1) return std::nullopt;
  return std::string(SSL_get_version(ssl));
}

std::optional<std::string> SslStream::cipher() const {
  SSL* ssl = state().ssl.get();
  if (SSL_is_init_finished(ssl) != 1) return std::nullopt;
  const char* name = SSL_get_cipher_name(ssl);
  if (name == nullptr) return std::nullopt;
  return std::string(name);
}

Stream& SslStream::transport_stream() const {
  SslStreamState& s = state();
  if (s.transport == nullptr) throw ClosedResourceError("SslStream: the transport was unwrapped");
  return *s.transport;
}

const SslStream::Options& SslStream::options() const {
  return state().options;
}

}  // namespace trellis
