// Property tests of nurseries and cancel scopes under a MockClock.
//
// Goal: check the core's structured-concurrency guarantees on programs nobody wrote by hand.
// Method: RapidCheck generates a random tree of tasks. Each task sleeps, then either raises
// an error or opens a nursery holding its children and sleeps again; any task may wrap its
// body in move_on_after(c). A small model computes, from the tree alone, the virtual time at
// which every task must end: a deadline cancels the whole subtree below it, and the first
// error (at a half-second, so it never ties with a whole-second deadline) cancels the entire
// tree at that instant. The run uses a MockClock with autojump, so times are exact, and a
// seeded random batch order, so the interleaving varies but every failure replays.
// Checked: every task ends exactly when the model says; no task outlives its parent's
// nursery; every error raised reaches run()'s caller exactly once.
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <limits>
#include <map>
#include <set>
#include <vector>

#include "trellis/fakes.h"
#include "trellis/trellis.h"

namespace trellis {
namespace {

using namespace std::chrono_literals;

constexpr int kDepthMax = 3;
constexpr int kChildrenMax = 3;

struct Node {
  int id = 0;
  int sleep_before_s = 0;
  bool raises = false;
  int cancel_after_s = -1;  // -1: no move_on_after around the body
  int sleep_after_s = 0;
  std::vector<Node> children;
};

struct RaisedError : std::runtime_error {
  explicit RaisedError(int node_id)
      : std::runtime_error("node " + std::to_string(node_id)), id(node_id) {}
  int id;
};

Node generate_tree(int depth, int& next_id) {
  Node node;
  node.id = next_id++;
  node.sleep_before_s = *rc::gen::inRange(0, 4);
  node.raises = depth > 0 && *rc::gen::weightedElement<bool>({{1, true}, {5, false}});
  node.cancel_after_s = *rc::gen::weightedElement<int>({{3, -1}, {1, 1}, {1, 3}, {1, 6}});
  node.sleep_after_s = *rc::gen::inRange(0, 3);
  if (!node.raises && depth < kDepthMax) {
    const int children =
        *rc::gen::weightedElement<int>({{1, 0}, {2, 1}, {2, 2}, {2, kChildrenMax}});
    for (int i = 0; i < children; ++i) node.children.push_back(generate_tree(depth + 1, next_id));
  }
  return node;
}

// Virtual times in milliseconds.
constexpr std::int64_t kNever = std::numeric_limits<std::int64_t>::max();

struct Model {
  std::map<int, std::int64_t> natural_end;  // ends ignoring errors, for tasks that start
  std::map<int, std::int64_t> start;
  std::int64_t first_error = kNever;
};

void model_node(const Node& node, std::int64_t start, std::int64_t inherited_deadline,
                Model& model) {
  model.start[node.id] = start;
  std::int64_t deadline = inherited_deadline;
  if (node.cancel_after_s >= 0) deadline = std::min(deadline, start + node.cancel_after_s * 1000);
  if (node.raises) {
    const std::int64_t raise_at = start + node.sleep_before_s * 1000 + 500;
    if (raise_at < deadline) model.first_error = std::min(model.first_error, raise_at);
    model.natural_end[node.id] = std::min(raise_at, deadline);
    return;
  }
  const std::int64_t nursery_open = start + node.sleep_before_s * 1000;
  if (nursery_open >= deadline) {
    model.natural_end[node.id] = deadline;
    return;
  }
  std::int64_t nursery_exit = nursery_open;
  for (const Node& child : node.children) {
    model_node(child, nursery_open, deadline, model);
    nursery_exit = std::max(nursery_exit, model.natural_end[child.id]);
  }
  model.natural_end[node.id] = std::min(nursery_exit + node.sleep_after_s * 1000, deadline);
}

struct Observed {
  std::map<int, std::int64_t> end;
  std::map<int, std::uint64_t> end_sequence;
  std::map<int, std::uint64_t> nursery_exit_sequence;
  std::vector<int> raised;
  std::uint64_t sequence = 0;
};

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(current_time().time_since_epoch())
      .count();
}

void run_node(const Node& node, Observed& observed) {
  struct RecordEnd {
    const Node& node;
    Observed& observed;
    ~RecordEnd() {
      observed.end[node.id] = now_ms();
      observed.end_sequence[node.id] = observed.sequence++;
    }
  } record{node, observed};
  auto body = [&] {
    if (node.raises) {
      sleep(std::chrono::seconds(node.sleep_before_s) + 500ms);
      observed.raised.push_back(node.id);
      throw RaisedError(node.id);
    }
    sleep(std::chrono::seconds(node.sleep_before_s));
    try {
      open_nursery([&](Nursery& nursery) {
        for (const Node& child : node.children) {
          nursery.start_soon([&child, &observed] { run_node(child, observed); });
        }
      });
    } catch (...) {
      observed.nursery_exit_sequence[node.id] = observed.sequence++;
      throw;
    }
    observed.nursery_exit_sequence[node.id] = observed.sequence++;
    sleep(std::chrono::seconds(node.sleep_after_s));
  };
  if (node.cancel_after_s >= 0) {
    move_on_after(std::chrono::seconds(node.cancel_after_s), body);
  } else {
    body();
  }
}

void collect_leaves(const std::exception_ptr& error, std::vector<int>& ids, int& others) {
  try {
    std::rethrow_exception(error);
  } catch (const ExceptionGroup& group) {
    for (const std::exception_ptr& member : group.exceptions()) {
      collect_leaves(member, ids, others);
    }
  } catch (const RaisedError& raised) {
    ids.push_back(raised.id);
  } catch (...) {
    ++others;
  }
}

void check_parent_outlives_children(const Node& node, const Observed& observed) {
  for (const Node& child : node.children) {
    if (!observed.end_sequence.count(child.id)) continue;
    RC_ASSERT(observed.nursery_exit_sequence.count(node.id) == 1u);
    RC_ASSERT(observed.end_sequence.at(child.id) < observed.nursery_exit_sequence.at(node.id));
    check_parent_outlives_children(child, observed);
  }
}

RC_GTEST_PROP(NurseryProperty, TasksEndWhenTheModelSaysAndErrorsArriveOnce, ()) {
  int next_id = 0;
  const Node root = generate_tree(0, next_id);
  const auto seed = *rc::gen::arbitrary<std::uint64_t>();

  Model model;
  model_node(root, 0, kNever, model);

  fakes::MockClock clock;
  clock.set_autojump_threshold(Duration::zero());
  Observed observed;
  std::exception_ptr outcome;
  try {
    run([&] { run_node(root, observed); }, {.clock = &clock, .schedule_seed = seed});
  } catch (...) {
    outcome = std::current_exception();
  }

  // Which tasks started: those the model starts before the first error.
  for (const auto& [id, start] : model.start) {
    const bool started = start < model.first_error;
    RC_ASSERT(observed.end.count(id) == (started ? 1u : 0u));
    if (!started) continue;
    const std::int64_t expected = std::min(model.natural_end.at(id), model.first_error);
    RC_ASSERT(observed.end.at(id) == expected);
  }
  check_parent_outlives_children(root, observed);

  // Errors: every raised error arrives exactly once; nothing else arrives.
  if (model.first_error == kNever) {
    RC_ASSERT(outcome == nullptr);
    RC_ASSERT(observed.raised.empty());
  } else {
    RC_ASSERT(outcome != nullptr);
    RC_ASSERT(!observed.raised.empty());
    std::vector<int> delivered;
    int others = 0;
    collect_leaves(outcome, delivered, others);
    RC_ASSERT(others == 0);
    std::vector<int> raised = observed.raised;
    std::sort(raised.begin(), raised.end());
    std::sort(delivered.begin(), delivered.end());
    RC_ASSERT(delivered == raised);
  }
}

}  // namespace
}  // namespace trellis
