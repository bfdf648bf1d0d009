// trellis/to_process/worker.cc — see worker.h.

#include "trellis/to_process/worker.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <stdexcept>
#include <system_error>

#include "trellis/base/assert.h"
#include "trellis/to_process/frame.h"
#include "trellis/to_process/registry.h"

namespace trellis::to_process {
namespace {

constexpr std::string_view kInitPrefix = "--init=";
constexpr std::string_view kRetirePrefix = "--retire=";
constexpr std::size_t kReadChunk = 65536;

struct Reply {
  FrameKind kind = FrameKind::kResult;
  std::vector<char> payload;
};

Reply error_reply(std::string_view type_name, std::string_view message) {
  return Reply{FrameKind::kError, encode_error_payload(type_name, message)};
}

// Runs a registered function on packed arguments; every failure becomes a kError reply.
Reply invoke(std::string_view function, std::span<const char> arguments) {
  const internal::WorkerFunction* found = internal::find_worker_function(function);
  if (found == nullptr) {
    return error_reply("trellis::to_process::UnknownFunctionError",
                       "no worker function named '" + std::string(function) +
                           "' is registered in this executable (TRELLIS_WORKER_FUNCTION)");
  }
  try {
    msgpack::object_handle handle = internal::unpack_payload(arguments);
    return Reply{FrameKind::kResult, (*found)(handle.get())};
  } catch (const internal::ArgumentError& e) {
    return error_reply("trellis::to_process::ArgumentError",
                       "'" + std::string(function) + "': " + e.what());
  } catch (const std::exception& e) {
    return error_reply(internal::type_name_of(e), e.what());
  } catch (...) {
    return error_reply("unknown", "an exception not derived from std::exception");
  }
}

void send(WorkerIo& io, const Reply& reply, std::uint8_t flags) {
  io.write_all(encode_frame(reply.kind, flags, reply.payload));
}

// The next frame, or nullopt at end of input. Throws FrameError (also for a frame cut short
// by the end of input).
std::optional<Frame> read_frame(WorkerIo& io, FrameReader& reader, std::vector<char>& buffer) {
  for (;;) {
    if (std::optional<Frame> frame = reader.next()) return frame;
    const std::size_t got = io.read_some(buffer);
    if (got == 0) {
      if (reader.buffered() != 0) throw FrameError("the parent's pipe ended inside a frame");
      return std::nullopt;
    }
    reader.feed(std::span<const char>(buffer.data(), got));
  }
}

// The retire hook's verdict after a call: a hook that fails retires the worker.
bool should_retire(const std::string& retire) {
  if (retire.empty()) return false;
  const Reply reply = invoke(retire, internal::pack_arguments());
  if (reply.kind != FrameKind::kResult) {
    std::fprintf(stderr, "trellis to_process worker: retire function '%s' failed; retiring\n",
                 retire.c_str());
    return true;
  }
  try {
    msgpack::object_handle handle = internal::unpack_payload(reply.payload);
    return handle.get().as<bool>();
  } catch (const std::exception&) {
    return true;  // not a bool: retire, the conservative answer
  }
}

class FdIo final : public WorkerIo {
 public:
  FdIo(int in, int out) : in_(in), out_(out) {}
  std::size_t read_some(std::span<char> buffer) override {
    for (;;) {
      const ssize_t got = ::read(in_, buffer.data(), buffer.size());
      if (got >= 0) return static_cast<std::size_t>(got);
      if (errno != EINTR) throw std::system_error(errno, std::generic_category(), "worker read");
    }
  }
  void write_all(std::span<const char> bytes) override {
    while (!bytes.empty()) {
      const ssize_t put = ::write(out_, bytes.data(), bytes.size());
      if (put < 0 && errno == EINTR) continue;
      if (put < 0) throw std::system_error(errno, std::generic_category(), "worker write");
      bytes = bytes.subspan(static_cast<std::size_t>(put));
    }
  }

 private:
  int in_;
  int out_;
};

class StreamIo final : public WorkerIo {
 public:
  StreamIo(ReceiveStream& in, SendStream& out) : in_(in), out_(out) {}
  std::size_t read_some(std::span<char> buffer) override {
    return in_.receive_some(std::as_writable_bytes(buffer));
  }
  void write_all(std::span<const char> bytes) override { out_.send_all(std::as_bytes(bytes)); }

