// Property tests of memory channels: many producers and consumers, random capacity, random
// timing, random cancellation.
//
// Goal: the channel's delivery guarantees on programs nobody wrote by hand. Method: RapidCheck
// picks P producers and C consumers over a channel of random capacity (0, small, or
// kUnbounded). Each producer owns its own clone of the send handle and sends its messages
// (producer, sequence number) in order, sleeping a random small time between sends; some
// sends run under a short timeout and are retried until one completes, so cancellation races
// with hand-offs. Each consumer owns a clone of the receive handle and receives until
// EndOfChannel, also with random sleeps and random timeouts around receive(). The run uses a
// MockClock with autojump (virtual time, exact and instant) and a seeded TrioPolicy, so the
// interleaving varies with the seed and every failure replays.
// Checked: every message is received exactly once (a cancelled send delivered nothing, a
// completed one delivered its value once); each consumer sees each producer's messages in
// sending order; once every producer has closed its handle every consumer ends with
// EndOfChannel and the run returns (no deadlock); the final statistics are all zero.
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <map>
#include <vector>

#include "trellis/fakes.h"
#include "trellis/trellis.h"

namespace trellis {
namespace {

using namespace std::chrono_literals;

constexpr int kProducersMax = 4;
constexpr int kConsumersMax = 4;
constexpr int kMessagesPerProducerMax = 25;
constexpr int kSleepMsMax = 3;

struct Message {
  int producer = 0;
  int sequence = 0;
};

struct Plan {
  std::size_t capacity = 0;
  // Per producer: for each message, the sleep before sending it (ms, 0: none) and the
  // timeout around each attempt to send it (ms, -1: none; never 0, which would cancel every
  // attempt at once).
  std::vector<std::vector<std::pair<int, int>>> producers;
  // Per consumer: a cycle of (sleep before receive ms, timeout around receive ms or -1).
  std::vector<std::vector<std::pair<int, int>>> consumers;
};

std::pair<int, int> generate_step() {
  const int sleep_ms = *rc::gen::weightedElement<int>({{3, 0}, {1, 1}, {1, kSleepMsMax}});
  const int timeout_ms = *rc::gen::weightedElement<int>({{4, -1}, {1, 1}, {1, 2}});
  return {sleep_ms, timeout_ms};
}

Plan generate_plan() {
  Plan plan;
  plan.capacity =
      *rc::gen::weightedElement<std::size_t>({{3, 0}, {2, 1}, {2, 2}, {1, 5}, {2, kUnbounded}});
  const int producers = *rc::gen::inRange(1, kProducersMax + 1);
  const int consumers = *rc::gen::inRange(1, kConsumersMax + 1);
  for (int p = 0; p < producers; ++p) {
    const int messages = *rc::gen::inRange(0, kMessagesPerProducerMax + 1);
    std::vector<std::pair<int, int>> steps;
    for (int m = 0; m < messages; ++m) steps.push_back(generate_step());
    plan.producers.push_back(std::move(steps));
  }
  for (int c = 0; c < consumers; ++c) {
    const int cycle = *rc::gen::inRange(1, 5);
    std::vector<std::pair<int, int>> steps;
    for (int i = 0; i < cycle; ++i) steps.push_back(generate_step());
    plan.consumers.push_back(std::move(steps));
  }
  return plan;
}

// Runs `attempt` under a timeout of `timeout_ms` (-1: none) until it completes; returns how
// many attempts were cancelled.
template <class F>
int retry_until_done(int timeout_ms, F attempt) {
  if (timeout_ms < 0) {
    attempt();
    return 0;
  }
  int cancelled = 0;
  while (!move_on_after(std::chrono::milliseconds(timeout_ms), attempt)) ++cancelled;
  return cancelled;
}

struct Observed {
  std::vector<std::vector<Message>> received;  // per consumer, in receive order
  std::vector<bool> ended;                     // per consumer: saw EndOfChannel
  int cancelled_sends = 0;
  int cancelled_receives = 0;
  MemoryChannelStatistics final_statistics;
};

void producer(MemorySendChannel<Message> channel, int id,
              const std::vector<std::pair<int, int>>& steps, Observed& observed) {
  // `channel` is this task's own clone: it closes when the task returns.
  for (int sequence = 0; sequence < static_cast<int>(steps.size()); ++sequence) {
    const auto [sleep_ms, timeout_ms] = steps[static_cast<std::size_t>(sequence)];
    if (sleep_ms > 0) sleep(std::chrono::milliseconds(sleep_ms));
    observed.cancelled_sends += retry_until_done(timeout_ms, [&] {
      channel.send(Message{id, sequence});
    });
  }
}

void consumer(MemoryReceiveChannel<Message> channel, int id,
              const std::vector<std::pair<int, int>>& steps, Observed& observed) {
  for (std::size_t step = 0;; ++step) {
    const auto [sleep_ms, timeout_ms] = steps[step % steps.size()];
    if (sleep_ms > 0) sleep(std::chrono::milliseconds(sleep_ms));
    try {
      observed.cancelled_receives += retry_until_done(timeout_ms, [&] {
        observed.received[static_cast<std::size_t>(id)].push_back(channel.receive());
      });
    } catch (const EndOfChannel&) {
      observed.ended[static_cast<std::size_t>(id)] = true;
      return;
    }
  }
}

RC_GTEST_PROP(MemoryChannelProperty, EveryMessageArrivesOnceInOrderAndTheRunEnds, ()) {
  const Plan plan = generate_plan();
  const auto seed = *rc::gen::arbitrary<std::uint64_t>();
  RC_TAG(plan.capacity == 0 ? "rendezvous" : plan.capacity == kUnbounded ? "unbounded" : "sized");

  fakes::MockClock clock;
  clock.set_autojump_threshold(Duration::zero());
  TrioPolicy policy(seed);
  Observed observed;
  observed.received.resize(plan.consumers.size());
  observed.ended.resize(plan.consumers.size());
  std::exception_ptr outcome;
  try {
    run(
        [&] {
          auto [send_channel, receive_channel] = open_memory_channel<Message>(plan.capacity);
          open_nursery([&](Nursery& nursery) {
            for (std::size_t c = 0; c < plan.consumers.size(); ++c) {
              nursery.start_soon(
                  [&plan, &observed, c](MemoryReceiveChannel<Message> channel) {
                    consumer(std::move(channel), static_cast<int>(c), plan.consumers[c], observed);
                  },
                  receive_channel.clone());
            }
            for (std::size_t p = 0; p < plan.producers.size(); ++p) {
              nursery.start_soon(
                  [&plan, &observed, p](MemorySendChannel<Message> channel) {
                    producer(std::move(channel), static_cast<int>(p), plan.producers[p], observed);
                  },
                  send_channel.clone());
            }
            // Only the tasks' clones stay open: the channel ends when the producers do.
            send_channel.close();
            receive_channel.close();
          });
          observed.final_statistics = send_channel.statistics();
        },
        {.clock = &clock, .policy = &policy});
  } catch (...) {
    outcome = std::current_exception();
  }
  RC_ASSERT(outcome == nullptr);  // no deadlock, no error

  // Exactly once: every (producer, sequence) sent is received once, nothing else is.
  std::map<std::pair<int, int>, int> count;
  for (const std::vector<Message>& messages : observed.received) {
    for (const Message& m : messages) ++count[{m.producer, m.sequence}];
  }
  std::size_t sent = 0;
  for (std::size_t p = 0; p < plan.producers.size(); ++p) {
    for (int s = 0; s < static_cast<int>(plan.producers[p].size()); ++s) {
      RC_ASSERT(count[std::make_pair(static_cast<int>(p), s)] == 1);
      ++sent;
    }
  }
  RC_ASSERT(count.size() == sent);

  // Per-producer order, as each consumer sees it.
  for (const std::vector<Message>& messages : observed.received) {
    std::map<int, int> last;
    for (const Message& m : messages) {
      const auto it = last.find(m.producer);
      if (it != last.end()) RC_ASSERT(it->second < m.sequence);
      last[m.producer] = m.sequence;
    }
  }
  // With one consumer, it sees each producer's messages exactly in sending order.
  if (plan.consumers.size() == 1) {
    std::map<int, int> next;
    for (const Message& m : observed.received[0]) RC_ASSERT(m.sequence == next[m.producer]++);
  }

  // The end: every consumer saw EndOfChannel; nothing is left in or waiting on the channel.
  for (const bool ended : observed.ended) RC_ASSERT(ended);
  const MemoryChannelStatistics& stats = observed.final_statistics;
  RC_ASSERT(stats.current_buffer_used == 0u);
  RC_ASSERT(stats.open_send_channels == 0u);
  RC_ASSERT(stats.open_receive_channels == 0u);
  RC_ASSERT(stats.tasks_waiting_send == 0u);
  RC_ASSERT(stats.tasks_waiting_receive == 0u);
  RC_ASSERT(stats.max_buffer_size == plan.capacity);
  RC_ASSERT(stats.peak_buffer_used <= plan.capacity);
  RC_TAG(observed.cancelled_sends > 0 ? "some send cancelled" : "no send cancelled");
  RC_TAG(observed.cancelled_receives > 0 ? "some receive cancelled" : "no receive cancelled");
}

}  // namespace
}  // namespace trellis
