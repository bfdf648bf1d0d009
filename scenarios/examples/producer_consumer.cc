// producer_consumer — Trio's channel tutorial example ("Using channels to pass values between
// tasks", with clone() for several producers and consumers): two producers each send three
// messages, two consumers receive them until the channel ends. Each task owns its own clone
// of a handle and closes it by exiting; once both producers are done, the consumers' loops
// end. A MockClock with autojump makes the sleeps instant; the program checks that every
// message arrived exactly once.
#include <cstdio>
#include <set>
#include <string>
#include <utility>

#include <trellis/fakes.h>
#include <trellis/trellis.h>

namespace {

using namespace std::chrono_literals;

void producer(const std::string& name, trellis::MemorySendChannel<std::string> send_channel) {
  // send_channel is this task's own clone: it closes when the function returns.
  for (int i = 0; i < 3; ++i) {
    std::string message = name + " message " + std::to_string(i);
    std::printf("%s: sending '%s'\n", name.c_str(), message.c_str());
    send_channel.send(std::move(message));
    trellis::sleep(1s);
  }
}

void consumer(const std::string& name, trellis::MemoryReceiveChannel<std::string> receive_channel,
              std::multiset<std::string>* received) {
  for (std::string& message : receive_channel) {  // until every sender has closed
    std::printf("%s: got '%s'\n", name.c_str(), message.c_str());
    received->insert(message);
  }
  std::printf("%s: channel ended\n", name.c_str());
}

}  // namespace

int main() {
  trellis::fakes::MockClock clock;
  clock.set_autojump_threshold(trellis::Duration::zero());
  std::multiset<std::string> received;
  trellis::run(
      [&] {
        auto [send_channel, receive_channel] = trellis::open_memory_channel<std::string>(0);
        trellis::open_nursery([&](trellis::Nursery& nursery) {
          nursery.start_soon(producer, "producer A", send_channel.clone());
          nursery.start_soon(producer, "producer B", send_channel.clone());
          nursery.start_soon(consumer, "consumer 1", receive_channel.clone(), &received);
          nursery.start_soon(consumer, "consumer 2", receive_channel.clone(), &received);
          // The originals are not needed any more: close them, so that the channel ends when
          // the producers' clones do.
          send_channel.close();
          receive_channel.close();
        });
      },
      {.clock = &clock});
  const bool ok = received.size() == 6 && received.count("producer A message 2") == 1 &&
                  received.count("producer B message 0") == 1;
  std::printf("%s: %zu messages received\n", ok ? "ok" : "FAILED", received.size());
  return ok ? 0 : 1;
}