 private:
  ReceiveStream& in_;
  SendStream& out_;
};

// The protocol channel moves off fds 0 and 1, so that what worker functions print goes to
// stderr instead of into the frames. Returns {in, out}.
std::pair<int, int> take_protocol_fds() {
  const int in = ::fcntl(0, F_DUPFD_CLOEXEC, 3);
  const int out = ::fcntl(1, F_DUPFD_CLOEXEC, 3);
  if (in < 0 || out < 0) {
    std::perror("trellis to_process worker: dup");
    std::_Exit(3);
  }
  const int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (devnull >= 0) {
    ::dup2(devnull, 0);
    ::close(devnull);
  }
  ::dup2(2, 1);
  return {in, out};
}

}  // namespace

std::vector<std::string> worker_arguments(const ServeOptions& options) {
  std::vector<std::string> arguments{std::string(kWorkerFlag)};
  if (!options.init.empty()) arguments.push_back(std::string(kInitPrefix) + options.init);
  if (!options.retire.empty()) arguments.push_back(std::string(kRetirePrefix) + options.retire);
  return arguments;
}

ServeOptions parse_worker_arguments(std::span<const std::string> arguments) {
  if (arguments.empty() || arguments[0] != kWorkerFlag) {
    throw std::invalid_argument("not a to_process worker command line (no " +
                                std::string(kWorkerFlag) + ")");
  }
  ServeOptions options;
  for (const std::string& argument : arguments.subspan(1)) {
    if (argument.starts_with(kInitPrefix)) {
      options.init = argument.substr(kInitPrefix.size());
    } else if (argument.starts_with(kRetirePrefix)) {
      options.retire = argument.substr(kRetirePrefix.size());
    } else {
      throw std::invalid_argument("unknown to_process worker argument '" + argument + "'");
    }
  }
  return options;
}

int serve_worker(WorkerIo& io, const ServeOptions& options) {
  if (!options.init.empty()) {
    Reply init = invoke(options.init, internal::pack_arguments());
    if (init.kind == FrameKind::kError) {
      send(io, init, kFlagRetiring);
      return 1;
    }
  }
  send(io, Reply{FrameKind::kReady, {}}, 0);
  FrameReader reader;
  std::vector<char> buffer(kReadChunk);  // on the heap: in a simulation this loop is a task
  for (;;) {
    std::optional<Frame> frame;
    CallPayload call;
    try {
      frame = read_frame(io, reader, buffer);
      if (!frame) return 0;
      if (frame->kind != FrameKind::kCall) throw FrameError("the parent sent a non-call frame");
      call = parse_call_payload(frame->payload);
    } catch (const FrameError& e) {
      std::fprintf(stderr, "trellis to_process worker: malformed frame from the parent: %s\n",
                   e.what());
      return 2;
    }
    if (options.before_call) options.before_call(call.function);
    const Reply reply = invoke(call.function, call.arguments);
    const bool retiring = should_retire(options.retire);
    send(io, reply, retiring ? kFlagRetiring : 0);
    if (retiring) return 0;
  }
}

int serve_worker_streams(ReceiveStream& in, SendStream& out, const std::vector<std::string>& argv,
                         std::function<void(std::string_view function)> before_call) {
  TRELLIS_ASSERT(!argv.empty());
  ServeOptions options = parse_worker_arguments(std::span<const std::string>(argv).subspan(1));
  options.before_call = std::move(before_call);
  StreamIo io(in, out);
  return serve_worker(io, options);
}

void maybe_run_worker(int argc, char** argv) {
  if (argc < 2 || argv[1] != kWorkerFlag) return;
  const std::vector<std::string> arguments(argv + 1, argv + argc);
  int status = 3;
  try {
    ServeOptions options = parse_worker_arguments(arguments);
    // Die with the parent even while busy in a long call; idle, end of input does it.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() == 1) std::_Exit(0);
    // Ctrl-C goes to the whole process group: the parent decides (it cancels, then stops us).
    ::signal(SIGINT, SIG_IGN);
    ::signal(SIGPIPE, SIG_IGN);
    const auto [in, out] = take_protocol_fds();
    FdIo io(in, out);
    status = serve_worker(io, options);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "trellis to_process worker: %s\n", e.what());
  }
  std::fflush(nullptr);
  std::exit(status);
}

}  // namespace trellis::to_process
