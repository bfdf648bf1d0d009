// trellis/actor/child.cc — the child's side: an actor process serving its parent (actor.h).

#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <stdexcept>
#include <tuple>
#include <utility>
#include <vector>

#include "trellis/actor/actor.h"
#include "trellis/actor/internal/channel.h"
#include "trellis/actor/internal/context_state.h"
#include "trellis/actor/internal/parent.h"
#include "trellis/actor/internal/runtime.h"
#include "trellis/actor/protocol.h"
#include "trellis/actor/registry.h"
#include "trellis/core/errors.h"
#include "trellis/core/exception_group.h"
#include "trellis/core/nursery.h"
#include "trellis/core/run.h"
#include "trellis/core/task_local.h"
#include "trellis/io/tcp.h"

namespace trellis::actor {
namespace {

// Per task tree rather than per process: in a World several actors share one process.
TaskLocal<std::string>& actor_name_local() {
  static TaskLocal<std::string> name{"root"};
  return name;
}

struct ActorArguments {
  std::string name;
  std::string uid;
  std::string host;
  std::uint16_t port = 0;
  std::string address;  // where this actor listens (--address); empty: 127.0.0.1
  std::string registrar_host;
  std::uint16_t registrar_port = 0;  // 0: no tree-wide registry (--registrar absent)
};

// "host:port" (the last colon splits); throws std::invalid_argument naming `what`.
std::pair<std::string, std::uint16_t> parse_host_port(std::string_view address, const char* what) {
  const std::size_t colon = address.rfind(':');
  if (colon == std::string_view::npos || colon + 1 == address.size()) {
    throw std::invalid_argument(std::string("bad ") + what + " address");
  }
  unsigned long port = 0;
  try {
    port = std::stoul(std::string(address.substr(colon + 1)));
  } catch (const std::exception&) {
    throw std::invalid_argument(std::string("bad ") + what + " port");
  }
  if (port == 0 || port > 65535) throw std::invalid_argument(std::string("bad ") + what + " port");
  return {std::string(address.substr(0, colon)), static_cast<std::uint16_t>(port)};
}

ActorArguments parse_actor_arguments(const std::vector<std::string>& argv) {
  if (argv.size() < 2 || argv[1] != kActorFlag) {
    throw std::invalid_argument("not an actor's command line (no " + std::string(kActorFlag) + ")");
  }
  ActorArguments parsed;
  for (std::size_t i = 2; i < argv.size(); ++i) {
    const std::string_view argument(argv[i]);
    if (argument.starts_with("--name=")) {
      parsed.name = argument.substr(7);
    } else if (argument.starts_with("--uid=")) {
      parsed.uid = argument.substr(6);
    } else if (argument.starts_with("--parent=")) {
      std::tie(parsed.host, parsed.port) = parse_host_port(argument.substr(9), "--parent");
    } else if (argument.starts_with("--registrar=")) {
      std::tie(parsed.registrar_host, parsed.registrar_port) =
          parse_host_port(argument.substr(12), "--registrar");
    } else if (argument.starts_with("--address=")) {
      parsed.address = argument.substr(10);
    } else {
      throw std::invalid_argument("unknown actor argument '" + std::string(argument) + "'");
    }
  }
  if (parsed.name.empty() || parsed.uid.empty() || parsed.port == 0) {
    throw std::invalid_argument("an actor's command line needs --name, --uid and --parent");
  }
  return parsed;
}

// A nursery's error group with a single leaf is relayed as that leaf (a RemoteActorError from
// a grandchild keeps its origin on its way up).
std::exception_ptr single_leaf(std::exception_ptr error) {
  for (;;) {
    try {
      std::rethrow_exception(error);
    } catch (const ExceptionGroup& group) {
      if (group.exceptions().size() != 1) return error;
      error = group.exceptions().front();
    } catch (...) {
      return error;
    }
  }
}

// The error of the call `function` as the parent gets it: a remote error relayed from
// further down keeps its origin and gains this task in its task tree.
protocol::Error describe_error(std::uint64_t id, const std::string& function,
                               std::exception_ptr error) {
  const std::string self = current_actor_name();
  std::vector<protocol::TaskFrame> here{{self, function}};
  try {
    std::rethrow_exception(single_leaf(std::move(error)));
  } catch (const RemoteActorError& e) {
    std::vector<std::string> relayed = e.relayed_through();
    relayed.push_back(self);
    std::vector<protocol::TaskFrame> tree;
    for (const RemoteActorError::Task& task : e.remote_tree()) {
      tree.push_back({task.actor, task.function});
    }
    if (tree.empty()) tree.push_back({e.actor_name(), "?"});  // (from a peer of version 1.0)
    if (tree.size() < protocol::kTaskTreeDepthMax) tree.push_back(here.front());
    return {id, e.type_name(), e.message(), e.actor_name(), std::move(relayed), std::move(tree)};
  } catch (const to_process::internal::ArgumentError& e) {
    return {id, "trellis::actor::ArgumentError", e.what(), self, {}, std::move(here)};
  } catch (const std::exception& e) {
    return {id, to_process::internal::type_name_of(e), e.what(), self, {}, std::move(here)};
  } catch (...) {
    return {id,   "unknown", "an exception not derived from std::exception",
            self, {},        std::move(here)};
  }
}

class ChildActor {
 public:
  explicit ChildActor(internal::Channel& channel) : channel_(channel) {}

