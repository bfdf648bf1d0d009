// ClosureQueue: closures posted from other threads run in order on the draining thread and
// are refused after close(); a closure that throws is never lost silently (its exception
// leaves drain(), the closures behind it are queued again, first, and run or are destroyed
// by close()).
#include "trellis/base/closure_queue.h"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <stdexcept>
#include <thread>
#include <vector>

namespace trellis {
namespace {

// Sets *destroyed when the last closure holding it dies (run or not).
class DestroyFlag {
 public:
  explicit DestroyFlag(bool* destroyed) : destroyed_(destroyed) {}
  DestroyFlag(const DestroyFlag&) = delete;
  DestroyFlag& operator=(const DestroyFlag&) = delete;
  ~DestroyFlag() { *destroyed_ = true; }

 private:
  bool* destroyed_;
};

TEST(ClosureQueue, RunsClosuresPostedFromOtherThreadsInOrderAndDropsThemAfterClose) {
  std::atomic<int> wakes{0};
  auto queue = std::make_shared<ClosureQueue>([&] { ++wakes; });
  std::vector<int> ran;
  std::thread poster([&] {
    for (int i = 0; i < 100; ++i) EXPECT_TRUE(queue->post([&ran, i] { ran.push_back(i); }));
  });
  poster.join();
  EXPECT_EQ(wakes.load(), 100);
  EXPECT_FALSE(queue->empty());
  EXPECT_EQ(queue->drain(), 100u);
  EXPECT_TRUE(queue->empty());
  ASSERT_EQ(ran.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(ran[static_cast<std::size_t>(i)], i);
  EXPECT_TRUE(queue->post([&] { ran.push_back(-1); }));
  queue->close();
  EXPECT_TRUE(queue->closed());
  EXPECT_FALSE(queue->post([&] { ran.push_back(-2); }));
  EXPECT_EQ(queue->drain(), 0u);
  EXPECT_EQ(ran.size(), 100u);
  EXPECT_EQ(wakes.load(), 101);  // never woken after close()
}

TEST(ClosureQueue, AThrowingClosurePropagatesAndTheRestRunAtTheNextDrain) {
  int wakes = 0;
  ClosureQueue queue([&] { ++wakes; });
  std::vector<int> ran;
  queue.post([&] { ran.push_back(1); });
  queue.post([] { throw std::runtime_error("closure failed"); });
  queue.post([&] { ran.push_back(3); });
  queue.post([&] { ran.push_back(4); });
  EXPECT_THROW(
      {
        try {
          queue.drain();
        } catch (const std::runtime_error& e) {
          EXPECT_STREQ(e.what(), "closure failed");
          throw;
        }
      },
      std::runtime_error);
  EXPECT_EQ(ran, (std::vector<int>{1}));
  // The two behind the throwing one are queued again, ahead of anything posted later, and
  // the loop is woken for them.
  EXPECT_FALSE(queue.empty());
  EXPECT_EQ(wakes, 5);
  queue.post([&] { ran.push_back(5); });
  EXPECT_EQ(queue.drain(), 3u);
  EXPECT_EQ(ran, (std::vector<int>{1, 3, 4, 5}));
  EXPECT_TRUE(queue.empty());
}

TEST(ClosureQueue, ClosuresLeftBehindAThrowingOneAreDestroyedByClose) {
  ClosureQueue queue([] {});
  bool ran = false;
  bool destroyed = false;
  queue.post([] { throw std::runtime_error("closure failed"); });
  queue.post([&ran, flag = std::make_shared<DestroyFlag>(&destroyed)] { ran = true; });
  EXPECT_THROW(queue.drain(), std::runtime_error);
  EXPECT_FALSE(destroyed);  // kept, not dropped with the failed batch
  queue.close();
  EXPECT_TRUE(destroyed);
  EXPECT_FALSE(ran);
}

TEST(ClosureQueue, AClosureThatClosesTheQueueAndThrowsTakesTheRestWithIt) {
  ClosureQueue queue([] {});
  bool destroyed = false;
  queue.post([&] {
    queue.close();
    throw std::runtime_error("closed, then failed");
  });
  queue.post([flag = std::make_shared<DestroyFlag>(&destroyed)] {});
  EXPECT_THROW(queue.drain(), std::runtime_error);
  EXPECT_TRUE(destroyed);
  EXPECT_TRUE(queue.empty());
  EXPECT_FALSE(queue.post([] {}));
}

}  // namespace
}  // namespace trellis
