// trellis/pipeline.h — stream-processing pipelines (Python's Slurry) on Trellis tasks and
// memory channels: sources, sections and taps welded into one nursery, deterministic in the
// simulator. Link trellis::pipeline. Start with trellis/pipeline/pipeline.h; the sections are
// in refiners.h (Map, Filter, Skip, SkipWhile, Enumerate, ThreadSection), combiners.h (Chain,
// Merge, Zip, ZipLatest), timed.h (Repeat, Metronome, Delay, RateLimit, Group, Window) and
// section.h (user sections, Sequence).
#pragma once

#include "trellis/pipeline/combiners.h"
#include "trellis/pipeline/pipeline.h"
#include "trellis/pipeline/refiners.h"
#include "trellis/pipeline/section.h"
#include "trellis/pipeline/timed.h"
