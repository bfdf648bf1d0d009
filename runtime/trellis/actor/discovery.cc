// trellis/actor/discovery.cc — the tree's registry (tractor's registrar), the peer server of
// each actor, and find_actor / wait_for_actor across the tree. See internal/runtime.h.

#include <cstdio>
#include <stdexcept>
#include <tuple>

#include "trellis/actor/internal/channel.h"
#include "trellis/actor/internal/parent.h"
#include "trellis/actor/internal/runtime.h"
#include "trellis/actor/protocol.h"
#include "trellis/actor/registry.h"
#include "trellis/base/assert.h"
#include "trellis/core/errors.h"
#include "trellis/core/os_error.h"
#include "trellis/core/run.h"
#include "trellis/core/task_local.h"
#include "trellis/io/tcp.h"

namespace trellis::actor {
namespace internal {
namespace {

// How long an actor waits for the registrar when it unregisters (it exits either way) and
// when its parent tells the registrar about a reaped child.
constexpr Duration kUnregisterTimeout = std::chrono::seconds(2);

TaskLocal<std::shared_ptr<ActorRuntime>>& runtime_local() {
  static TaskLocal<std::shared_ptr<ActorRuntime>> runtime{nullptr};
  return runtime;
}

// The registrations ({uid, sequence}) made over one peer connection to the root: when the
// connection closes they go (the actor exited or crashed; one that lives on registers again
// over its next connection). Set by serve_peer for the calls it serves.
using ConnectionRegistrations = std::vector<std::pair<std::string, std::uint64_t>>;
TaskLocal<std::shared_ptr<ConnectionRegistrations>>& connection_registrations() {
  static TaskLocal<std::shared_ptr<ConnectionRegistrations>> registrations{nullptr};
  return registrations;
}

template <class F>
void shielded(F&& body) {
  CancelScope shield(kNoDeadline, true);
  shield.run(std::forward<F>(body));
}

void log(const std::string& message) {
  std::fprintf(stderr, "trellis actor '%s': %s\n", current_actor_name().c_str(), message.c_str());
}

// What a registrar lookup answers: {uid, host, port}; an empty uid: none.
using FoundEntry = std::tuple<std::string, std::string, int>;

FoundEntry to_found(const std::optional<TreeEntry>& entry) {
  if (!entry) return {};
  return {entry->uid, entry->host, entry->port};
}

TreeRegistry& root_registry(const char* function) {
  std::shared_ptr<ActorRuntime> runtime = current_runtime();
  if (!runtime || !runtime->registry) {
    throw UsageError(std::string(function) + ": actor '" + current_actor_name() +
                     "' is not the root of an actor tree (it holds no registry)");
  }
  return *runtime->registry;
}

// The registrar's functions, run in the root for any actor of the tree.
void registrar_register(std::string name, std::string uid, std::string host, int port) {
  if (name.empty() || uid.empty() || port <= 0 || port > 65535) {
    throw std::invalid_argument("trellis.registrar.register: bad entry for '" + name + "'");
  }
  const std::uint64_t sequence =
      root_registry("trellis.registrar.register")
          .add({std::move(name), uid, std::move(host), static_cast<std::uint16_t>(port)});
  if (std::shared_ptr<ConnectionRegistrations> over = connection_registrations().get()) {
    over->emplace_back(std::move(uid), sequence);
  }
}
void registrar_unregister(std::string uid) {
  root_registry("trellis.registrar.unregister").remove_subtree(uid);
}
FoundEntry registrar_find(std::string name) {
  return to_found(root_registry("trellis.registrar.find").find(name));
}
FoundEntry registrar_wait(std::string name) {
  return to_found(root_registry("trellis.registrar.wait").wait_for(name));
}

}  // namespace
}  // namespace internal

TRELLIS_ACTOR_FUNCTION("trellis.registrar.register", internal::registrar_register);
TRELLIS_ACTOR_FUNCTION("trellis.registrar.unregister", internal::registrar_unregister);
TRELLIS_ACTOR_FUNCTION("trellis.registrar.find", internal::registrar_find);
TRELLIS_ACTOR_FUNCTION("trellis.registrar.wait", internal::registrar_wait);

namespace internal {

// ---- TreeRegistry ------------------------------------------------------------------------

std::uint64_t TreeRegistry::add(TreeEntry entry) {
  TRELLIS_ASSERT(!entry.uid.empty());
  if (by_uid_.size() >= kEntriesMax && !by_uid_.contains(entry.uid)) {
    throw std::length_error("the actor tree's registry is full (" + std::to_string(kEntriesMax) +
                            " actors)");
  }
  const std::uint64_t sequence = next_sequence_++;
  entry.sequence = sequence;
  by_uid_.insert_or_assign(entry.uid, std::move(entry));
  notify();
  return sequence;
}

void TreeRegistry::remove_registration(const std::string& uid, std::uint64_t sequence) {
  auto it = by_uid_.find(uid);
  if (it == by_uid_.end() || it->second.sequence != sequence) return;
  by_uid_.erase(it);
  notify();
}

void TreeRegistry::remove_subtree(const std::string& uid) {
  const std::size_t before = by_uid_.size();
  // "r.2" and every "r.2.<...>" sort together from "r.2" on.
  for (auto it = by_uid_.lower_bound(uid); it != by_uid_.end();) {
    const std::string& key = it->first;
    const bool below =
        key == uid || (key.size() > uid.size() && key.starts_with(uid) && key[uid.size()] == '.');
    if (!below && !key.starts_with(uid)) break;
    it = below ? by_uid_.erase(it) : std::next(it);
  }
  TRELLIS_ASSERT(by_uid_.size() <= before);
  if (by_uid_.size() != before) notify();
}

std::optional<TreeEntry> TreeRegistry::find(const std::string& name) const {
  const TreeEntry* best = nullptr;
  for (const auto& [uid, entry] : by_uid_) {
    if (entry.name == name && (best == nullptr || entry.sequence < best->sequence)) best = &entry;
  }
  if (best == nullptr) return std::nullopt;
  return *best;
}

TreeEntry TreeRegistry::wait_for(const std::string& name) {
  for (;;) {
    if (std::optional<TreeEntry> entry = find(name)) return *entry;
    std::shared_ptr<Event> changed = changed_;
    changed->wait();
  }
}

void TreeRegistry::notify() {
  std::shared_ptr<Event> old = std::move(changed_);
  changed_ = std::make_shared<Event>();
  old->set();
}

// ---- the runtime ---------------------------------------------------------------------------

std::shared_ptr<ActorRuntime> current_runtime() {
  return runtime_local().get();
}

void set_current_runtime(std::shared_ptr<ActorRuntime> runtime) {
  runtime_local().set(std::move(runtime));
}

namespace {

// One connection to the peer listener: a hello first (anything else is dropped), then the
// connection is served as a parent's would be, except that a cancel request only ends it.
void serve_peer(std::unique_ptr<SocketStream> stream) {
  Channel channel(std::move(stream));
  try {
    std::optional<to_process::RawFrame> hello;
    move_on_after(std::chrono::seconds(10), [&] { hello = channel.receive(); });
    if (!hello || hello->kind != static_cast<std::uint8_t>(protocol::Kind::kHello)) {
      channel.close();
      return;
    }
    (void)protocol::parse_hello(hello->payload);
  } catch (const to_process::FrameError& e) {
    log(std::string("dropped a peer connection with a malformed hello: ") + e.what());
    channel.close();
    return;
  } catch (const BrokenResourceError&) {
    channel.close();
    return;
  }
  // In the root: what registers over this connection leaves the registry as it closes, so
  // that a crashed actor is not found while its parent has yet to reap it.
  auto registrations = std::make_shared<ConnectionRegistrations>();
  struct Forget {
    ConnectionRegistrations& made;
    ~Forget() {
      std::shared_ptr<ActorRuntime> runtime = current_runtime();
      if (!runtime || !runtime->registry) return;
      for (const auto& [uid, sequence] : made)
        runtime->registry->remove_registration(uid, sequence);
    }
  } forget{*registrations};
  connection_registrations().set(registrations);
  serve_channel(channel);
  channel.close();
}

}  // namespace

void start_peer_server(ActorRuntime& runtime) {
  TRELLIS_ASSERT(runtime.tasks != nullptr);
  TRELLIS_ASSERT(runtime.peer_listener == nullptr);
  std::vector<std::unique_ptr<SocketListener>> listeners = open_tcp_listeners(0, runtime.address);
  TRELLIS_ASSERT(!listeners.empty());
  runtime.peer_listener = std::move(listeners.front());
  const SocketAddress local = runtime.peer_listener->local_address();
  runtime.advertised_host = local.host();
  runtime.peer_port = local.port();
  SocketListener* listener = runtime.peer_listener.get();
  Nursery* tasks = runtime.tasks;
  tasks->start_soon([listener, tasks] {
    for (;;) {
      std::unique_ptr<SocketStream> stream;
      try {
        stream = listener->accept();
      } catch (const ClosedResourceError&) {
        return;                     // leave_tree closed it
      } catch (const OSError& e) {  // (EMFILE and the like: try again shortly)
        log(std::string("peer listener: ") + e.what());
        sleep(std::chrono::milliseconds(100));
        continue;
      }
      tasks->start_soon([stream = std::move(stream)]() mutable { serve_peer(std::move(stream)); });
    }
  });
}

namespace {

// Drops a broken connection's portal: at once if its reader task has returned, else once it
// has (a later retire or release_runtime frees it).
void retire(ActorRuntime& runtime, std::unique_ptr<Portal> portal) {
  std::erase_if(runtime.retired,
                [](const std::unique_ptr<Portal>& p) { return p->state().read_ended.is_set(); });
  if (!portal->state().read_ended.is_set()) runtime.retired.push_back(std::move(portal));
}

Portal& connect_peer(ActorRuntime& runtime, const std::string& name, const std::string& uid,
                     const std::string& host, std::uint16_t port) {
  if (auto it = runtime.peers.find(uid); it != runtime.peers.end()) {
    if (!it->second->state().broken) return *it->second;
    retire(runtime, std::move(it->second));
    runtime.peers.erase(it);
  }
  if (runtime.tasks == nullptr) throw ActorNotFound("actor '" + runtime.name + "' is exiting");
  std::unique_ptr<Channel> channel;
  try {
    channel =
        std::make_unique<Channel>(std::make_unique<SocketStream>(open_tcp_stream(host, port)));
    channel->send(protocol::encode_hello({runtime.name, "peer", 0}));
  } catch (const OSError& e) {
    throw BrokenActorError("actor '" + name + "' is registered at " + host + ":" +
                           std::to_string(port) + " but cannot be reached: " + e.what());
  } catch (const BrokenResourceError& e) {
    throw BrokenActorError("actor '" + name + "' is registered at " + host + ":" +
                           std::to_string(port) + " but cannot be reached: " + e.what());
  }
  auto state = std::make_unique<Portal::State>(name, std::nullopt, std::chrono::seconds(1));
  state->uid = uid;
  state->channel = std::move(channel);
  Portal::State* raw = state.get();
  auto portal = std::make_unique<Portal>(std::move(state));
  raw->self = portal.get();
  Portal& result = *portal;
  runtime.peers.emplace(uid, std::move(portal));
  runtime.tasks->start_soon([raw] { raw->read_loop(); });
  return result;
}

Portal& registrar_of(ActorRuntime& runtime) {
  TRELLIS_ASSERT(!runtime.registry);
  if (runtime.registrar && !runtime.registrar->state().broken) return *runtime.registrar;
  if (runtime.registrar_port == 0) {
    throw ActorNotFound("actor '" + runtime.name +
                        "' was started without the address of its tree's registrar");
  }
  if (runtime.tasks == nullptr) throw ActorNotFound("actor '" + runtime.name + "' is exiting");
  // Not in peers: the registrar connection is kept apart (find_actor("root") gets its own).
  std::unique_ptr<Channel> channel;
  try {
    channel = std::make_unique<Channel>(std::make_unique<SocketStream>(
        open_tcp_stream(runtime.registrar_host, runtime.registrar_port)));
    channel->send(protocol::encode_hello({runtime.name, "peer", 0}));
  } catch (const OSError& e) {
    throw BrokenActorError("the actor tree's registrar (the root, at " + runtime.registrar_host +
                           ":" + std::to_string(runtime.registrar_port) +
                           ") cannot be reached: " + e.what());
  } catch (const BrokenResourceError& e) {
    throw BrokenActorError("the actor tree's registrar (the root, at " + runtime.registrar_host +
                           ":" + std::to_string(runtime.registrar_port) +
                           ") cannot be reached: " + e.what());
  }
  auto state = std::make_unique<Portal::State>("root", std::nullopt, std::chrono::seconds(1));
  state->channel = std::move(channel);
  Portal::State* raw = state.get();
  if (runtime.registrar) retire(runtime, std::move(runtime.registrar));
  runtime.registrar = std::make_unique<Portal>(std::move(state));
  raw->self = runtime.registrar.get();
  runtime.tasks->start_soon([raw] { raw->read_loop(); });
  if (runtime.registered) {
    // The root dropped our registration as the previous connection closed: make it again.
    try {
      runtime.registrar->run<void>("trellis.registrar.register", runtime.name, runtime.uid,
                                   runtime.advertised_host, static_cast<int>(runtime.peer_port));
    } catch (const BrokenActorError& e) {
      log(std::string("could not register again with the actor tree's registrar: ") + e.what());
    } catch (const RemoteActorError& e) {
      log(std::string("could not register again with the actor tree's registrar: ") + e.what());
    }
  }
  return *runtime.registrar;
}

std::optional<TreeEntry> lookup(ActorRuntime& runtime, const std::string& name, bool wait) {
  if (runtime.registry) {
    if (wait) return runtime.registry->wait_for(name);
    return runtime.registry->find(name);
  }
  const auto [uid, host, port] = registrar_of(runtime).run<FoundEntry>(
      wait ? "trellis.registrar.wait" : "trellis.registrar.find", name);
  if (uid.empty()) return std::nullopt;
  if (port <= 0 || port > 65535) {
    throw BrokenActorError("the actor tree's registrar answered a bad port for '" + name + "'");
  }
  return TreeEntry{name, uid, host, static_cast<std::uint16_t>(port), 0};
}

// One of this actor's own children (from its local registry) whose tree uid is `uid`.
Portal* own_child(const std::string& uid) {
  std::shared_ptr<Registry> registry = current_registry();
  for (auto& [name, portal] : registry->actors) {
    if (portal->state().uid == uid && !portal->state().broken) return portal;
  }
  return nullptr;
}

Portal* own_child_named(std::string_view name) {
  std::shared_ptr<Registry> registry = current_registry();
  for (auto [it, end] = registry->actors.equal_range(name); it != end; ++it) {
    if (!it->second->state().broken) return it->second;
  }
  return nullptr;
}

Portal& portal_for(ActorRuntime& runtime, const TreeEntry& entry) {
  if (runtime.starting.contains(entry.uid)) {
    // Our own child, registered but not connected yet: its start_actor gives us its portal.
    std::shared_ptr<Registry> registry = current_registry();
    while (runtime.starting.contains(entry.uid)) {
      std::shared_ptr<Event> changed = registry->changed;
      changed->wait();
    }
    if (Portal* child = own_child(entry.uid)) return *child;
    throw BrokenActorError("actor '" + entry.name + "' failed to start");
  }
  if (Portal* child = own_child(entry.uid)) return *child;
  return connect_peer(runtime, entry.name, entry.uid, entry.host, entry.port);
}

}  // namespace

void join_tree(ActorRuntime& runtime) {
  TRELLIS_ASSERT(runtime.peer_port != 0);
  if (runtime.registry) {
    runtime.registry->add({runtime.name, runtime.uid, runtime.advertised_host, runtime.peer_port});
    runtime.registered = true;
    return;
  }
  if (runtime.registrar_port == 0) return;  // (started by hand, without a tree)
  try {
    registrar_of(runtime).run<void>("trellis.registrar.register", runtime.name, runtime.uid,
                                    runtime.advertised_host, static_cast<int>(runtime.peer_port));
    runtime.registered = true;
  } catch (const std::exception& e) {
    log(std::string("could not register with the actor tree's registrar (find_actor will not "
                    "find this actor): ") +
        e.what());
  }
}

void leave_tree(ActorRuntime& runtime) noexcept {
  try {
    shielded([&] {
      if (runtime.registered && runtime.registry) {
        runtime.registry->remove_subtree(runtime.uid);
      } else if (runtime.registered && runtime.registrar && !runtime.registrar->state().broken) {
        move_on_after(kUnregisterTimeout, [&] {
          runtime.registrar->run<void>("trellis.registrar.unregister", runtime.uid);
        });
      }
      runtime.registered = false;
      for (auto& [uid, peer] : runtime.peers) peer->state().close_peer();
      if (runtime.registrar) runtime.registrar->state().close_peer();
      if (runtime.peer_listener) runtime.peer_listener->close();
    });
  } catch (const std::exception& e) {
    log(std::string("leaving the actor tree: ") + e.what());
  }
}

void release_runtime(ActorRuntime& runtime) noexcept {
  TRELLIS_ASSERT(runtime.tasks == nullptr);
  try {
    shielded([&] {
      for (auto& [uid, peer] : runtime.peers) peer->state().close_peer();
      if (runtime.registrar) runtime.registrar->state().close_peer();
      if (runtime.peer_listener) runtime.peer_listener->close();
      runtime.peers.clear();
      runtime.retired.clear();
      runtime.registrar.reset();
      runtime.peer_listener.reset();
    });
  } catch (const std::exception& e) {
    log(std::string("closing the actor's connections: ") + e.what());
  }
}

void forget_subtree(const std::string& uid) noexcept {
  std::shared_ptr<ActorRuntime> runtime = current_runtime();
  if (!runtime || uid.empty()) return;
  try {
    shielded([&] {
      if (runtime->registry) {
        runtime->registry->remove_subtree(uid);
      } else if (runtime->registrar_port != 0 && runtime->tasks != nullptr) {
        move_on_after(kUnregisterTimeout, [&] {
          registrar_of(*runtime).run<void>("trellis.registrar.unregister", uid);
        });
      }
    });
  } catch (const std::exception& e) {
    log("could not tell the registrar that actor " + uid + " is gone: " + e.what());
  }
}

}  // namespace internal

Portal& find_actor(std::string_view name) {
  if (Portal* child = internal::own_child_named(name)) return *child;
  std::shared_ptr<internal::ActorRuntime> runtime = internal::current_runtime();
  if (!runtime) {
    throw ActorNotFound("no actor named '" + std::string(name) + "': actor '" +
                        current_actor_name() +
                        "' is not in an actor tree (open_actor_nursery first)");
  }
  std::optional<internal::TreeEntry> entry = internal::lookup(*runtime, std::string(name), false);
  if (!entry) {
    throw ActorNotFound("no actor named '" + std::string(name) +
                        "' is registered in the actor tree (asked by actor '" +
                        current_actor_name() + "')");
  }
  return internal::portal_for(*runtime, *entry);
}

Portal& wait_for_actor(std::string_view name) {
  if (Portal* child = internal::own_child_named(name)) return *child;
  std::shared_ptr<internal::ActorRuntime> runtime = internal::current_runtime();
  if (!runtime) {
    // Outside a tree only this actor's own children can appear: wait for one of those.
    std::shared_ptr<internal::Registry> registry = internal::current_registry();
    for (;;) {
      if (Portal* child = internal::own_child_named(name)) return *child;
      std::shared_ptr<Event> changed = registry->changed;
      changed->wait();
    }
  }
  for (;;) {
    std::optional<internal::TreeEntry> entry = internal::lookup(*runtime, std::string(name), true);
    TRELLIS_ASSERT(entry.has_value());
    try {
      return internal::portal_for(*runtime, *entry);
    } catch (const BrokenActorError&) {
      // Registered but gone already (it is exiting): wait for its unregistration, then for
      // the next one of that name.
      sleep(std::chrono::milliseconds(50));
    }
  }
}

}  // namespace trellis::actor
