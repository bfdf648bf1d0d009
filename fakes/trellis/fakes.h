// trellis/fakes.h — test doubles usable in any unit test, no simulated world needed.
//
// fakes/mock_clock.h             MockClock: virtual time with rate, jump and autojump
// fakes/wait_all_tasks_blocked.h wait until every other task is blocked
#pragma once

#include "trellis/fakes/mock_clock.h"
#include "trellis/fakes/wait_all_tasks_blocked.h"
#include "trellis/trellis.h"
