// trellis::check: the models' sequential semantics, known answers, bounds that answer
// kUnknown, P-compositionality by key, and RapidCheck properties (a history recorded from a
// sequential execution is linearizable; one with an injected stale read is not; the search
// agrees with a brute-force search over every order of small histories).
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <deque>
#include <map>
#include <numeric>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "trellis/check.h"

namespace trellis::check {
namespace {

using Kind = Operation::Kind;

Operation op(Kind kind, std::uint64_t invoked, std::optional<std::uint64_t> completed,
             std::string key = "") {
  Operation o;
  o.kind = kind;
  o.key = std::move(key);
  o.invoked = invoked;
  o.completed = completed;
  return o;
}
Operation write(std::string value, std::uint64_t i, std::optional<std::uint64_t> c,
                std::string key = "") {
  Operation o = op(Kind::kWrite, i, c, std::move(key));
  o.value = std::move(value);
  return o;
}
Operation read(std::string output, std::uint64_t i, std::optional<std::uint64_t> c,
               std::string key = "") {
  Operation o = op(Kind::kRead, i, c, std::move(key));
  o.output = std::move(output);
  return o;
}
Operation cas(std::string expected, std::string value, bool ok, std::uint64_t i,
              std::optional<std::uint64_t> c) {
  Operation o = op(Kind::kCas, i, c);
  o.expected = std::move(expected);
  o.value = std::move(value);
  o.ok = ok;
  return o;
}
Operation append(std::string value, std::uint64_t i, std::optional<std::uint64_t> c,
                 std::string key = "") {
  Operation o = op(Kind::kAppend, i, c, std::move(key));
  o.value = std::move(value);
  return o;
}
Operation enqueue(std::string value, std::uint64_t i, std::optional<std::uint64_t> c) {
  Operation o = op(Kind::kEnqueue, i, c);
  o.value = std::move(value);
  return o;
}
Operation dequeue(std::optional<std::string> item, std::uint64_t i,
                  std::optional<std::uint64_t> c) {
  Operation o = op(Kind::kDequeue, i, c);
  o.ok = item.has_value();
  o.output = item.value_or("");
  return o;
}

Verdict verdict(const std::vector<Operation>& h, const Model& m, CheckOptions o = {}) {
  return check_linearizable(h, m, o).verdict;
}

// ---- known answers -----------------------------------------------------------------------

TEST(CheckLinearizable, RegisterKnownAnswers) {
  RegisterModel m;
  EXPECT_EQ(verdict({}, m), Verdict::kLinearizable);
  EXPECT_EQ(verdict({read("", 1, 2)}, m), Verdict::kLinearizable);
  EXPECT_EQ(verdict({write("a", 1, 2), read("a", 3, 4)}, m), Verdict::kLinearizable);
  // Stale: b completed before the read was invoked.
  EXPECT_EQ(verdict({write("a", 1, 2), write("b", 3, 4), read("a", 5, 6)}, m),
            Verdict::kNotLinearizable);
  // Concurrent with the write of b: either value.
  EXPECT_EQ(verdict({write("a", 1, 2), write("b", 3, 6), read("a", 4, 5)}, m),
            Verdict::kLinearizable);
  EXPECT_EQ(verdict({write("a", 1, 2), write("b", 3, 6), read("b", 4, 5)}, m),
            Verdict::kLinearizable);
  // New then old across two sequential reads, both concurrent with the write.
  EXPECT_EQ(verdict({write("a", 1, 2), write("b", 3, 10), read("b", 4, 5), read("a", 6, 7)}, m),
            Verdict::kNotLinearizable);
  // Intervals that touch are concurrent (Porcupine's convention).
  EXPECT_EQ(verdict({write("a", 1, 3), read("", 3, 4)}, m), Verdict::kLinearizable);
  EXPECT_EQ(RegisterModel("x").initial_state(), "x");
  EXPECT_EQ(verdict({read("x", 1, 2)}, RegisterModel("x")), Verdict::kLinearizable);
}

TEST(CheckLinearizable, IndeterminateOperationsMayTakeEffectLateOrNever) {
  RegisterModel m;
  EXPECT_EQ(verdict({write("a", 1, std::nullopt), read("a", 5, 6)}, m), Verdict::kLinearizable);
  EXPECT_EQ(verdict({write("a", 1, std::nullopt), read("", 5, 6)}, m), Verdict::kLinearizable);
  // Not before it was invoked.
  EXPECT_EQ(verdict({read("a", 1, 2), write("a", 3, std::nullopt)}, m), Verdict::kNotLinearizable);
  // Once: a, then "", then a again needs two writes of a.
  EXPECT_EQ(
      verdict({write("a", 1, std::nullopt), read("a", 2, 3), write("", 4, 5), read("a", 6, 7)}, m),
      Verdict::kNotLinearizable);
  // An indeterminate read says nothing, whatever its output field holds.
  EXPECT_EQ(verdict({read("never-written", 1, std::nullopt)}, m), Verdict::kLinearizable);
}

TEST(CheckLinearizable, CasRegisterKnownAnswers) {
  CasRegisterModel m("0");
  EXPECT_EQ(verdict({cas("0", "1", true, 1, 2), read("1", 3, 4)}, m), Verdict::kLinearizable);
  EXPECT_EQ(verdict({cas("5", "1", true, 1, 2)}, m), Verdict::kNotLinearizable);
  EXPECT_EQ(verdict({cas("0", "1", false, 1, 2)}, m), Verdict::kNotLinearizable);
  EXPECT_EQ(verdict({cas("5", "1", false, 1, 2), read("0", 3, 4)}, m), Verdict::kLinearizable);
  // Two concurrent cas from 0 cannot both succeed.
  EXPECT_EQ(verdict({cas("0", "1", true, 1, 5), cas("0", "2", true, 2, 6)}, m),
            Verdict::kNotLinearizable);
  // An indeterminate cas swaps iff the value matched, or never happened.
  EXPECT_EQ(verdict({cas("0", "1", true, 1, std::nullopt), read("1", 3, 4)}, m),
            Verdict::kLinearizable);
  EXPECT_EQ(verdict({cas("7", "1", true, 1, std::nullopt), read("1", 3, 4)}, m),
            Verdict::kNotLinearizable);
  EXPECT_THROW(check_linearizable({append("x", 1, 2)}, m), std::invalid_argument);
}

TEST(CheckLinearizable, KvAppendKnownAnswers) {
  KvAppendModel m;
  EXPECT_EQ(verdict({append("x", 1, 2, "k"), append("y", 3, 4, "k"), read("xy", 5, 6, "k")}, m),
            Verdict::kLinearizable);
  EXPECT_EQ(verdict({append("x", 1, 2, "k"), append("y", 3, 4, "k"), read("yx", 5, 6, "k")}, m),
            Verdict::kNotLinearizable);
  EXPECT_EQ(verdict({append("x", 1, 6, "k"), append("y", 2, 5, "k"), read("yx", 7, 8, "k")}, m),
            Verdict::kLinearizable);
  EXPECT_EQ(verdict({write("a", 1, 2, "k"), append("b", 3, 4, "k"), read("ab", 5, 6, "k")}, m),
            Verdict::kLinearizable);
}

TEST(CheckLinearizable, QueueKnownAnswers) {
  QueueModel m;
  EXPECT_EQ(verdict({dequeue(std::nullopt, 1, 2)}, m), Verdict::kLinearizable);
  EXPECT_EQ(verdict({dequeue("a", 1, 2)}, m), Verdict::kNotLinearizable);
  EXPECT_EQ(verdict({enqueue("a", 1, 2), enqueue("b", 3, 4), dequeue("a", 5, 6), dequeue("b", 7, 8),
                     dequeue(std::nullopt, 9, 10)},
                    m),
            Verdict::kLinearizable);
  // FIFO: b was enqueued after a completed, so it cannot come out first.
  EXPECT_EQ(verdict({enqueue("a", 1, 2), enqueue("b", 3, 4), dequeue("b", 5, 6)}, m),
            Verdict::kNotLinearizable);
  EXPECT_EQ(verdict({enqueue("a", 1, 4), enqueue("b", 2, 3), dequeue("b", 5, 6)}, m),
            Verdict::kLinearizable);
  // An item comes out once.
  EXPECT_EQ(verdict({enqueue("a", 1, 2), dequeue("a", 3, 4), dequeue("a", 5, 6)}, m),
            Verdict::kNotLinearizable);
  EXPECT_EQ(m.describe_state(*m.step(*m.step("", enqueue("a", 1, 2)), enqueue("b:c", 3, 4))),
            "the queue holds ['a', 'b:c']");
}

TEST(CheckLinearizable, PartitionsByKeyAndNamesTheFailingKey) {
  KvAppendModel m;
  // On one key this would be fine (the read could follow the write of "a" on k1)...
  const std::vector<Operation> h = {write("a", 1, 2, "k1"), write("b", 3, 4, "k1"),
                                    read("b", 5, 6, "k1"), read("a", 7, 8, "k2")};
  const CheckResult r = check_linearizable(h, m);
  EXPECT_EQ(r.verdict, Verdict::kNotLinearizable);
  EXPECT_EQ(r.key, "k2");
  EXPECT_NE(r.explanation.find("key 'k2'"), std::string::npos) << r.explanation;
  EXPECT_NE(r.explanation.find("c0 [k2] read -> 'a' [7, 8]"), std::string::npos) << r.explanation;
  ASSERT_EQ(r.keys.size(), 2u);
  EXPECT_EQ(r.keys[0].key, "k1");
  EXPECT_EQ(r.keys[0].verdict, Verdict::kLinearizable);
  EXPECT_EQ(r.keys[0].operations, 3u);
}

TEST(CheckLinearizable, ExplainsTheLongestOrderAndTheBlockedOperation) {
  const CheckResult r =
      check_linearizable({write("a", 1, 2), write("b", 3, 4), read("a", 5, 6)}, RegisterModel{});
  ASSERT_EQ(r.verdict, Verdict::kNotLinearizable);
  EXPECT_NE(r.explanation.find("the register holds 'b'"), std::string::npos) << r.explanation;
  EXPECT_NE(r.explanation.find("c0 read -> 'a' [5, 6]"), std::string::npos) << r.explanation;
}

TEST(CheckLinearizable, MalformedHistoriesAreRejected) {
  EXPECT_THROW(check_linearizable({read("", 5, 5)}, RegisterModel{}), std::invalid_argument);
  EXPECT_THROW(check_linearizable({read("", 5, 4)}, RegisterModel{}), std::invalid_argument);
  EXPECT_THROW(check_linearizable({enqueue("a", 1, 2)}, RegisterModel{}), std::invalid_argument);
  EXPECT_THROW(check_linearizable({read("", 1, 2)}, QueueModel{}), std::invalid_argument);
}

// Many overlapping writes of distinct values and reads that see a value no order allows: the
// search must try a great many orders before it can say no.
std::vector<Operation> hard_history(int writers) {
  std::vector<Operation> h;
  for (int i = 0; i < writers; ++i) {
    h.push_back(write("w" + std::to_string(i), 1 + static_cast<std::uint64_t>(i), 1000));
  }
  h.push_back(read("never", 1001, 1002));
  return h;
}

TEST(CheckLinearizable, BoundsAnswerUnknownNeverAGuess) {
  const std::vector<Operation> h = hard_history(12);
  EXPECT_EQ(verdict(h, RegisterModel{}), Verdict::kNotLinearizable);
  const CheckResult by_steps = check_linearizable(h, RegisterModel{}, {.steps_max = 100});
  EXPECT_EQ(by_steps.verdict, Verdict::kUnknown);
  EXPECT_EQ(by_steps.steps, 100u);
  EXPECT_NE(by_steps.explanation.find("steps_max"), std::string::npos) << by_steps.explanation;
  const CheckResult by_states = check_linearizable(h, RegisterModel{}, {.states_max = 50});
  EXPECT_EQ(by_states.verdict, Verdict::kUnknown);
  EXPECT_NE(by_states.explanation.find("states_max"), std::string::npos);
  const CheckResult by_bytes =
      check_linearizable(h, RegisterModel{}, {.memory_bytes_max = 64 * 1024});
  EXPECT_EQ(by_bytes.verdict, Verdict::kUnknown);
  EXPECT_NE(by_bytes.explanation.find("memory_bytes_max"), std::string::npos);
  // A key that is definitely not linearizable wins over a key cut by a bound.
  std::vector<Operation> two = h;
  two.push_back(write("a", 1, 2, "z"));
  two.push_back(read("b", 3, 4, "z"));
  EXPECT_EQ(verdict(two, RegisterModel{}, {.states_max = 50}), Verdict::kNotLinearizable);
}

TEST(CheckSequential, ReplaysInOrderAndNamesTheFirstIllegalOperation) {
  KvAppendModel m;
  const std::vector<Operation> h = {append("a", 0, 1, "k"), append("b", 0, 1, "k"),
                                    read("ab", 0, 1, "k"), read("", 0, 1, "j"),
                                    read("a", 0, 1, "k")};
  const SequentialResult r = check_sequential(h, m);
  EXPECT_FALSE(r.legal);
  EXPECT_EQ(r.first_illegal, 4u);
  EXPECT_NE(r.explanation.find("the key holds 'ab'"), std::string::npos) << r.explanation;
  EXPECT_TRUE(check_sequential({h.begin(), h.begin() + 4}, m).legal);
}

TEST(HistoryFile, RoundTripsAndRejectsMalformedLines) {
  HistoryFile f;
  f.model = "cas-register";
  f.initial = "0";
  f.expect = Verdict::kNotLinearizable;
  f.operations = {cas("0", "1", false, 1, 2), write("x", 3, std::nullopt),
                  append("a b", 4, 5, "key 1")};
  const HistoryFile g = parse_history_file(format_history_file(f));
  EXPECT_EQ(g.model, f.model);
  EXPECT_EQ(g.initial, f.initial);
  EXPECT_EQ(g.expect, f.expect);
  ASSERT_EQ(g.operations.size(), 3u);
  EXPECT_EQ(describe(g.operations[0]), describe(f.operations[0]));
  EXPECT_EQ(describe(g.operations[1]), describe(f.operations[1]));
  EXPECT_EQ(describe(g.operations[2]), describe(f.operations[2]));
  EXPECT_THROW(parse_history_file("model register\n1\t2\t3\tread\n"), std::invalid_argument);
  EXPECT_THROW(parse_history_file("1\tx\t3\tread\t\t\t\t\t1\n"), std::invalid_argument);
  EXPECT_THROW(parse_history_file("1\t1\t3\tfrob\t\t\t\t\t1\n"), std::invalid_argument);
  EXPECT_THROW(parse_history_file("expect maybe\n"), std::invalid_argument);
  EXPECT_THROW(make_model("stack"), std::invalid_argument);
  EXPECT_THROW(read_history_file("/nonexistent/history.txt"), std::runtime_error);
}

// ---- properties --------------------------------------------------------------------------

// An independent sequential reference for every model: one state per key.
struct Reference {
  std::map<std::string, std::string> values;
  std::map<std::string, std::deque<std::string>> queues;

