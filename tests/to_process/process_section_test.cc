// pipeline::ProcessSection (trellis/pipeline/process_section.h): a pipeline stage whose
// function runs in worker processes; a worker's exception fails the pipeline.
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "trellis/pipeline.h"
#include "trellis/pipeline/process_section.h"
#include "trellis/to_process.h"
#include "trellis/trellis.h"

namespace trellis {
namespace {

TEST(ProcessSection, ItemsGoThroughAWorkerInOrder) {
  std::vector<int> got;
  trellis::run([&] {
    open_nursery([&](Nursery& nursery) {
      auto [tx, rx] = open_memory_channel<int>(0);
      nursery.start_soon([tx = std::move(tx)]() mutable {
        for (int i = 1; i <= 20; ++i) tx.send(i);
      });
      pipeline::Pipeline p = pipeline::create(nursery, pipeline::Chain(std::move(rx)),
                                              pipeline::ProcessSection<int, int>("twice"),
                                              pipeline::Map([](int v) { return v + 1; }));
      for (int v : p.tap<int>()) got.push_back(v);
    });
  });
  std::vector<int> expected;
  for (int i = 1; i <= 20; ++i) expected.push_back(2 * i + 1);
  EXPECT_EQ(got, expected);
}

TEST(ProcessSection, AWorkersExceptionFailsThePipeline) {
  EXPECT_THROW(trellis::run([&] {
                 open_nursery([&](Nursery& nursery) {
                   auto [tx, rx] = open_memory_channel<int>(0);
                   nursery.start_soon([tx = std::move(tx)]() mutable {
                     for (int i = 0; i < 5; ++i) tx.send(i);
                   });
                   pipeline::Pipeline p =
                       pipeline::create(nursery, pipeline::Chain(std::move(rx)),
                                        pipeline::ProcessSection<int, int>("throws_out_of_range"));
                   for (int v : p.tap<int>()) (void)v;
                 });
               }),
               ExceptionGroup);
}

}  // namespace
}  // namespace trellis