  // Serves until the parent cancels this actor or goes away; the exit status. Calls run as
  // tasks of `tasks` (a nursery that this object outlives).
  int serve(Nursery& tasks) {
    tasks_ = &tasks;
    for (;;) {
      std::optional<to_process::RawFrameView> frame;  // (valid until the next receive)
      try {
        frame = channel_.receive_view();
      } catch (const to_process::FrameError& e) {
        log(std::string("malformed frame from the parent (exiting: the channel is unusable): ") +
            e.what());
        return 2;
      } catch (const BrokenResourceError& e) {
        log(std::string("the parent's connection broke: ") + e.what());
        return 0;
      }
      if (!frame) return 0;  // the parent vanished (or closed): exit by ourselves
      if (!dispatch(*frame)) return 0;
    }
  }

 private:
  static void log(const std::string& message) {
    std::fprintf(stderr, "trellis actor '%s': %s\n", current_actor_name().c_str(), message.c_str());
  }

  // False once the parent asked this actor to exit.
  bool dispatch(const to_process::RawFrameView& frame) {
    const auto kind = static_cast<protocol::Kind>(frame.kind);
    try {
      if (kind == protocol::Kind::kCall || kind == protocol::Kind::kOpenContext) {
        start_call(protocol::parse_call(frame.payload), kind == protocol::Kind::kOpenContext);
      } else if (kind >= protocol::Kind::kStarted && kind <= protocol::Kind::kStop) {
        const std::optional<std::uint64_t> id = protocol::peek_call_id(frame.payload);
        if (!id) throw to_process::FrameError("no call id");
        auto it = contexts_.find(*id);
        if (it != contexts_.end()) it->second->on_message(frame.kind, frame.payload);
      } else if (kind == protocol::Kind::kCancelCall) {
        auto it = calls_.find(protocol::parse_cancel_call(frame.payload));
        if (it != calls_.end()) it->second.cancel();  // else: it has answered already
      } else if (kind == protocol::Kind::kCancelActor) {
        protocol::parse_cancel_actor(frame.payload);
        return false;
      } else {
        log(std::string("ignored an unexpected '") + protocol::kind_name(frame.kind) +
            "' message from the parent");
      }
    } catch (const to_process::FrameError& e) {
      const std::optional<std::uint64_t> id = protocol::peek_call_id(frame.payload);
      const std::string message = std::string("malformed '") + protocol::kind_name(frame.kind) +
                                  "' message from the parent: " + e.what();
      if ((kind == protocol::Kind::kCall || kind == protocol::Kind::kOpenContext) && id) {
        reply(protocol::encode_error(
            {*id, "trellis::actor::ProtocolError", message, current_actor_name(), {}, {}}));
      } else {
        log(message + " (ignored)");
      }
    }
    return true;
  }

