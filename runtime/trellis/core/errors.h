// trellis/core/errors.h — the exceptions of the runtime, as in Trio.
//
// Cancelled is deliberately NOT derived from std::exception, so `catch (const std::exception&)`
// in user code does not swallow a cancellation; every other error is a std::runtime_error (or
// std::logic_error for API misuse), so existing C++ error handling sees it.
#pragma once

#include <stdexcept>
#include <string>

namespace trellis {

namespace internal {
struct CancelledFactory;
}

// Why a cancel scope was cancelled (Trio's CancelReason.source).
enum class CancelSource {
  kExplicit,           // CancelScope::cancel()
  kDeadline,           // the scope's deadline passed
  kNursery,            // a sibling task (or the nursery body) raised
  kShutdown,           // the run is shutting down (system tasks after main returned)
  kKeyboardInterrupt,  // SIGINT
  kDeadlock,           // the run deadlocked and is being torn down
  kUnknown,
};

const char* to_string(CancelSource source) noexcept;

// Raised at a checkpoint inside a cancelled scope; caught by the scope that was cancelled.
// Has no public constructor: only the runtime creates it. Not a std::exception.
class Cancelled {
 public:
  CancelSource source() const noexcept { return source_; }
  // Human-readable: "cancelled due to deadline", "cancelled due to explicit", ...
  const char* what() const noexcept;

 private:
  friend struct internal::CancelledFactory;
  explicit Cancelled(CancelSource source) noexcept : source_(source) {}

  CancelSource source_;
};

// Raised by fail_after / fail_at when their deadline cancelled the body.
class TooSlowError : public std::runtime_error {
 public:
  TooSlowError() : std::runtime_error("operation timed out (TooSlowError)") {}
};

// An X_nowait() call could not complete without blocking.
class WouldBlock : public std::runtime_error {
 public:
  explicit WouldBlock(const std::string& what = "operation would block")
      : std::runtime_error(what) {}
};

// receive() after every sender closed and the buffer drained.
class EndOfChannel : public std::runtime_error {
 public:
  explicit EndOfChannel(const std::string& what = "end of channel") : std::runtime_error(what) {}
};

// This handle was closed (by this side).
class ClosedResourceError : public std::runtime_error {
 public:
  explicit ClosedResourceError(const std::string& what = "resource was closed")
      : std::runtime_error(what) {}
};

// The other side is gone (every receiver closed, the peer reset the connection...).
class BrokenResourceError : public std::runtime_error {
 public:
  explicit BrokenResourceError(const std::string& what = "resource is broken")
      : std::runtime_error(what) {}
};

// Two tasks tried to use a resource that admits one at a time.
class BusyResourceError : public std::runtime_error {
 public:
  explicit BusyResourceError(const std::string& what = "another task is using this resource")
      : std::runtime_error(what) {}
};

// run(): nothing is runnable and nothing can ever wake a task. The message lists every
// blocked task with its name and what it waits on.
class DeadlockError : public std::runtime_error {
 public:
  explicit DeadlockError(const std::string& what) : std::runtime_error(what) {}
};

// SIGINT arrived during run(): main was cancelled and run() throws this.
class KeyboardInterrupt : public std::runtime_error {
 public:
  KeyboardInterrupt() : std::runtime_error("KeyboardInterrupt") {}
};

// A call that needs a live run (a RunToken, from_thread) came after run() returned.
class RunFinishedError : public std::runtime_error {
 public:
  explicit RunFinishedError(const std::string& what = "run() has exited")
      : std::runtime_error(what) {}
};

// API misuse that Trio reports as RuntimeError: a closed nursery, started() twice, a
// checkpoint outside a run, run() inside run()...
class UsageError : public std::logic_error {
 public:
  explicit UsageError(const std::string& what) : std::logic_error(what) {}
};

// A bug inside Trellis (or a system task that crashed). The run is torn down.
class InternalError : public std::runtime_error {
 public:
  explicit InternalError(const std::string& what) : std::runtime_error(what) {}
};

}  // namespace trellis
