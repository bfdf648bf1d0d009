// trellis/actor/internal/parent.h — the parent's side of its children (actor.h).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "trellis/actor/actor.h"
#include "trellis/actor/internal/channel.h"
#include "trellis/actor/internal/context_state.h"
#include "trellis/actor/protocol.h"
#include "trellis/core/nursery.h"
#include "trellis/io/socket_stream.h"
#include "trellis/process/process.h"
#include "trellis/sync/event.h"
#include "trellis/sync/lock.h"

namespace trellis::actor {

namespace internal {
// The actors this actor's nurseries started, by name (find_actor).
struct Registry {
  void notify();
  std::multimap<std::string, Portal*, std::less<>> actors;
  std::shared_ptr<Event> changed = std::make_shared<Event>();
};
// This actor's registry (a task-local: in a World several actors share one process).
std::shared_ptr<Registry> current_registry();
// A fresh, empty registry for the calling task and the tasks it spawns (a new actor).
void start_registry();

// One call waiting for its answer.
struct PendingCall {
  Event done;
  std::vector<char> value;
  std::exception_ptr error;
};
}  // namespace internal

struct Portal::State {
  // child: the actor's process (a child of this actor); nullopt for a portal that find_actor
  // opened to an actor elsewhere in the tree (a peer: this actor does not own its process).
  State(std::string actor_name, std::optional<Process> child, Duration grace)
      : name(std::move(actor_name)),
        process(std::move(child)),
        pid(process ? process->pid() : 0),
        cancel_grace(grace) {}

  // Reads the child's answers until the channel ends, then fails every pending call.
  void read_loop();
  // A child's: waits for its process to exit; one that exits (crashes, is killed, its host
  // crashes) without being stopped breaks the channel at once — a dead host's connection may
  // never end by itself — and leaves the tree's registry.
  void watch_exit();
  // One message from the child; throws FrameError for one that breaks the protocol.
  void dispatch(const to_process::RawFrameView& frame);
  void answer_context(std::uint64_t id, std::vector<char>* value, protocol::Error* error);
  // Cancel request, SIGTERM, SIGKILL (each after cancel_grace); reaps. Shielded.
  void stop() noexcept;
  void break_channel(const std::string& reason);
  // A peer's portal: closes this connection only (the actor goes on). Never throws.
  void close_peer() noexcept;
  // A child's portal, once its process is reaped: tells the tree's registry (once).
  void forget_in_tree() noexcept;
  std::string describe() const;

  ~State();
  void unregister() noexcept;

  std::string name;
  std::shared_ptr<internal::Registry> registry;  // where it is listed, if it is
  Portal* self = nullptr;
  std::optional<Process> process;  // nullopt: a peer (see the constructor)
  std::string uid;                 // the actor's uid in the tree ("r.1.2")
  bool forgotten = false;          // forget_in_tree has run
  int pid = 0;
  Duration cancel_grace;
  std::unique_ptr<internal::Channel> channel;
  std::uint64_t next_call_id = 0;
  // Calls waiting for their answers, each on its caller's stack, by id: sorted, as ids only
  // grow (a vector keeps its room: no allocation per call).
  std::vector<std::pair<std::uint64_t, internal::PendingCall*>> pending;
  // The position of call `id` in pending, or pending.size() if it is not there.
  std::size_t pending_index(std::uint64_t id) const noexcept;
  internal::PendingCall* find_pending(std::uint64_t id) const noexcept;
  void forget_pending(std::uint64_t id) noexcept;
  std::map<std::uint64_t, std::shared_ptr<internal::ContextState>> contexts;
  std::optional<std::string> broken;  // why the channel is gone
  bool stopping = false;              // we asked it to exit
  Event read_ended;                   // read_loop has returned
  bool stopped = false;               // reaped
  // run_in_actor only:
  bool runs_one_function = false;
  internal::PendingCall result;
};

struct ActorNursery::State {
  explicit State(const ActorNurseryOptions& nursery_options) : options(nursery_options) {}

  std::unique_ptr<Portal::State> spawn(const std::string& name, const ActorOptions& options);
  std::unique_ptr<internal::Channel> accept_child(Process& process, const std::string& uid,
                                                  std::optional<int>& exited);
  void wait_for_results();
  void stop_all() noexcept;

  ActorNurseryOptions options;
  Nursery* tasks = nullptr;  // reader and run_in_actor tasks; set while the body runs
  std::unique_ptr<SocketListener> listener;
  std::string host = "127.0.0.1";  // where it listens: the actor's address
  std::uint16_t port = 0;
  std::vector<std::unique_ptr<Portal>> portals;
  Lock spawn_lock;
  std::uint64_t next_uid = 0;
};

}  // namespace trellis::actor
