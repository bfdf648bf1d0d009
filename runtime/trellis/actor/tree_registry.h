// trellis/actor/tree_registry.h — the actor tree's registry (tractor's registrar), as the root
// actor holds it: every actor of the tree by uid, looked up by name. The actor runtime keeps
// one in the root (internal/runtime.h) and serves it to the tree; it is public so that its
// rules can be tested and reused:
//
//   trellis::actor::internal::TreeRegistry registry;
//   registry.add({"worker", "r.1", "127.0.0.1", 4000});
//   registry.add({"worker", "r.2.1", "127.0.0.1", 4001});
//   registry.find("worker")->uid;      // "r.1": the earliest registered
//   registry.remove_subtree("r.2");    // "r.2" and every "r.2.*" (never "r.20")
//   const std::uint64_t seq = registry.add({"w", "r.3", "127.0.0.1", 4002});
//   registry.remove_registration("r.3", seq);  // only if not registered again since
//
// Uids are paths: a child of "r.2" is "r.2.<n>". Not thread-safe (one run's tasks);
// wait_for is a checkpoint, the others are not.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "trellis/sync/event.h"

namespace trellis::actor::internal {

// One registered actor.
struct TreeEntry {
  std::string name;
  std::string uid;
  std::string host;  // where its peer listener is
  std::uint16_t port = 0;
  std::uint64_t sequence = 0;  // registration order: find returns the earliest of a name
};

// The root's registry of every actor of the tree. Ordered containers only (deterministic).
class TreeRegistry {
 public:
  static constexpr std::size_t kEntriesMax = 65536;  // a bound on a misbehaving tree

  // Adds or replaces the entry of entry.uid; returns its sequence (this registration's
  // identity). Throws std::length_error past kEntriesMax.
  std::uint64_t add(TreeEntry entry);
  // Removes uid and every uid below it ("r.2" removes "r.2" and "r.2.*").
  void remove_subtree(const std::string& uid);
  // Removes uid's entry if it is still the registration `sequence` (not one made again since);
  // its subtree stays. For the root when the connection a registration came over closes.
  void remove_registration(const std::string& uid, std::uint64_t sequence);
  // The earliest registered actor named `name`, if any.
  std::optional<TreeEntry> find(const std::string& name) const;
  // find, waiting (a checkpoint) until one registers.
  TreeEntry wait_for(const std::string& name);
  std::size_t size() const noexcept { return by_uid_.size(); }

 private:
  void notify();
  // Invariant: every entry's uid is its key; sequences are unique and increasing in
  // next_sequence_.
  std::map<std::string, TreeEntry, std::less<>> by_uid_;
  std::uint64_t next_sequence_ = 0;
  std::shared_ptr<Event> changed_ = std::make_shared<Event>();
};

}  // namespace trellis::actor::internal
