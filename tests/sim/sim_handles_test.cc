// Every simulated handle (socket, pipe end, open file) belongs to the host that made it, and
// every facet checks a call in one order (sim/internal/world_view.h): the caller must be a
// host's task, its host up and of the current incarnation (else ENETDOWN for sockets and
// pipes, EIO for disks), the handle the caller's (else EBADF). A crash releases the host's
// handles.
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <utility>

#include "trellis/core/lowlevel.h"
#include "trellis/core/os_error.h"
#include "trellis/sim.h"

namespace trellis::sim {
namespace {

using namespace std::chrono_literals;

std::pair<IoHandle, IoHandle> make_pipe() {
  IoResult<std::pair<IoHandle, IoHandle>> made = lowlevel::current_backend().processes()->pipe();
  EXPECT_EQ(made.error, 0);
  return made.value;
}

int wait_error(IoHandle handle) {
  try {
    lowlevel::current_io().wait_readable(handle);
  } catch (const OSError& e) {
    return e.errno_value();
  }
  return 0;
}

TEST(SimHandles, APipeIsRefusedToAnotherHost) {
  World world(Config{.seed = 1});
  Host& a = world.add_host("a", "10.0.0.1");
  Host& b = world.add_host("b", "10.0.0.2");
  std::pair<IoHandle, IoHandle> pipe;
  bool b_checked = false;
  a.start([&] { pipe = make_pipe(); });
  b.start([&] {
    sleep(1ms);
    IoFacet& io = lowlevel::current_io();
    char byte = 'x';
    EXPECT_EQ(io.write(pipe.second, &byte, 1).error, EBADF);
    EXPECT_EQ(io.read(pipe.first, &byte, 1).error, EBADF);
    EXPECT_EQ(wait_error(pipe.first), EBADF);
    EXPECT_EQ(io.close(pipe.first), EBADF);
    b_checked = true;
  });
  world.run([] { sleep(10ms); });
  EXPECT_TRUE(b_checked);
}

TEST(SimHandles, ACrashedIncarnationIsRefusedAndItsHandlesAreReleased) {
  World world(Config{.seed = 2});
  Host& host = world.add_host("h", "10.0.0.1");
  std::pair<IoHandle, IoHandle> pipe;
  IoHandle socket;
  IoHandle file;
  int incarnation = 0;
  bool stale_checked = false;
  bool restarted_checked = false;
  host.start([&] {
    char byte = 'x';
    IoFacet& io = lowlevel::current_io();
    if (++incarnation == 1) {
      pipe = make_pipe();
      socket = lowlevel::current_network().socket(AF_INET, SOCK_STREAM, 0).value;
      file = lowlevel::current_file_system().open("/f", O_CREAT | O_RDWR, 0644).value;
      // Shielded, this task outlives the crash: from then on it is a stale caller.
      CancelScope shielded;
      shielded.set_shield(true);
      shielded.run([&] {
        sleep(10ms);
        EXPECT_EQ(io.write(pipe.second, &byte, 1).error, ENETDOWN);
        EXPECT_EQ(wait_error(pipe.first), ENETDOWN);
        EXPECT_EQ(lowlevel::current_network().send(socket, &byte, 1).error, ENETDOWN);
        EXPECT_EQ(wait_error(socket), ENETDOWN);
        EXPECT_EQ(lowlevel::current_file_system().pwrite(file, &byte, 1, 0).error, EIO);
        EXPECT_EQ(lowlevel::current_file_system().close_file(file), EIO);
        stale_checked = true;
      });
      return;
    }
    // The next incarnation: the crashed one's handles are gone.
    EXPECT_EQ(io.read(pipe.first, &byte, 1).error, EBADF);
    EXPECT_EQ(lowlevel::current_network().send(socket, &byte, 1).error, EBADF);
    EXPECT_EQ(lowlevel::current_file_system().pwrite(file, &byte, 1, 0).error, EBADF);
    EXPECT_EQ(lowlevel::current_backend().statistics().tasks_waiting_io, 0u);
    restarted_checked = true;
  });
  world.run([&] {
    sleep(2ms);
    host.crash();
    sleep(20ms);
    host.restart();
    sleep(20ms);
  });
  EXPECT_TRUE(stale_checked);
  EXPECT_TRUE(restarted_checked);
}

}  // namespace
}  // namespace trellis::sim
