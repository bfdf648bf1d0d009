// trellis/sync/lock_order.h — lock-order checking (Linux's lockdep, TSan's deadlock detector)
// and the lock part of deadlock reports.
//
// With RunOptions::check_lock_order on (the default under sim::World, the sim harness and
// TRELLIS_ASYNC_TEST; off in a plain run), the run records, for every task, which Lock and
// StrictFIFOLock it holds and where it took each one, and keeps the order graph of the run: an
// edge A -> B the first time a task asks for B while holding A. The acquisition that would
// close a cycle in that graph (B then A here, after A then B there) throws LockOrderError
// before it blocks: the run fails there, even in a schedule where no deadlock happened, as
// lockdep fails at the first inversion it sees.
//
//   trellis::Lock accounts("accounts"), journal("journal");
//   // task 1:                           // task 2, later:
//   std::lock_guard a(accounts);         std::lock_guard j(journal);
//   std::lock_guard j(journal);          std::lock_guard a(accounts);  // throws LockOrderError
//
// What is recorded, and what is not:
// - Locks are nodes one by one (not by class, as lockdep does): per-account locks taken in
//   account order never conflict. A lock is named by its constructor's name, else "Lock#N" /
//   "StrictFIFOLock#N", N the order in which this run first took it (deterministic, never an
//   address). The graph is iterated in id order only.
// - Sites: acquire(), lock(), acquire_nowait() and try_lock() take a SourceLocation
//   default argument, so a direct call records the caller's line. Through std::lock_guard,
//   std::unique_lock or std::scoped_lock the recorded line is inside the standard header (the
//   report says which guard); the task names and lock names still locate it.
// - acquire_nowait() / try_lock() never wait, so they are not checked against the locks held
//   (a trylock cannot deadlock), but what is taken after them is ordered after them.
// - Condition::wait() releases its lock and takes it back: the retake is checked like an
//   acquire() (holding B, waiting on a Condition of A orders A after B).
// - Semaphore and CapacityLimiter are not in the graph: a Semaphore's units have no owner (any
//   task may release, the usual signalling pattern), and a limiter with more than one token
//   inverted against a lock is not a deadlock by itself. Their waits appear in deadlock
//   reports as before.
//
// Cost: off, each acquire pays one thread-local load and one branch. On, a few map lookups per
// acquisition and a graph search per new edge (locks held x new pairs, once per pair).
#pragma once

#include <stdexcept>
#include <string>
#include <utility>

namespace trellis {

// Thrown (with check_lock_order on) by the acquisition that completes a lock-order inversion.
// A misuse in the program, like UsageError: no schedule makes it go away.
class LockOrderError : public std::logic_error {
 public:
  LockOrderError(const std::string& what, std::string first, std::string second)
      : std::logic_error(what), first_(std::move(first)), second_(std::move(second)) {}
  // The order seen first, edge by edge: "Lock 'a' then Lock 'b' (task 'x' #3: 'a' taken at
  // f.cc:10 ..., 'b' taken at f.cc:12 ...)"; several edges, joined by "; ", when the earlier
  // order goes through other locks.
  const std::string& first() const noexcept { return first_; }
  // The order that completes the inversion, in the same form (the second lock "requested at").
  const std::string& second() const noexcept { return second_; }

 private:
  std::string first_;
  std::string second_;
};

namespace lowlevel {

// The tasks of the current run that can never be woken because they wait on locks in a cycle:
// each waits in Lock/StrictFIFOLock::acquire() for a lock the next one holds, and none of them
// is in a cancelled scope or has a deadline that could end its wait. Also lists the tasks
// waiting (transitively) on a lock held inside such a cycle. "" when there is none, when the
// run does not check lock order (RunOptions::check_lock_order), or outside a run. Not a
// checkpoint; never blocks. sim::World calls it when its driver returns.
std::string lock_deadlock_report();

// With check_lock_order on, whether an inversion throws LockOrderError (the default) or is
// only left out of the order graph, the holders and waits still being tracked for deadlock
// reports (sim::Config::lock_order_errors = false: a known inversion that a test wants to see
// deadlock). For the current run; a no-op when the run does not check lock order. Throws
// UsageError outside a run.
void set_lock_order_errors(bool on);

}  // namespace lowlevel
}  // namespace trellis
