// The lowlevel accessors of the run's backend facets and running task (core/lowlevel.h).
#include <string>

#include "trellis/core/errors.h"
#include "trellis/core/file_system_facet.h"
#include "trellis/core/internal/runner.h"
#include "trellis/core/io_facet.h"
#include "trellis/core/lowlevel.h"
#include "trellis/core/network_facet.h"
#include "trellis/core/thread_facet.h"

namespace trellis::lowlevel {
namespace {

[[noreturn]] void missing_facet(const Backend& backend, const char* facet) {
  throw UsageError("the run's backend (" + std::string(backend.name()) + ") offers no " + facet);
}

}  // namespace

Task* current_task_if_any() noexcept {
  internal::Runner* runner = internal::Runner::current();
  return runner == nullptr ? nullptr : runner->current_task();
}

Backend& current_backend() {
  return internal::Runner::require("current_backend()").backend();
}

IoFacet& current_io() {
  Backend& backend = internal::Runner::require("current_io()").backend();
  IoFacet* io = backend.io();
  if (io == nullptr) missing_facet(backend, "I/O handles");
  return *io;
}

NetworkFacet& current_network() {
  Backend& backend = internal::Runner::require("current_network()").backend();
  NetworkFacet* network = backend.network();
  if (network == nullptr) missing_facet(backend, "network");
  return *network;
}

FileSystemFacet& current_file_system() {
  Backend& backend = internal::Runner::require("current_file_system()").backend();
  FileSystemFacet* file_system = backend.file_system();
  if (file_system == nullptr) missing_facet(backend, "file system");
  return *file_system;
}

ThreadFacet& current_threads() {
  Backend& backend = internal::Runner::require("current_threads()").backend();
  ThreadFacet* threads = backend.threads();
  if (threads == nullptr) missing_facet(backend, "thread");
  return *threads;
}

RunToken current_run_token() {
  return RunToken(internal::Runner::require("current_run_token()").token_state());
}

void spawn_system_task(std::function<void()> fn, std::string_view name) {
  internal::Runner::require("spawn_system_task()").spawn_system_task(std::move(fn), name);
}

}  // namespace trellis::lowlevel

namespace trellis {

void RunToken::run_sync_soon(std::function<void()> fn) const {
  if (state_ == nullptr) throw UsageError("RunToken::run_sync_soon on an empty token");
  if (!state_->post(std::move(fn))) {
    throw RunFinishedError("RunToken::run_sync_soon: the run has exited");
  }
}

bool RunToken::run_active() const noexcept {
  return state_ != nullptr && !state_->closed();
}

}  // namespace trellis
