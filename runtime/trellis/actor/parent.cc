// trellis/actor/parent.cc — the parent's side: actor nurseries and portals (actor.h).

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <mutex>

#include "trellis/actor/internal/parent.h"
#include "trellis/actor/internal/runtime.h"
#include "trellis/actor/protocol.h"
#include "trellis/base/assert.h"
#include "trellis/core/errors.h"
#include "trellis/core/os_error.h"
#include "trellis/core/run.h"
#include "trellis/core/signal_facet.h"
#include "trellis/core/task_local.h"
#include "trellis/io/tcp.h"
#include "trellis/to_process/worker.h"

namespace trellis::actor {
namespace {

std::string describe_exit(int returncode) {
  if (returncode < 0) return std::string("died with ") + signal_name(-returncode);
  return "exited with status " + std::to_string(returncode);
}

template <class F>
void shielded(F&& body) {
  CancelScope shield(kNoDeadline, true);
  shield.run(std::forward<F>(body));
}

// How long a child's exit watcher lets the reader finish first (see watch_exit).
constexpr Duration kReaderGrace = std::chrono::milliseconds(50);

// Waits up to `grace` for the process to exit; its return code if it did.
std::optional<int> wait_at_most(Process& process, Duration grace) {
  std::optional<int> code = process.returncode();
  if (!code) move_on_after(grace, [&] { code = process.wait(); });
  return code;
}

}  // namespace

RemoteActorError::RemoteActorError(std::string type_name, std::string message,
                                   std::string actor_name, std::vector<std::string> relayed_through,
                                   std::vector<Task> remote_tree)
    : std::runtime_error([&] {
        std::string what = type_name + ": " + message + " (raised in actor '" + actor_name + "'";
        for (const std::string& relay : relayed_through) what += ", relayed by '" + relay + "'";
        what += ")";
        if (remote_tree.empty()) return what;
        what += "\nremote task tree (outermost first):";
        std::string indent = "  ";
        for (auto it = remote_tree.rbegin(); it != remote_tree.rend(); ++it) {
          what += "\n" + indent + "actor '" + it->actor + "' running '" + it->function + "'";
          indent += "  ";
        }
        return what + ": raised " + type_name + ": " + message;
      }()),
      type_name_(std::move(type_name)),
      message_(std::move(message)),
      actor_name_(std::move(actor_name)),
      relayed_through_(std::move(relayed_through)),
      remote_tree_(std::move(remote_tree)) {}

namespace {
RemoteActorError remote_error(protocol::Error& error) {
  std::vector<RemoteActorError::Task> tree;
  tree.reserve(error.task_tree.size());
  for (protocol::TaskFrame& frame : error.task_tree) {
    tree.push_back({std::move(frame.actor), std::move(frame.function)});
  }
  return RemoteActorError(std::move(error.type_name), std::move(error.message),
                          std::move(error.source_actor), std::move(error.relayed_through),
                          std::move(tree));
}
}  // namespace

// ---- the registry ----

namespace internal {
namespace {
TaskLocal<std::shared_ptr<Registry>>& registry_local() {
  static TaskLocal<std::shared_ptr<Registry>> registry{std::make_shared<Registry>()};
  return registry;
}
}  // namespace

void Registry::notify() {
  std::shared_ptr<Event> old = std::move(changed);
  changed = std::make_shared<Event>();
  old->set();
}

std::shared_ptr<Registry> current_registry() {
  return registry_local().get();
}

void start_registry() {
  registry_local().set(std::make_shared<Registry>());
}
}  // namespace internal

// ---- Portal::State -------------------------------------------------------------------------

std::string Portal::State::describe() const {
  if (!process) return "actor '" + name + "' (a peer, uid " + uid + ")";
  return "actor '" + name + "' (pid " + std::to_string(pid) + ")";
}

void Portal::State::break_channel(const std::string& reason) {
  if (!broken) broken = reason;
  for (auto& [id, context] : contexts) {
    context->fail(std::make_exception_ptr(BrokenActorError(*broken)));
  }
  contexts.clear();
  for (auto& [id, call] : pending) {
    if (call->done.is_set()) continue;
    call->error = std::make_exception_ptr(BrokenActorError(*broken));
    call->done.set();
  }
  if (channel) channel->close();
}

void Portal::State::answer_context(std::uint64_t id, std::vector<char>* value,
                                   protocol::Error* error) {
  auto it = contexts.find(id);
  if (it == contexts.end()) return;  // (a context whose handle is gone, already answered)
  std::shared_ptr<internal::ContextState> context = it->second;
  contexts.erase(it);
  context->done = true;
  if (value != nullptr) {
    context->result = std::move(*value);
    context->notify();
  } else if (error->type_name == "trellis::actor::ContextCancelled") {
    context->fail(std::make_exception_ptr(ContextCancelled(describe() + ": " + error->message)));
  } else {
    context->fail(std::make_exception_ptr(remote_error(*error)));
  }
}

std::size_t Portal::State::pending_index(std::uint64_t id) const noexcept {
  // (pending is sorted by id: calls are added with increasing ids.)
  auto it =
      std::lower_bound(pending.begin(), pending.end(), id,
                       [](const auto& entry, std::uint64_t key) { return entry.first < key; });
  return it != pending.end() && it->first == id ? static_cast<std::size_t>(it - pending.begin())
                                                : pending.size();
}

internal::PendingCall* Portal::State::find_pending(std::uint64_t id) const noexcept {
  const std::size_t at = pending_index(id);
  return at < pending.size() ? pending[at].second : nullptr;
}

void Portal::State::forget_pending(std::uint64_t id) noexcept {
  const std::size_t at = pending_index(id);
  if (at < pending.size()) pending.erase(pending.begin() + static_cast<std::ptrdiff_t>(at));
}

void Portal::State::dispatch(const to_process::RawFrameView& frame) {
  const auto kind = static_cast<protocol::Kind>(frame.kind);
  if (kind == protocol::Kind::kReturn) {
    protocol::Return answer = protocol::parse_return(frame.payload);
    internal::PendingCall* call = find_pending(answer.id);
    if (call == nullptr) return answer_context(answer.id, &answer.value, nullptr);
    call->value = std::move(answer.value);
    call->done.set();
  } else if (kind == protocol::Kind::kError) {
    protocol::Error answer = protocol::parse_error(frame.payload);
    internal::PendingCall* call = find_pending(answer.id);
    if (call == nullptr) return answer_context(answer.id, nullptr, &answer);
    call->error = std::make_exception_ptr(remote_error(answer));
    call->done.set();
  } else if (kind >= protocol::Kind::kStarted && kind <= protocol::Kind::kStop) {
    const std::optional<std::uint64_t> id = protocol::peek_call_id(frame.payload);
    if (!id)
      throw to_process::FrameError(std::string("malformed '") + protocol::kind_name(frame.kind) +
                                   "'");
    auto it = contexts.find(*id);
    if (it != contexts.end()) it->second->on_message(frame.kind, frame.payload);
  } else {
    throw to_process::FrameError(std::string("unexpected '") + protocol::kind_name(frame.kind) +
                                 "' message from a child");
  }
}

void Portal::State::read_loop() {
  struct Ended {
    Event& ended;
    ~Ended() { ended.set(); }
  } ended{read_ended};
  std::string reason;
  try {
    while (std::optional<to_process::RawFrameView> frame = channel->receive_view()) {
      dispatch(*frame);
    }
  } catch (const to_process::FrameError& e) {
    // The stream cannot be trusted past a bad frame: this channel is over, the child too.
    if (!process) {  // a peer: only this connection is over
      break_channel(describe() + " broke the actor protocol: " + e.what() + "; disconnected");
      return;
    }
    break_channel(describe() + " broke the actor protocol: " + e.what() + "; killed");
    shielded([&] { process->kill(); });
    return;
  } catch (const BrokenResourceError& e) {
    reason = std::string("connection lost: ") + e.what();
  } catch (const ClosedResourceError&) {
    reason = "closed";
  }
  if (stopping) {
    break_channel(describe() + " was cancelled");
    return;
  }
  if (!process) {
    break_channel(describe() + " disconnected" + (reason.empty() ? "" : " (" + reason + ")"));
    return;
  }
  // The child hung up by itself: say how it ended if it ends soon.
  std::optional<int> code;
  shielded([&] { code = wait_at_most(*process, cancel_grace); });
  break_channel(describe() + (code ? " " + describe_exit(*code) : " disconnected") +
                (reason.empty() ? "" : " (" + reason + ")"));
  // Gone (crashed, killed, or exited by itself): the tree must not find it any more, nor its
  // subtree (which died with it, or is dying without a parent).
  unregister();
  forget_in_tree();
}

void Portal::State::watch_exit() {
  TRELLIS_ASSERT(process.has_value());
  const int code = process->wait();
  if (stopping) return;  // stop() reaps it and forgets it
  // A real child's connection ends as it dies: let the reader take what it sent last first,
  // so that a cut or malformed last frame is reported as such rather than as the exit.
  // Bounded: a crashed host's connection never ends by itself.
  shielded([&] { move_on_after(kReaderGrace, [&] { read_ended.wait(); }); });
  if (stopping) return;
  break_channel(describe() + " " + describe_exit(code));
  unregister();
  forget_in_tree();
}

void Portal::State::close_peer() noexcept {
  TRELLIS_ASSERT(!process);
  stopping = true;
  if (!broken) broken = describe() + ": this connection was closed";
  break_channel(*broken);
}

void Portal::State::forget_in_tree() noexcept {
  if (forgotten || !process) return;
  forgotten = true;
  internal::forget_subtree(uid);
}

Portal::State::~State() {
  unregister();
}

void Portal::State::unregister() noexcept {
  if (!registry) return;
  for (auto [it, end] = registry->actors.equal_range(name); it != end; ++it) {
    if (it->second == self) {
      registry->actors.erase(it);
      break;
    }
  }
  registry->notify();
  registry.reset();
}

void Portal::State::stop() noexcept {
  unregister();
  if (!process) return close_peer();
  if (stopped) return forget_in_tree();
  stopping = true;
  try {
    shielded([&] {
      Process& process = *this->process;
      std::optional<int> code = process.returncode();
      if (!code && channel && !channel->closed() && !broken) {
        move_on_after(cancel_grace, [&] {
          try {
            channel->send(protocol::encode_cancel_actor());
          } catch (const BrokenResourceError&) {
          } catch (const ClosedResourceError&) {
          }
        });
        code = wait_at_most(process, cancel_grace);
      }
      if (!code) {
        process.terminate();
        code = wait_at_most(process, cancel_grace);
      }
      if (!code) {
        process.kill();
        code = process.wait();
      }
    });
  } catch (const std::exception& e) {  // kill(2) failing: nothing left to do but say so
    std::fprintf(stderr, "trellis actor: stopping %s: %s\n", describe().c_str(), e.what());
  }
  stopped = true;
  if (channel) channel->close();
  if (!broken) broken = describe() + " was cancelled";
  forget_in_tree();
}

// ---- Portal --------------------------------------------------------------------------------

Portal::Portal(std::unique_ptr<State> state) : state_(std::move(state)) {}
Portal::~Portal() = default;

const std::string& Portal::actor_name() const {
  return state_->name;
}

int Portal::pid() const {
  return state_->pid;
}

std::optional<int> Portal::returncode() {
  if (!state_->process) return std::nullopt;
  return state_->process->returncode();
}

void Portal::cancel_actor() {
  state_->stop();
}

std::vector<char> Portal::run_packed(std::string_view function, std::vector<char> arguments) {
  return run_writing(function, [&](to_process::FrameBuilder& frame) { frame.write(arguments); });
}

std::vector<char> Portal::run_writing(
    std::string_view function, FunctionRef<void(to_process::FrameBuilder&)> write_arguments) {
  State& s = *state_;
  if (s.broken) throw BrokenActorError(*s.broken);
  const std::uint64_t id = ++s.next_call_id;
  internal::PendingCall pending;  // (read_loop fills it in while this task waits)
  internal::PendingCall* call = &pending;
  TRELLIS_ASSERT(s.pending.empty() || s.pending.back().first < id);  // (kept sorted)
  s.pending.emplace_back(id, call);
  struct Forget {
    State& s;
    std::uint64_t id;
    ~Forget() { s.forget_pending(id); }
  } forget{s, id};
  try {  // (the wait for the answer is this call's schedule point)
    s.channel->send_without_yield(protocol::encode_call(id, function, write_arguments));
  } catch (const BrokenResourceError& e) {
    throw BrokenActorError(s.describe() + ": connection lost: " + e.what());
  } catch (const ClosedResourceError&) {
    throw BrokenActorError(s.broken ? *s.broken : s.describe() + " was cancelled");
  }
  try {
    call->done.wait();
  } catch (const Cancelled&) {
    if (!call->done.is_set() && !s.broken) {
      try {  // transitive cancellation: the remote task is cancelled too
        s.channel->send(protocol::encode_cancel_call(id));
      } catch (const BrokenResourceError&) {
      } catch (const ClosedResourceError&) {
      }
    }
    throw;
  }
  if (call->error) std::rethrow_exception(call->error);
  return std::move(call->value);
}

ContextHandle Portal::open_context_packed(std::string_view function, std::vector<char> arguments) {
  State& s = *state_;
  if (s.broken) throw BrokenActorError(*s.broken);
  const std::uint64_t id = ++s.next_call_id;
  auto context = std::make_shared<internal::ContextState>(id, *s.channel, true, s.name);
  s.contexts.emplace(id, context);
  try {
    s.channel->send(protocol::encode_open_context(id, function, arguments));
  } catch (const BrokenResourceError& e) {
    s.contexts.erase(id);
    throw BrokenActorError(s.describe() + ": connection lost: " + e.what());
  } catch (const ClosedResourceError&) {
    s.contexts.erase(id);
    throw BrokenActorError(s.broken ? *s.broken : s.describe() + " was cancelled");
  }
  return ContextHandle(std::move(context));
}

std::vector<char> Portal::result_packed() {
  State& s = *state_;
  if (!s.runs_one_function) {
    throw UsageError("Portal::result: actor '" + s.name + "' was not started by run_in_actor");
  }
  s.result.done.wait();
  if (s.result.error) std::rethrow_exception(s.result.error);
  return s.result.value;
}

// ---- ActorNursery --------------------------------------------------------------------------

ActorNursery::ActorNursery(std::unique_ptr<State> state) : state_(std::move(state)) {}
ActorNursery::~ActorNursery() = default;

CancelScope& ActorNursery::cancel_scope() {
  TRELLIS_ASSERT(state_->tasks != nullptr);
  return state_->tasks->cancel_scope();
}

std::unique_ptr<internal::Channel> ActorNursery::State::accept_child(Process& process,
                                                                     const std::string& uid,
                                                                     std::optional<int>& exited) {
  std::unique_ptr<internal::Channel> channel;
  open_nursery([&](Nursery& race) {
    race.start_soon([&] {
      exited = process.wait();
      race.cancel_scope().cancel();
    });
    while (channel == nullptr) {
      auto candidate = std::make_unique<internal::Channel>(listener->accept());
      try {
        std::optional<to_process::RawFrame> hello = candidate->receive();
        if (hello && hello->kind == static_cast<std::uint8_t>(protocol::Kind::kHello) &&
            protocol::parse_hello(hello->payload).uid == uid) {
          channel = std::move(candidate);
        }
      } catch (const to_process::FrameError&) {  // not our child: drop the connection
      } catch (const BrokenResourceError&) {
      }
      if (candidate) candidate->close();
    }
    race.cancel_scope().cancel();
  });
  return channel;
}

std::unique_ptr<Portal::State> ActorNursery::State::spawn(const std::string& name,
                                                          const ActorOptions& options) {
  std::shared_ptr<internal::ActorRuntime> runtime = internal::current_runtime();
  TRELLIS_ASSERT(runtime != nullptr);
  // The child's path in the tree: unique in the whole tree (the registry's key, and what this
  // listener's hello must name), and the same in every replay of a simulated run (no pid).
  const std::string uid = runtime->uid + "." + std::to_string(++runtime->next_child);
  if (!options.host.empty() && (host == "127.0.0.1" || host == "::1" || host == "localhost")) {
    throw UsageError("ActorOptions::host '" + options.host + "': this actor listens on " + host +
                     ", which another host cannot reach (open the root's actor nursery with "
                     "ActorNurseryOptions::address = its host's address)");
  }
  std::vector<std::string> argv{
      options.executable.empty() ? std::string(to_process::kSelfExecutable) : options.executable,
      std::string(kActorFlag),
      "--name=" + name,
      "--parent=" + host + ":" + std::to_string(port),
      "--uid=" + uid,
      "--address=" + (options.host.empty() ? runtime->address : options.host)};
  if (runtime->registry) {
    argv.push_back("--registrar=" + runtime->advertised_host + ":" +
                   std::to_string(runtime->peer_port));
  } else if (runtime->registrar_port != 0) {
    argv.push_back("--registrar=" + runtime->registrar_host + ":" +
                   std::to_string(runtime->registrar_port));
  }
  runtime->starting.insert(uid);
  struct Started {  // however the start ends, a find_actor waiting for it wakes up
    internal::ActorRuntime& runtime;
    const std::string& uid;
    ~Started() {
      runtime.starting.erase(uid);
      internal::current_registry()->notify();
    }
  } started{*runtime, uid};
  auto state = std::make_unique<Portal::State>(
      name, open_process(std::move(argv), ProcessOptions{.host = options.host}),
      this->options.cancel_grace);
  state->uid = uid;
  std::optional<int> exited;
  try {
    move_on_after(this->options.start_timeout,
                  [&] { state->channel = accept_child(*state->process, uid, exited); });
  } catch (...) {
    state->stop();
    throw;
  }
  if (state->channel == nullptr && !exited) {
    state->stop();
    throw BrokenActorError(state->describe() + " did not connect within " +
                           std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                              this->options.start_timeout)
                                              .count()) +
                           " ms; killed");
  }
  if (state->channel == nullptr) {
    state->stopped = true;
    state->forget_in_tree();
    throw BrokenActorError(state->describe() + " " + describe_exit(exited.value_or(-9)) +
                           " before it connected (does main() call "
                           "trellis::actor::maybe_run_actor first?)");
  }
  return state;
}

