// trellis/scenarios/chat/chat_scenario.h — the Trio tutorial's echo server grown into a chat
// server: one ChatServer host and three ChatClient hosts that send texts at random moments,
// each relayed to every client (the sender's copy is its echo), under server and client
// crashes and restarts (the peers of a crashed host see resets), symmetric and one-way
// partitions, slow and clogged links, with a small TCP window so the server's writes to a
// lagging client fill its socket buffer.
//
// Invariants: every message a client receives is one some client sent — same text, nothing
// corrupted or invented — and each client sees each sender's messages in increasing order,
// none twice (ChatChecker); once the faults stop, every client gets a text of its own back within
// 5 s of virtual time (liveness).
// Planted bug (option planted_bug=on): the server writes each line with a single send()
// instead of send_all, so a line that only partly fits in the socket buffer loses its tail
// and the client reads two messages run together.
#pragma once

#include "trellis/scenarios/scenario.h"

namespace trellis::scenarios {

Scenario chat_scenario();

}  // namespace trellis::scenarios
