// Must not compile: a run_sync argument whose type has no msgpack adaptor (issue 18: "a type
// without one is a compile error, not a runtime one"). Built only by the ctest
// to_process_no_adaptor_is_a_compile_error, which expects msgpack's error; with
// -DTRELLIS_WITH_ADAPTOR the same file compiles (the control, built with the tests).
#include "trellis/to_process.h"

struct Plain {
  int x = 0;
#if defined(TRELLIS_WITH_ADAPTOR)
  MSGPACK_DEFINE(x);
#endif
};

int call_with_plain() {
  return trellis::to_process::run_sync<int>("f", Plain{});
}
