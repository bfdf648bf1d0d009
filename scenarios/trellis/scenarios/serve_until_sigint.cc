#include "trellis/scenarios/serve_until_sigint.h"

namespace trellis::scenarios {

void write_line(std::FILE* out, const std::string& line) {
  std::fprintf(out, "%s\n", line.c_str());
  std::fflush(out);
}

int run_until_sigint(std::FILE* out, const std::function<void()>& main) {
  try {
    trellis::run([&] { main(); });
  } catch (const KeyboardInterrupt&) {
    write_line(out, "stopped by SIGINT");
  }
  return 0;
}

}  // namespace trellis::scenarios