  // Applies op (taking effect now) and fills in what it returns.
  void apply(Operation& o) {
    std::string& v = values[o.key];
    std::deque<std::string>& q = queues[o.key];
    switch (o.kind) {
      case Kind::kRead:
        o.output = v;
        break;
      case Kind::kWrite:
        v = o.value;
        break;
      case Kind::kCas:
        o.ok = v == o.expected;
        if (o.ok) v = o.value;
        break;
      case Kind::kAppend:
        v += o.value;
        break;
      case Kind::kEnqueue:
        q.push_back(o.value);
        break;
      case Kind::kDequeue:
        o.ok = !q.empty();
        o.output = o.ok ? q.front() : "";
        if (o.ok) q.pop_front();
        break;
    }
  }
};

enum class ModelName { kRegister, kCasRegister, kKvAppend, kQueue };

const Model& model_of(ModelName name) {
  static const RegisterModel reg;
  static const CasRegisterModel cas_reg;
  static const KvAppendModel kv;
  static const QueueModel queue;
  switch (name) {
    case ModelName::kRegister:
      return reg;
    case ModelName::kCasRegister:
      return cas_reg;
    case ModelName::kKvAppend:
      return kv;
    case ModelName::kQueue:
      return queue;
  }
  return reg;
}

rc::Gen<Kind> kind_of(ModelName name) {
  switch (name) {
    case ModelName::kRegister:
      return rc::gen::element(Kind::kRead, Kind::kWrite);
    case ModelName::kCasRegister:
      return rc::gen::element(Kind::kRead, Kind::kWrite, Kind::kCas);
    case ModelName::kKvAppend:
      return rc::gen::element(Kind::kRead, Kind::kWrite, Kind::kAppend);
    case ModelName::kQueue:
      return rc::gen::element(Kind::kEnqueue, Kind::kDequeue);
  }
  return rc::gen::just(Kind::kRead);
}

// A history recorded from a sequential execution: operation i takes effect at time
// 1000 + 100 i, somewhere inside its interval; intervals overlap at random. Some mutating
// operations are indeterminate, and some of those never took effect at all.
std::vector<Operation> recorded_history(ModelName name, bool with_indeterminate) {
  const int count = *rc::gen::inRange(0, 40);
  const int keys = *rc::gen::inRange(1, 4);
  Reference reference;
  std::vector<Operation> h;
  for (int i = 0; i < count; ++i) {
    Operation o;
    o.kind = *kind_of(name);
    o.key = "k" + std::to_string(*rc::gen::inRange(0, keys));
    o.client = static_cast<std::uint32_t>(i);
    o.value = std::string(1, *rc::gen::inRange('a', 'e'));
    // A cas usually compares against the value it will find, so that some succeed.
    o.expected = *rc::gen::inRange(0, 3) == 0 ? "z" : reference.values[o.key];
    const std::uint64_t at = 1000 + 100 * static_cast<std::uint64_t>(i);
    o.invoked = at - *rc::gen::inRange<std::uint64_t>(1, 300);
    o.completed = at + *rc::gen::inRange<std::uint64_t>(1, 300);
    const bool mutates = o.kind != Kind::kRead;
    if (with_indeterminate && mutates && *rc::gen::inRange(0, 6) == 0) {
      o.completed.reset();
      if (*rc::gen::arbitrary<bool>()) {
        h.push_back(o);  // it never took effect
        continue;
      }
    }
    reference.apply(o);
    h.push_back(o);
  }
  return h;
}

rc::Gen<ModelName> any_model() {
  return rc::gen::element(ModelName::kRegister, ModelName::kCasRegister, ModelName::kKvAppend,
                          ModelName::kQueue);
}

RC_GTEST_PROP(CheckLinearizableProperty, AHistoryRecordedFromASequentialExecutionIsLinearizable,
              ()) {
  const ModelName name = *any_model();
  const std::vector<Operation> h = recorded_history(name, /*with_indeterminate=*/true);
  const CheckResult r = check_linearizable(h, model_of(name));
  RC_ASSERT(r.verdict == Verdict::kLinearizable);
}

RC_GTEST_PROP(CheckLinearizableProperty, AnInjectedStaleReadIsNotLinearizable, ()) {
  const ModelName name = *rc::gen::element(ModelName::kRegister, ModelName::kCasRegister,
                                           ModelName::kKvAppend, ModelName::kQueue);
  std::vector<Operation> h = recorded_history(name, /*with_indeterminate=*/false);
  std::uint64_t end = 0;
  for (const Operation& o : h) end = std::max(end, *o.completed);
  const std::string key = h.empty() ? "k0" : h[*rc::gen::inRange<std::size_t>(0, h.size())].key;
  // After everything completed, a fresh write (or enqueue) completes; a later read that
  // returns anything else (dequeue that says empty) is stale.
  if (name == ModelName::kQueue) {
    Operation e = enqueue("fresh", end + 1, end + 2);
    e.key = key;
    // The queue holds at least "fresh"; a dequeue that reports empty is stale.
    Operation d = dequeue(std::nullopt, end + 3, end + 4);
    d.key = key;
    h.push_back(e);
    h.push_back(d);
  } else {
    h.push_back(write("fresh", end + 1, end + 2, key));
    std::vector<std::string> earlier = {""};
    for (const Operation& o : h) {
      if (o.key == key && o.kind == Kind::kRead) earlier.push_back(o.output);
    }
    h.push_back(read(*rc::gen::elementOf(earlier), end + 3, end + 4, key));
  }
  const CheckResult r = check_linearizable(h, model_of(name));
  RC_ASSERT(r.verdict == Verdict::kNotLinearizable);
  RC_ASSERT(r.key == key);
}

// Every order of the operations that respects real time, each indeterminate one placed
// anywhere after its invocation or left out; does one replay legally?
bool brute_force(const std::vector<Operation>& h, const Model& m) {
  const std::size_t n = h.size();
  for (std::uint32_t included = 0; included < (1u << n); ++included) {
    bool skip = false;
    for (std::size_t i = 0; i < n; ++i) {
      if (!(included >> i & 1) && h[i].completed) skip = true;
    }
    if (skip) continue;
    std::vector<std::size_t> order;
    for (std::size_t i = 0; i < n; ++i) {
      if (included >> i & 1) order.push_back(i);
    }
    do {
      bool ok = true;
      for (std::size_t a = 0; a < order.size() && ok; ++a) {
        for (std::size_t b = a + 1; b < order.size() && ok; ++b) {
          // b is placed after a, so b must not have completed before a was invoked.
          const Operation& first = h[order[a]];
          const Operation& later = h[order[b]];
          if (later.completed && *later.completed < first.invoked) ok = false;
        }
      }
      std::map<std::string, std::string> states;
      for (std::size_t i = 0; i < order.size() && ok; ++i) {
        const Operation& o = h[order[i]];
        auto it = states.try_emplace(o.key, m.initial_state()).first;
        std::optional<std::string> next = m.step(it->second, o);
        if (!next) {
          ok = false;
        } else {
          it->second = *next;
        }
      }
      if (ok) return true;
    } while (std::next_permutation(order.begin(), order.end()));
  }
  return false;
}

RC_GTEST_PROP(CheckLinearizableProperty, AgreesWithABruteForceSearchOnSmallHistories, ()) {
  const ModelName name = *any_model();
  const int count = *rc::gen::inRange(0, 7);
  std::vector<Operation> h;
  for (int i = 0; i < count; ++i) {
    Operation o;
    o.kind = *kind_of(name);
    o.key = *rc::gen::element<std::string>("", "", "j");
    o.client = static_cast<std::uint32_t>(i);
    o.value = *rc::gen::element<std::string>("a", "b");
    o.expected = *rc::gen::element<std::string>("", "a", "b");
    o.output = *rc::gen::element<std::string>("", "a", "b", "ab");
    o.ok = *rc::gen::arbitrary<bool>();
    o.invoked = *rc::gen::inRange<std::uint64_t>(0, 10);
    if (*rc::gen::inRange(0, 5) != 0) {
      o.completed = o.invoked + *rc::gen::inRange<std::uint64_t>(1, 6);
    }
    h.push_back(o);
  }
  const Model& m = model_of(name);
  RC_ASSERT((check_linearizable(h, m).verdict == Verdict::kLinearizable) == brute_force(h, m));
}

RC_GTEST_PROP(CheckLinearizableProperty, TinyBoundsAnswerUnknownOrTheTrueVerdict, ()) {
  const ModelName name = *any_model();
  std::vector<Operation> h = recorded_history(name, /*with_indeterminate=*/true);
  if (!h.empty() && *rc::gen::arbitrary<bool>()) {
    // Sometimes corrupt one output so that both verdicts occur.
    Operation& o = h[*rc::gen::inRange<std::size_t>(0, h.size())];
    o.output += "!";
    o.ok = !o.ok;
  }
  const Model& m = model_of(name);
  const Verdict truth = verdict(h, m);
  RC_ASSERT(truth != Verdict::kUnknown);
  const CheckOptions tiny{.steps_max = *rc::gen::inRange<std::size_t>(1, 200),
                          .states_max = *rc::gen::inRange<std::size_t>(1, 100),
                          .memory_bytes_max = *rc::gen::inRange<std::size_t>(1, 200'000)};
  const Verdict bounded = verdict(h, m, tiny);
  RC_ASSERT(bounded == Verdict::kUnknown || bounded == truth);
}

}  // namespace
}  // namespace trellis::check