Portal& ActorNursery::start_actor(std::string name, ActorOptions options) {
  State& s = *state_;
  if (s.tasks == nullptr || s.tasks->closed()) {
    throw UsageError("ActorNursery::start_actor: the nursery has exited");
  }
  if (name.empty()) throw std::invalid_argument("ActorNursery::start_actor: empty actor name");
  std::unique_ptr<Portal::State> state;
  {
    std::lock_guard<Lock> hold(s.spawn_lock);
    state = s.spawn(name, options);
  }
  Portal::State* raw = state.get();
  s.portals.push_back(std::make_unique<Portal>(std::move(state)));
  raw->self = s.portals.back().get();
  raw->registry = internal::current_registry();
  raw->registry->actors.emplace(raw->name, raw->self);
  raw->registry->notify();
  s.tasks->start_soon([raw] { raw->read_loop(); });
  s.tasks->start_soon([raw] { raw->watch_exit(); });
  return *s.portals.back();
}

Portal& ActorNursery::run_in_actor_packed(std::string name, std::string_view function,
                                          std::vector<char> arguments) {
  Portal& portal = start_actor(std::move(name));
  Portal::State& s = portal.state();
  s.runs_one_function = true;
  state_->tasks->start_soon([&portal, function = std::string(function),
                             arguments = std::move(arguments)]() mutable {
    Portal::State& s = portal.state();
    try {
      s.result.value = portal.run_packed(function, std::move(arguments));
    } catch (const Cancelled&) {
      s.result.error = std::make_exception_ptr(BrokenActorError(s.describe() + " was cancelled"));
      s.result.done.set();
      throw;
    } catch (const BrokenActorError&) {
      s.result.error = std::current_exception();
      s.result.done.set();
      if (s.stopping) return;  // stopped by its nursery (cancelled): not an error
      throw;
    } catch (...) {
      s.result.error = std::current_exception();
      s.result.done.set();
      throw;  // an error of the nursery, like a task's
    }
    s.result.done.set();
    s.stop();
  });
  return portal;
}