  void start_call(protocol::Call call, bool with_context) {
    if (calls_.contains(call.id)) {
      reply(protocol::encode_error({call.id,
                                    "trellis::actor::ProtocolError",
                                    "call id " + std::to_string(call.id) + " is already running",
                                    current_actor_name(),
                                    {},
                                    {}}));
      return;
    }
    CancelScope* raw = &calls_.try_emplace(call.id).first->second;  // (map nodes stay put)
    std::shared_ptr<internal::ContextState> context;
    if (with_context) {
      context = std::make_shared<internal::ContextState>(call.id, channel_, false, "parent");
      contexts_.emplace(call.id, context);
    }
    tasks_->start_soon(
        [this, raw, context, call = std::move(call)] { run_call(*raw, call, context); });
  }

  void run_call(CancelScope& scope, const protocol::Call& call,
                const std::shared_ptr<internal::ContextState>& context) {
    struct Forget {
      ChildActor& actor;
      std::uint64_t id;
      ~Forget() {
        actor.calls_.erase(id);
        actor.contexts_.erase(id);
      }
    } forget{*this, call.id};
    std::vector<char> answer;
    std::optional<Context> ctx;
    if (context) ctx.emplace(context);
    scope.run([&] { answer = invoke(call, ctx ? &*ctx : nullptr); });
    if (scope.cancelled_caught()) {  // cancelled by the parent: a plain call gets no answer
      if (!context) return;
      answer =
          protocol::encode_error({call.id,
                                  "trellis::actor::ContextCancelled",
                                  "the context's remote task '" + call.function + "' in actor '" +
                                      current_actor_name() + "' was cancelled by its caller",
                                  current_actor_name(),
                                  {},
                                  {{current_actor_name(), call.function}}});
    }
    reply(answer);
  }

  std::vector<char> invoke(const protocol::Call& call, Context* context) {
    const internal::ActorFunction* found = internal::find_actor_function(call.function);
    if (found == nullptr) {
      return protocol::encode_error(
          {call.id,
           "trellis::actor::UnknownFunctionError",
           "no actor function named '" + call.function +
               "' is registered in this executable (TRELLIS_ACTOR_FUNCTION)",
           current_actor_name(),
           {},
           {{current_actor_name(), call.function}}});
    }
    try {
      // (A zone of this call's own, as long as it runs: the function may reach schedule
      // points, and other calls unpack meanwhile.)
      const CallZone zone(*this);
      const msgpack::object arguments =
          to_process::internal::unpack_payload(call.arguments, *zone.zone);
      return protocol::encode_return(call.id, [&](to_process::FrameBuilder& result) {
        (*found)(context, arguments, result);  // (the result packed straight into the answer)
      });
    } catch (const Cancelled&) {
      throw;
    } catch (...) {
      return protocol::encode_error(
          describe_error(call.id, call.function, std::current_exception()));
    }
  }

  void reply(std::span<const char> frame) {
    try {  // (no yield: the answering task ends, or the serving loop receives, next)
      channel_.send_without_yield(frame);
    } catch (const BrokenResourceError& e) {
      log(std::string("could not answer the parent: ") + e.what());
    } catch (const ClosedResourceError&) {
    }
  }

