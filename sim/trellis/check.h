// trellis/check.h — checkers for histories recorded in tests and simulations: linearizability
// against a sequential model (register, compare-and-set register, key-value map with append,
// FIFO queue), P-compositional by key and bounded, and a sequential-specification check.
//
//   #include <trellis/check.h>
//   using namespace trellis::check;
//   CheckResult r = check_linearizable(history, CasRegisterModel{});
//   EXPECT_EQ(r.verdict, Verdict::kLinearizable) << r.explanation;
//
// Namespace trellis::check; part of the trellis::sim target. Pure computation: no run loop,
// no World needed.
#pragma once

#include "trellis/check/history_file.h"
#include "trellis/check/linearizability.h"
#include "trellis/check/model.h"
#include "trellis/check/operation.h"