void ActorNursery::State::wait_for_results() {
  for (std::size_t i = 0; i < portals.size(); ++i) {  // (run_in_actor may add portals)
    Portal::State& s = portals[i]->state();
    if (s.runs_one_function) s.result.done.wait();
  }
}

void ActorNursery::State::stop_all() noexcept {
  try {
    shielded([&] {
      open_nursery([&](Nursery& stoppers) {
        for (auto& portal : portals) {
          Portal::State* s = &portal->state();
          stoppers.start_soon([s] { s->stop(); });
        }
      });
    });
  } catch (const std::exception& e) {
    std::fprintf(stderr, "trellis actor: stopping the children: %s\n", e.what());
  }
  if (listener) {
    try {
      shielded([&] { listener->close(); });
    } catch (...) {
    }
  }
}

namespace internal {

void run_actor_nursery(const ActorNurseryOptions& options, FunctionRef<void(ActorNursery&)> body) {
  // The outermost actor nursery of a root makes the tree: the root's runtime and registry.
  std::shared_ptr<ActorRuntime> runtime = current_runtime();
  const bool makes_tree = runtime == nullptr;
  if (makes_tree) {
    runtime = std::make_shared<ActorRuntime>();
    runtime->name = current_actor_name();
    runtime->uid = "r";
    runtime->address = options.address.empty() ? "127.0.0.1" : options.address;
    runtime->registry = std::make_unique<TreeRegistry>();
  }
  auto state = std::make_unique<ActorNursery::State>(options);
  state->host = options.address.empty() ? runtime->address : options.address;
  std::vector<std::unique_ptr<SocketListener>> listeners = open_tcp_listeners(0, state->host);
  TRELLIS_ASSERT(!listeners.empty());
  state->listener = std::move(listeners.front());
  state->port = state->listener->local_address().port();
  ActorNursery nursery(std::move(state));
  ActorNursery::State& s = nursery.state();
  struct RestoreRuntime {
    ActorRuntime* made;
    ~RestoreRuntime() {
      if (made == nullptr) return;
      made->tasks = nullptr;
      release_runtime(*made);
      set_current_runtime(nullptr);
    }
  } restore{makes_tree ? runtime.get() : nullptr};
  if (makes_tree) set_current_runtime(runtime);
  open_nursery([&](Nursery& tasks) {
    s.tasks = &tasks;
    std::exception_ptr error;
    try {
      if (makes_tree) {
        runtime->tasks = &tasks;
        start_peer_server(*runtime);
        join_tree(*runtime);
      }
      body(nursery);
      s.wait_for_results();
    } catch (...) {
      error = std::current_exception();
    }
    s.stop_all();
    if (makes_tree) {
      leave_tree(*runtime);
      runtime->tasks = nullptr;
    }
    tasks.cancel_scope().cancel();  // the reader tasks (their channels are closed anyway)
    if (error) std::rethrow_exception(error);
  });
}

}  // namespace internal
}  // namespace trellis::actor
