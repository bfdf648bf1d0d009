// The WAL scenario's invariant (scenarios/trellis/scenarios/wal/wal_scenario.h: after a
// crash and restart, the recovered records are exactly a prefix of the appended sequence and
// hold every acknowledged record) stated as a history for the general checkers: appends of a
// single appender on one key of a KvAppendModel, acknowledged ones completed, the one in
// flight at the crash indeterminate, and recovery as one read of the whole log. The scenario
// keeps its own direct check; this shows the general checkers decide the same property.
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <string>
#include <vector>

#include "trellis/check.h"

namespace trellis::check {
namespace {

std::string record(int i) {
  return "record-" + std::to_string(i) + ";";
}

// `appended` records were appended one after another; the first `acknowledged` of them were
// acknowledged, the next one (if any) was in flight at the crash; recovery read `recovered`.
std::vector<Operation> wal_history(int acknowledged, bool in_flight, const std::string& recovered) {
  std::vector<Operation> h;
  std::uint64_t t = 0;
  for (int i = 0; i < acknowledged + (in_flight ? 1 : 0); ++i) {
    Operation a;
    a.kind = Operation::Kind::kAppend;
    a.key = "wal";
    a.value = record(i);
    a.invoked = t++;
    if (i < acknowledged) a.completed = t++;
    h.push_back(a);
  }
  Operation read;
  read.kind = Operation::Kind::kRead;
  read.key = "wal";
  read.output = recovered;
  read.invoked = t + 1;
  read.completed = t + 2;
  read.client = 1;
  h.push_back(read);
  return h;
}

std::string records(int from, int to) {
  std::string out;
  for (int i = from; i < to; ++i) out += record(i);
  return out;
}

TEST(WalSpecification, RecoveryKeepsEveryAcknowledgedRecordAndNothingElse) {
  KvAppendModel m;
  EXPECT_TRUE(check_linearizable(wal_history(3, false, records(0, 3)), m).linearizable());
  // The record in flight at the crash may or may not survive.
  EXPECT_TRUE(check_linearizable(wal_history(3, true, records(0, 3)), m).linearizable());
  EXPECT_TRUE(check_linearizable(wal_history(3, true, records(0, 4)), m).linearizable());
  // An acknowledged record lost (the planted bug: acknowledge before fsync).
  EXPECT_EQ(check_linearizable(wal_history(3, true, records(0, 2)), m).verdict,
            Verdict::kNotLinearizable);
  // A torn record read as valid, a gap, records out of order.
  EXPECT_FALSE(check_linearizable(wal_history(2, true, records(0, 2) + "reco"), m).linearizable());
  EXPECT_FALSE(check_linearizable(wal_history(3, false, record(0) + record(2) + record(1)), m)
                   .linearizable());
}

RC_GTEST_PROP(WalSpecificationProperty, AcceptsExactlyTheDurablePrefixes, ()) {
  const int acknowledged = *rc::gen::inRange(0, 20);
  const bool in_flight = *rc::gen::arbitrary<bool>();
  const int appended = acknowledged + (in_flight ? 1 : 0);
  const int from = *rc::gen::inRange(0, 2);  // 1: the first record was lost
  const int to = *rc::gen::inRange(0, appended + 1);
  const bool legal = from == 0 && to >= acknowledged;
  const CheckResult r =
      check_linearizable(wal_history(acknowledged, in_flight, records(from, to)), KvAppendModel{});
  RC_ASSERT(r.linearizable() == (legal || (from == 1 && to <= from && acknowledged == 0)));
}

}  // namespace
}  // namespace trellis::check
