// trellis/sim/buggify.h — fault points in production code (FoundationDB's BUGGIFY).
//
//   if (trellis::sim::buggify("wal.short_write")) n = n / 2;   // exercise the partial path
//
// Outside a simulation buggify() is always false and costs one thread-local read. Inside a
// World, each point is enabled or not per seed (decided from the seed and the point's name,
// so enabling does not depend on evaluation order), and an enabled point fires with its
// probability each time it is evaluated (from the world's seeded generator). A seed thus
// explores a few fault points hard instead of all of them faintly (swarm testing).
#pragma once

#include <string_view>

namespace trellis::sim {

// True only in a simulation whose seed enabled `point`, with the world's default firing
// probability (Config::buggify_fire_ppm).
bool buggify(std::string_view point);
// The same with this point's own firing probability in [0, 1] (clamped).
bool buggify(std::string_view point, double probability);

}  // namespace trellis::sim
