// trellis/fakes.h — test doubles usable in any unit test, no simulated world needed.
//
// fakes/mock_clock.h             MockClock: virtual time with rate, jump and autojump
// fakes/sequencer.h              Sequencer: run blocks of different tasks in a fixed order
// fakes/checkpoints.h            assert_checkpoints / assert_no_checkpoints
// fakes/wait_all_tasks_blocked.h wait until every other task is blocked
// fakes/memory_streams.h         memory_stream_pair, lockstep_stream_pair, Memory*Stream
// fakes/check_streams.h          check_{one_way,two_way,half_closeable}_stream
#pragma once

#include "trellis/fakes/callback_host.h"
#include "trellis/fakes/check_streams.h"
#include "trellis/fakes/checkpoints.h"
#include "trellis/fakes/memory_streams.h"
#include "trellis/fakes/mock_clock.h"
#include "trellis/fakes/sequencer.h"
#include "trellis/fakes/wait_all_tasks_blocked.h"
#include "trellis/trellis.h"
