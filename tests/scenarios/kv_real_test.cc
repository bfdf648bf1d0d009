// The flagship scenario's production code for real: three KvReplicas on loopback, each with
// its write-ahead log in its own directory on the real file system, three KvClients doing
// quorum reads and writes over real TCP while replicas are stopped and restarted from their
// logs. The same code the simulator sweeps; here the epoll backend runs it. Every key's
// history must be linearizable, and restarted replicas must recover their stores from disk.
#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "trellis/scenarios/kv/kv_client.h"
#include "trellis/scenarios/kv/kv_replica.h"
#include "trellis/scenarios/kv/linearizability.h"
#include "trellis/trellis.h"

namespace trellis::scenarios {
namespace {

using namespace std::chrono_literals;
using kv::KvClient;
using kv::KvReplica;

struct RealReplica {
  std::string directory;
  std::uint16_t port = 0;
  CancelScope* scope = nullptr;  // the running incarnation's
  bool stop = false;
  int restarts = 0;
  std::size_t last_recovered = 0;
};

// Serves until stopped; a cancelled incarnation is restarted on the same port, recovering
// from its log. Reports the port once, when the first incarnation listens.
void run_replica(RealReplica& r, TaskStatus<std::uint16_t>& status) {
  bool reported = false;
  while (!r.stop) {
    CancelScope scope;
    r.scope = &scope;
    scope.run([&] {
      KvReplica replica = KvReplica::open({.directory = r.directory});
      r.last_recovered = replica.recovered_stores();
      open_nursery([&](Nursery& inner) {
        using Listeners = std::vector<SocketListener*>;
        const Listeners listeners = inner.start<Listeners>(
            [&](TaskStatus<Listeners>& s) { replica.serve(r.port, "127.0.0.1", &s); });
        r.port = listeners.front()->local_address().port();
        if (!reported) {
          reported = true;
          status.started(r.port);
        }
      });
    });
    r.scope = nullptr;
    if (!r.stop) ++r.restarts;
  }
}

TEST(KvRealMode, LinearizableOnLoopbackAcrossReplicaRestarts) {
  const std::filesystem::path root =
      std::filesystem::path(::testing::TempDir()) / ("kv_real." + std::to_string(::getpid()));
  std::filesystem::remove_all(root);
  std::array<RealReplica, 3> replicas;
  for (int i = 0; i < 3; ++i) {
    replicas[i].directory = (root / ("replica" + std::to_string(i))).string();
  }
  std::map<std::string, std::vector<RegisterOperation>> history;
  std::uint64_t events = 0;
  int completed = 0;
  run([&] {
    open_nursery([&](Nursery& n) {
      std::vector<std::string> endpoints;
      for (RealReplica& r : replicas) {
        const std::uint16_t port = n.start<std::uint16_t>(
            [&r](TaskStatus<std::uint16_t>& status) { run_replica(r, status); });
        endpoints.push_back("127.0.0.1:" + std::to_string(port));
      }
      open_nursery([&](Nursery& work) {
        for (std::uint32_t id = 1; id <= 3; ++id) {
          work.start_soon([&, id] {
            KvClient client({.replicas = endpoints, .client_id = id});
            for (int i = 0; i < 40; ++i) {
              const std::string key = (i + id) % 2 == 0 ? "x" : "y";
              RegisterOperation op;
              op.client = id;
              op.invoked = ++events;
              if ((i * 7 + id) % 3 == 0) {
                op.kind = RegisterOperation::Kind::kWrite;
                op.value = "c" + std::to_string(id) + "-" + std::to_string(i);
                CancelScope scope(current_time() + 5s);
                scope.run([&] { client.write(key, op.value); });
                if (!scope.cancelled_caught()) op.completed = ++events;
              } else {
                op.kind = RegisterOperation::Kind::kRead;
                std::optional<std::string> value =
                    move_on_after(5s, [&] { return client.read(key); });
                if (value) {
                  op.value = *value;
                  op.completed = ++events;
                }
              }
              if (op.completed) ++completed;
              history[key].push_back(std::move(op));
            }
          });
        }
        // Restart each replica in turn while the clients work: one down at a time, so a
        // majority always answers. Each restart is awaited (its incarnation returns and the
        // next one begins) before the next replica goes down: the clients may finish about
        // when the last cancel lands, and the run then stops every replica, so without the
        // wait the last restart would be a race against the shutdown.
        work.start_soon([&] {
          for (RealReplica& r : replicas) {
            sleep(20ms);
            ASSERT_NE(r.scope, nullptr) << r.directory << " is not running";
            const int restarts = r.restarts;
            r.scope->cancel();
            fail_after(5s, [&] {
              while (r.restarts == restarts) sleep(1ms);
            });
          }
        });
      });
      for (RealReplica& r : replicas) {
        r.stop = true;
        if (r.scope != nullptr) r.scope->cancel();
      }
    });
  });
  for (const auto& [key, ops] : history) {
    const LinearizabilityResult result = check_register_history(ops, "");
    EXPECT_TRUE(result.linearizable) << "key " << key << ": " << result.explanation;
  }
  EXPECT_EQ(completed, 120) << "every operation should finish with a majority up";
  for (const RealReplica& r : replicas) {
    EXPECT_GE(r.restarts, 1);
  }
  std::filesystem::remove_all(root);
}

}  // namespace
}  // namespace trellis::scenarios
