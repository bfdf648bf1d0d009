#include "trellis/asio/asio_host.h"

#include "trellis/guest.h"
#include "trellis/posix/epoll_backend.h"

namespace trellis::asio_host {

void start_guest_run(boost::asio::io_context& host, std::function<void()> main,
                     std::function<void(std::exception_ptr)> done) {
  // The io_context must not run out of work while the run waits for I/O on its helper
  // thread (no handler of the run is queued then): a work guard holds it until done.
  using Guard = boost::asio::executor_work_guard<boost::asio::io_context::executor_type>;
  auto guard = std::make_shared<Guard>(host.get_executor());
  auto post = [&host](std::function<void()> fn) { boost::asio::post(host, std::move(fn)); };
  trellis::start_guest_run(
      std::move(main),
      GuestRunOptions{.run_sync_soon_threadsafe = post,
                      .run_sync_soon_not_threadsafe = post,
                      .done_callback = [guard, done = std::move(done)](std::exception_ptr error) {
                        guard->reset();
                        if (done) {
                          done(std::move(error));
                        } else if (error != nullptr) {
                          std::rethrow_exception(error);
                        }
                      }});
}

namespace detail {

PendingOperation::PendingOperation() : backend_(&lowlevel::current_backend()) {
  auto* epoll = dynamic_cast<posix::EpollBackend*>(backend_);
  if (epoll == nullptr) {
    throw UsageError("asio_host::await needs the real (epoll) backend, not '" +
                     std::string(backend_->name()) + "'");
  }
  epoll->add_external_source();
}

PendingOperation::~PendingOperation() {
  static_cast<posix::EpollBackend*>(backend_)->remove_external_source();
}

}  // namespace detail
}  // namespace trellis::asio_host