  // A zone taken from spare_zones_ (or a new one) and given back, cleared, at scope exit: a
  // call's arguments cost no allocation of a zone.
  struct CallZone {
    explicit CallZone(ChildActor& owner) : actor(owner) {
      if (actor.spare_zones_.empty()) {
        zone = std::make_unique<msgpack::zone>(1024);
      } else {
        zone = std::move(actor.spare_zones_.back());
        actor.spare_zones_.pop_back();
      }
    }
    ~CallZone() {
      constexpr std::size_t kSpareZonesMax = 8;
      if (actor.spare_zones_.size() >= kSpareZonesMax) return;
      zone->clear();  // (keeps its first chunk)
      try {
        actor.spare_zones_.push_back(std::move(zone));
      } catch (...) {  // (out of memory: the zone is freed instead)
      }
    }
    CallZone(const CallZone&) = delete;
    CallZone& operator=(const CallZone&) = delete;
    ChildActor& actor;
    std::unique_ptr<msgpack::zone> zone;
  };

  internal::Channel& channel_;
  Nursery* tasks_ = nullptr;
  std::vector<std::unique_ptr<msgpack::zone>> spare_zones_;
  std::map<std::uint64_t, CancelScope> calls_;
  std::map<std::uint64_t, std::shared_ptr<internal::ContextState>> contexts_;
};

// Inside a run: joins the tree (its peer listener, its registration with the root), then
// connects to the parent and serves it; leaves the tree as it exits.
int serve_actor(const ActorArguments& arguments, std::int64_t pid) {
  actor_name_local().set(arguments.name);
  internal::start_registry();
  auto runtime = std::make_shared<internal::ActorRuntime>();
  runtime->name = arguments.name;
  runtime->uid = arguments.uid;
  runtime->address = arguments.address.empty() ? "127.0.0.1" : arguments.address;
  runtime->registrar_host = arguments.registrar_host;
  runtime->registrar_port = arguments.registrar_port;
  internal::set_current_runtime(runtime);
  struct Release {
    internal::ActorRuntime& runtime;
    ~Release() {
      runtime.tasks = nullptr;
      internal::release_runtime(runtime);
    }
  } release{*runtime};
  int status = 0;
  open_nursery([&](Nursery& tasks) {
    runtime->tasks = &tasks;
    internal::start_peer_server(*runtime);
    internal::join_tree(*runtime);
    {
      internal::Channel channel(
          std::make_unique<SocketStream>(open_tcp_stream(arguments.host, arguments.port)));
      channel.send(protocol::encode_hello({arguments.name, arguments.uid, pid}));
      status = internal::serve_channel(channel);
      channel.close();
    }
    internal::leave_tree(*runtime);
    runtime->tasks = nullptr;
    tasks.cancel_scope().cancel();  // the peer server and the found portals' readers
  });
  return status;
}

}  // namespace

namespace internal {
int serve_channel(Channel& channel) {
  int status = 0;
  ChildActor actor(channel);  // outlives the nursery: its calls' tasks use it
  open_nursery([&](Nursery& tasks) {
    status = actor.serve(tasks);
    tasks.cancel_scope().cancel();  // every call (and the actor nurseries inside them)
  });
  return status;
}
}  // namespace internal

std::string current_actor_name() {
  return actor_name_local().get();
}

int serve_actor_program(const std::vector<std::string>& argv) {
  return serve_actor(parse_actor_arguments(argv), 0);  // (no real pid in a simulation)
}

void maybe_run_actor(int argc, char** argv) {
  if (argc < 2 || argv[1] != kActorFlag) return;
  int status = 3;
  try {
    const ActorArguments arguments =
        parse_actor_arguments(std::vector<std::string>(argv, argv + argc));
    // Backstop for a child busy in code without checkpoints: die with the parent. Idle, the
    // end of the parent's connection does it (and cancels this actor's own children).
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() == 1) std::_Exit(0);
    // Ctrl-C goes to the whole process group: the parent decides (it cancels, then stops us).
    ::signal(SIGINT, SIG_IGN);
    ::signal(SIGPIPE, SIG_IGN);
    status = trellis::run([&] { return serve_actor(arguments, ::getpid()); });
  } catch (const std::exception& e) {
    std::fprintf(stderr, "trellis actor: %s\n", e.what());
  }
  std::fflush(nullptr);
  std::exit(status);
}

}  // namespace trellis::actor
