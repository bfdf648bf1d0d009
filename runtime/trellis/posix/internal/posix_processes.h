// trellis/posix/internal/posix_processes.h — PosixProcesses: the epoll backend's
// ProcessFacet (posix_spawn, pipes, pidfd).
//
// A child is started with posix_spawnp (signal mask emptied and every signal at its default
// action in the child, whatever handlers the run installed). Waiting uses a pidfd
// (pidfd_open, Linux >= 5.3) through the IoFacet, so a wait is an ordinary readiness wait on
// the loop; where pidfd is unavailable a worker thread blocks in waitid(WNOWAIT) and the loop
// reaps. Children are reaped by pid with waitid(WNOHANG) only when they have exited; a
// program that sets SIGCHLD to SIG_IGN (the kernel then reaps for us) gets ECHILD as an
// OSError. The environment variable TRELLIS_NO_PIDFD (any value) forces the fallback (tests).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <utility>

#include "trellis/core/process_facet.h"
#include "trellis/core/thread_facet.h"

namespace trellis::posix::internal {

class EpollIo;

class PosixProcesses final : public ProcessFacet {
 public:
  PosixProcesses(EpollIo& io, ThreadFacet& threads);
  // Kills and reaps every child not released yet.
  ~PosixProcesses() override;
  PosixProcesses(const PosixProcesses&) = delete;
  PosixProcesses& operator=(const PosixProcesses&) = delete;

  IoResult<SpawnedProcess> spawn(const ProcessSpec& spec) override;
  std::optional<int> poll(std::uint64_t id) override;
  int wait(std::uint64_t id) override;
  int send_signal(std::uint64_t id, int signo) override;
  void release(std::uint64_t id) noexcept override;
  IoResult<std::pair<IoHandle, IoHandle>> pipe() override;

  // Children not yet reaped.
  std::size_t children() const noexcept { return children_.size(); }

 private:
  struct Child {
    int pid = 0;
    int pidfd = -1;                 // -1: no pidfd (fallback to a waiting thread)
    std::optional<int> returncode;  // set once reaped
    bool waiting = false;           // a task is in wait()
  };
  Child& child(std::uint64_t id);
  // Reaps the child if it has exited; true if it has (returncode set).
  bool try_reap(Child& child);
  void close_pidfd(Child& child) noexcept;

  EpollIo& io_;
  ThreadFacet& threads_;
  const bool use_pidfd_;
  std::uint64_t next_id_ = 1;
  std::map<std::uint64_t, Child> children_;
};

}  // namespace trellis::posix::internal
