// trellis/sim.h — the deterministic simulator.
//
// sim/step_policy.h      StepPolicy: one task per step, every choice recorded
// sim/fifo_policy.h      FifoPolicy: wake-up order, no randomness
// sim/random_policy.h    RandomPolicy: uniformly random choices from a seed
// sim/pct_policy.h       PctPolicy: probabilistic concurrency testing (priorities, depth d)
// sim/program.h          Program, ProgramIo: fake programs for open_process / run_process
// sim/decision_policy.h  DecisionPolicy: choices from a vector (replay, RapidCheck, fuzzing)
// sim/trace.h            Trace: events with a running hash (determinism self-check)
// sim/world.h            World, Host, Config: the simulated cluster
// sim/buggify.h          buggify(): fault points in production code
// sim/replay_file.h      ReplayFile: a run's seed, config and decisions as text
// sim/harness.h          run_simulation, shrink, check_determinism, shard_seeds
// sim/shard.h            Shard, SeedSlice: one slice of a sweep (--shard, GTEST_*, Job index)
// sim/sweep_report.h     a sweep's JUnit report, parsed back and merged across shards
// sim/exhaustive_policy.h ExhaustivePolicy: one run of a systematic exploration
// sim/explore.h          explore_exhaustively: every schedule within a preemption bound,
//                        or one per Mazurkiewicz trace (Reduction::kDpor)
// sim/shared.h           Shared<T>, SharedObject: shared state declared for the reduction
// sim/policy_spec.h      "pct:depth=3,steps=200", "exhaustive:preemptions=2": policies by name
// sim/gtest.h            TRELLIS_SIM_TEST (include it yourself: it needs GoogleTest)
// sim/network_config.h   NetworkConfig: the simulated network's fault model and knobs
// sim/disk_config.h      DiskConfig: the simulated disks' fault model and knobs
// sim/fault_config.h     swarm testing (FaultKind) and cancellation as a fault
// sim/fault_plan.h       FaultPlan: faults as data, injected by the world, in replay files
// sim/liveness.h         require_progress: progress within T after faults heal
// sim/rapidcheck.h       generators of schedules and fault plans (include it yourself: it
//                        needs RapidCheck)
#pragma once

#include "trellis/fakes.h"
#include "trellis/sim/buggify.h"
#include "trellis/sim/decision_policy.h"
#include "trellis/sim/exhaustive_policy.h"
#include "trellis/sim/explore.h"
#include "trellis/sim/fault_config.h"
#include "trellis/sim/fault_plan.h"
#include "trellis/sim/fifo_policy.h"
#include "trellis/sim/harness.h"
#include "trellis/sim/liveness.h"
#include "trellis/sim/pct_policy.h"
#include "trellis/sim/policy_spec.h"
#include "trellis/sim/program.h"
#include "trellis/sim/random_policy.h"
#include "trellis/sim/replay_file.h"
#include "trellis/sim/shard.h"
#include "trellis/sim/shared.h"
#include "trellis/sim/step_policy.h"
#include "trellis/sim/sweep_report.h"
#include "trellis/sim/trace.h"
#include "trellis/sim/world.h"
#include "trellis/trellis.h"
