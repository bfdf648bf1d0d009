// trellis/sim/program.h — fake programs: what open_process / run_process start inside the
// simulator.
//
//   host.install_program("upper", [](trellis::sim::ProgramIo& io) {
//     std::string text = read_all(io.in);
//     io.out.send_all(as_bytes(to_upper(text)));
//     return 0;                                   // the return code
//   });
//   ... in a task of that host:
//   auto done = trellis::run_process({"upper"}, {.input = "abc", .capture_stdout = true});
//
// A program runs as a task of its host (its network and file calls are the host's), with its
// standard streams connected as the spawner asked (pipes; inherited or /dev/null streams read
// end of file and swallow writes). It ends when its function returns (that value is the
// return code), throws (return code -SIGABRT, as an uncaught C++ exception aborts), or is
// signalled: every signal but 0 terminates a fake program — it is cancelled, and its return
// code is minus the signal (it may clean up in its unwinding, at no virtual cost beyond its
// own checkpoints). A host crash kills its programs. argv[0] names the program: a name not
// installed on the host is ENOENT, as for a missing binary.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "trellis/io/stream.h"

namespace trellis::sim {

struct ProgramIo {
  std::vector<std::string> argv;
  std::vector<std::string> env;  // "NAME=value" entries, as given (empty if inherited)
  std::string cwd;               // as given ("" if inherited)
  ReceiveStream& in;
  SendStream& out;
  SendStream& err;
};

using Program = std::function<int(ProgramIo& io)>;

}  // namespace trellis::sim
