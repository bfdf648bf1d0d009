// trellis/tls/ssl_error.h — SslError: a TLS failure, with OpenSSL's reason string.
//
// Every OpenSSL failure inside an SslStream (a bad certificate, a wrong host name, an
// expired certificate, an unknown CA, no common protocol version, a corrupted record, the
// peer vanishing without close_notify) becomes an SslError. It is a BrokenResourceError, as
// in Trio (where SSLStream raises BrokenResourceError from the ssl.SSLError): code that
// handles "the peer went away" handles TLS failures too, and code that cares reads reason().
//
//   try {
//     stream.do_handshake();
//   } catch (const trellis::SslError& error) {
//     log("TLS failed: ", error.reason());   // "certificate verify failed: hostname mismatch"
//   }
#pragma once

#include <string>

#include "trellis/core/errors.h"

namespace trellis {

class SslError : public BrokenResourceError {
 public:
  // what(): "<operation>: <reason>", e.g. "TLS handshake failed: certificate verify failed:
  // unable to get local issuer certificate".
  SslError(const std::string& operation, std::string reason, bool unexpected_eof = false)
      : BrokenResourceError(operation + ": " + reason),
        reason_(std::move(reason)),
        unexpected_eof_(unexpected_eof) {}

  // OpenSSL's reason strings for this failure ("; "-joined when OpenSSL queued several), with
  // the certificate verification result appended after ": " when verification failed.
  const std::string& reason() const noexcept { return reason_; }
  // True when the failure is that the transport reached end of file without a close_notify
  // (OpenSSL 3's "unexpected eof while reading", OpenSSL 1.1's SSL_ERROR_SYSCALL with an
  // empty error queue: both are reported the same way). https_compatible streams treat it as
  // a clean end of file.
  bool unexpected_eof() const noexcept { return unexpected_eof_; }

 private:
  std::string reason_;
  bool unexpected_eof_;
};

}  // namespace trellis
