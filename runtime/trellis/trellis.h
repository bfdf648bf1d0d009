// trellis/trellis.h — the runtime: Trio's structured concurrency for C++ on fibers.
//
// Map of the runtime (one line per header):
// base/assert.h              TRELLIS_ASSERT: always-on internal invariants
// base/prng.h                Prng: the one seeded random generator
// base/force_inline.h        TRELLIS_FORCE_INLINE: the schedule point's hot path, inline
// base/sanitizers.h          TRELLIS_HAVE_ASAN / _TSAN: the sanitizer compiling this code
// core/time.h                Duration, Time
// core/errors.h              Cancelled, TooSlowError, WouldBlock, ... DeadlockError
// core/exception_group.h     ExceptionGroup (errors of concurrent tasks)
// core/clock.h               Clock: the run's time source (real, mock, simulated)
// core/backend.h             Backend: the run loop's I/O wait and cross-thread wake-up
// core/io_facet.h            IoFacet: readiness waits and closing of I/O handles
// core/network_facet.h       NetworkFacet: sockets and name resolution, syscall-shaped
// core/socket_address.h      SocketAddress: IPv4/IPv6/unix addresses
// core/file_system_facet.h   FileSystemFacet: files and directories, syscall-shaped
// core/thread_facet.h        ThreadFacet: blocking work off the loop (worker threads / sim tasks)
// core/run_token.h           RunToken: a handle on a run for other threads (run_sync_soon)
// core/os_error.h            OSError: a failed system call (errno + operation)
// core/schedule_policy.h     SchedulePolicy: the order tasks run in (one choose() primitive)
// core/instrument.h          Instrument: hooks into the run loop
// core/run.h                 run(), RunOptions, sleep*, checkpoint*, current_time
// core/cancel_scope.h        CancelScope, move_on_*, fail_*
// core/nursery.h             open_nursery, Nursery, TaskStatus, SpawnOptions
// core/task.h                lowlevel::Task (introspection)
// core/task_local.h          TaskLocal<T>: per-task values inherited by spawned tasks
// core/lowlevel.h            wait_task_rescheduled / reschedule and other low-level calls
// core/lowlevel_inline.h     lowlevel::fast: the hottest of those, inline at the caller
// channel/memory_channel.h   open_memory_channel, MemorySendChannel, MemoryReceiveChannel
// io/stream.h                SendStream, ReceiveStream, Stream, HalfCloseableStream, Listener
// io/stapled_stream.h        StapledStream: a SendStream + a ReceiveStream as one stream
// io/close_forcefully.h      close_forcefully: close at once, skipping the graceful goodbye
// io/conflict_detector.h     ConflictDetector: BusyResourceError for one-task-at-a-time calls
// io/socket.h                Socket: an owned socket handle of the run's network facet
// io/socket_stream.h         SocketStream, SocketListener
// io/tcp.h                   open_tcp_stream (Happy Eyeballs), open_tcp_listeners, serve_tcp
// io/serve_listeners.h       serve_listeners: an accept loop per listener, a task per connection
// io/unix_socket.h           open_unix_socket, open_unix_listener
// io/udp_socket.h            UdpSocket: send_to / receive_from datagrams
// io/nonblocking_call.h     nonblocking_call: Trio's try / park on EAGAIN / retry protocol
// io/pipe_stream.h          PipeSendStream, PipeReceiveStream, open_pipe
// io/file.h                  open_file, AsyncFile, Path (files over the FileSystemFacet)
// process/process.h         open_process, Process, run_process, CalledProcessError
// signal/signal_receiver.h   open_signal_receiver, SignalReceiver (SIGINT: see RunOptions)
// thread/to_thread.h         to_thread::run_sync, current_default_thread_limiter
// thread/from_thread.h       from_thread::run, from_thread::run_sync (call into the run)
// sync/parking_lot.h         lowlevel::ParkingLot: the FIFO wait queue under every primitive
// sync/event.h               Event
// sync/lock.h                Lock, StrictFIFOLock
// sync/lock_order.h          LockOrderError: lock-order checking (RunOptions::check_lock_order)
// sync/semaphore.h           Semaphore
// sync/condition.h           Condition
// sync/capacity_limiter.h    CapacityLimiter
// posix/system_clock.h       SystemClock (CLOCK_MONOTONIC)
// posix/epoll_backend.h      EpollBackend
#pragma once

#include "trellis/channel/memory_channel.h"
#include "trellis/core/backend.h"
#include "trellis/core/cancel_scope.h"
#include "trellis/core/clock.h"
#include "trellis/core/errors.h"
#include "trellis/core/exception_group.h"
#include "trellis/core/file_system_facet.h"
#include "trellis/core/instrument.h"
#include "trellis/core/io_facet.h"
#include "trellis/core/lowlevel.h"
#include "trellis/core/lowlevel_inline.h"
#include "trellis/core/network_facet.h"
#include "trellis/core/nursery.h"
#include "trellis/core/os_error.h"
#include "trellis/core/process_facet.h"
#include "trellis/core/run.h"
#include "trellis/core/run_token.h"
#include "trellis/core/schedule_policy.h"
#include "trellis/core/socket_address.h"
#include "trellis/core/task.h"
#include "trellis/core/task_local.h"
#include "trellis/core/thread_facet.h"
#include "trellis/core/time.h"
#include "trellis/guest.h"
#include "trellis/io/close_forcefully.h"
#include "trellis/io/conflict_detector.h"
#include "trellis/io/file.h"
#include "trellis/io/nonblocking_call.h"
#include "trellis/io/pipe_stream.h"
#include "trellis/io/serve_listeners.h"
#include "trellis/io/socket.h"
#include "trellis/io/socket_stream.h"
#include "trellis/io/stapled_stream.h"
#include "trellis/io/stream.h"
#include "trellis/io/tcp.h"
#include "trellis/io/udp_socket.h"
#include "trellis/io/unix_socket.h"
#include "trellis/posix/epoll_backend.h"
#include "trellis/posix/system_clock.h"
#include "trellis/process/process.h"
#include "trellis/signal/signal_receiver.h"
#include "trellis/sync/capacity_limiter.h"
#include "trellis/sync/condition.h"
#include "trellis/sync/event.h"
#include "trellis/sync/lock.h"
#include "trellis/sync/lock_order.h"
#include "trellis/sync/parking_lot.h"
#include "trellis/sync/semaphore.h"
#include "trellis/thread/from_thread.h"
#include "trellis/thread/to_thread.h"
