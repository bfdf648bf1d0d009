// trellis/to_process/worker.h — the worker's side: how an executable becomes a worker.
//
// Workers are this same executable re-executed (/proc/self/exe) with a marker argument;
// maybe_run_worker(), called first thing in main(), sees the marker and runs the worker loop
// instead of main's body, then exits. Re-execution rather than a fork server: a fork server
// must be forked before any thread exists and lives beside the program for its whole life;
// exec gives each worker a fresh, single-threaded process image with no copied locks, run
// state or fds, costs one exec per worker (workers are reused), and needs nothing from the
// program but this one call. In the simulator the same loop runs as a fake program
// (serve_worker over streams) installed under the executable's name.
#pragma once

#include <cstddef>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "trellis/io/stream.h"

namespace trellis::to_process {

// The argument that marks a worker's command line (argv[1]).
inline constexpr std::string_view kWorkerFlag = "--trellis-to-process-worker";
// What the parent executes by default: this executable.
inline constexpr std::string_view kSelfExecutable = "/proc/self/exe";

// In main(), before anything else (before threads, before parsing flags): in a worker process
// it serves calls until its parent closes the pipe or it retires, then exits the process
// (never returns). In any other process it returns at once.
void maybe_run_worker(int argc, char** argv);

// The bytes a worker loop reads and writes.
class WorkerIo {
 public:
  virtual ~WorkerIo() = default;
  // Up to buffer.size() bytes; 0 at end of input.
  virtual std::size_t read_some(std::span<char> buffer) = 0;
  virtual void write_all(std::span<const char> bytes) = 0;
};

struct ServeOptions {
  std::string init{};    // registered function run once before the first call (void())
  std::string retire{};  // registered function run after each call (bool(): true retires)
  // Called before each call with the function's name (the simulator's hook: a virtual
  // duration, an injected crash). May throw: the worker then dies as if the call crashed.
  std::function<void(std::string_view function)> before_call{};
};

// The worker loop: sends kReady (or kError if init failed), then answers each kCall with
// kResult or kError until end of input or retirement. A malformed frame from the parent ends
// the loop. Returns the exit status: 0 after end of input or retirement, 1 when init failed,
// 2 after a malformed frame.
int serve_worker(WorkerIo& io, const ServeOptions& options);

// The worker's command line after the executable, as the parent builds it, and back.
std::vector<std::string> worker_arguments(const ServeOptions& options);
// Throws std::invalid_argument for a command line that is not a worker's.
ServeOptions parse_worker_arguments(std::span<const std::string> arguments);

// serve_worker over a run's streams, for a fake program in the simulator:
//   host.install_program(std::string(to_process::kSelfExecutable), [](sim::ProgramIo& io) {
//     return to_process::serve_worker_streams(io.in, io.out, io.argv, {});
//   });
// argv is the program's whole argv (argv[0] the executable). `before_call` as ServeOptions.
int serve_worker_streams(ReceiveStream& in, SendStream& out, const std::vector<std::string>& argv,
                         std::function<void(std::string_view function)> before_call);

}  // namespace trellis::to_process
