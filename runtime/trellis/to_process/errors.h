// trellis/to_process/errors.h — what a to_process call throws besides Cancelled.
#pragma once

#include <stdexcept>
#include <string>

namespace trellis::to_process {

// The function threw in the worker. type_name() is the exception's C++ type, demangled
// ("std::out_of_range"); what() is "<type_name>: <message>" and message() the exception's own
// what(). Also: "trellis::to_process::UnknownFunctionError" when the worker has no function
// of that name (TRELLIS_WORKER_FUNCTION missing, or a different executable), and
// "msgpack::type_error" when the arguments do not convert to the function's parameters.
// The worker survives it and serves the next call.
class WorkerError : public std::runtime_error {
 public:
  WorkerError(std::string type_name, std::string message)
      : std::runtime_error(type_name + ": " + message),
        type_name_(std::move(type_name)),
        message_(std::move(message)) {}
  const std::string& type_name() const noexcept { return type_name_; }
  const std::string& message() const noexcept { return message_; }

 private:
  std::string type_name_;
  std::string message_;
};

// The worker died before answering (what() names the signal, "SIGSEGV", or the exit status),
// or broke the protocol (what() says which frame was wrong). The worker has been killed if
// needed and reaped; the pool starts a new one for the next call.
class BrokenWorkerError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace trellis::to_process
