// trellis/actor/internal/runtime.h — what one actor holds for the whole tree: its peer
// listener (other actors of the tree connect to it after find_actor), its connection to the
// root's registrar, the portals find_actor opened, and in the root the tree's registry
// (tractor's arbiter/registrar).
//
// The tree's registry lives in the root actor. Every actor of the tree, once its peer
// listener is open, registers {name, uid, address} with the root before it says hello to its
// parent (so when start_actor returns, the new actor can be found from anywhere in the tree),
// and unregisters when it exits. A parent that reaps a child (stopped, crashed, killed) tells
// the registry too, for the child and its whole subtree: uids are paths ("r.2.1" is the first
// child of the root's second child), so a dead subtree goes in one request even if its
// descendants could not unregister themselves. The root drops the registrations made over a
// connection when that connection closes (a crashed actor's process closes it), and an actor
// that lives on registers again over its next connection.
//
// The registrar is served like any actor's functions (the built-in actor functions
// "trellis.registrar.*", discovery.cc) on the root's peer listener: a descendant asks it with
// Portal::run over one kept connection, so its cancellation, errors and a vanished root are
// those of any remote call.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "trellis/actor/actor.h"
#include "trellis/actor/tree_registry.h"
#include "trellis/core/nursery.h"
#include "trellis/io/socket_stream.h"
#include "trellis/sync/event.h"

namespace trellis::actor::internal {

struct ActorRuntime {
  std::string name;
  std::string uid;              // "r" for the root
  std::string address;          // where this actor listens (its nurseries and peers)
  std::string advertised_host;  // its peer listener's address as registered
  std::uint16_t peer_port = 0;  // its peer listener's port
  Nursery* tasks = nullptr;     // the peer server's and found portals' reader tasks
  std::unique_ptr<SocketListener> peer_listener;
  std::unique_ptr<TreeRegistry> registry;  // the root's only
  std::string registrar_host;              // a child's: the root's peer listener
  std::uint16_t registrar_port = 0;
  std::unique_ptr<Portal> registrar;  // a child's connection to it, once opened
  bool registered = false;
  std::map<std::string, std::unique_ptr<Portal>, std::less<>> peers;  // find_actor's, by uid
  // Broken peer and registrar connections replaced by new ones while their reader task had
  // yet to return (it still uses its State): kept until it has, at the latest until
  // release_runtime.
  std::vector<std::unique_ptr<Portal>> retired;
  std::uint64_t next_child = 0;  // for child uids: uid + "." + n
  // Uids of children being started (spawned, not yet connected or failed): find_actor waits
  // for those to be connected rather than open a second connection to its own child.
  std::set<std::string, std::less<>> starting;
};

// This actor's runtime (a task-local), nullptr outside an actor tree (a root with no actor
// nursery open).
std::shared_ptr<ActorRuntime> current_runtime();
void set_current_runtime(std::shared_ptr<ActorRuntime> runtime);

// Opens runtime.peer_listener on runtime.address and serves it in runtime.tasks.
void start_peer_server(ActorRuntime& runtime);
// A child: registers with the registrar (logs and goes on if it cannot: the actor serves its
// parent, only discovery of it is lost). The root: registers itself in its own registry.
void join_tree(ActorRuntime& runtime);
// Unregisters (bounded, shielded), closes found portals and the peer listener. Never throws.
void leave_tree(ActorRuntime& runtime) noexcept;
// Once runtime.tasks has exited (on every path, errors and cancellation included): closes and
// destroys its sockets and portals here, in the actor's own task (in a World a socket must
// be closed by a task of its host, never by whoever drops the last task-local reference).
void release_runtime(ActorRuntime& runtime) noexcept;
// A parent reaped the child `uid`: removes it and its subtree from the registry. Bounded,
// shielded, never throws.
void forget_subtree(const std::string& uid) noexcept;

// Serves one actor-protocol connection (a parent's or a peer's) until it ends: each call a
// task; returns the exit status a child actor would have (child.cc).
class Channel;
int serve_channel(Channel& channel);

}  // namespace trellis::actor::internal
