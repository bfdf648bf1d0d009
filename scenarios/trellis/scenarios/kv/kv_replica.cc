#include "trellis/scenarios/kv/kv_replica.h"

#include <utility>

#include "trellis/core/errors.h"
#include "trellis/core/os_error.h"
#include "trellis/io/tcp.h"

namespace trellis::scenarios::kv {

KvReplica KvReplica::open(Options options) {
  KvReplica replica(WriteAheadLog::open(
      {.directory = std::move(options.directory), .resync_after_error = options.after_disk_error}));
  for (const std::string& record : replica.log_.records()) {
    const Request request = parse_request(record);
    if (request.kind != Request::Kind::kStore) {
      throw ProtocolError("log record is not a store: '" + record.substr(0, 80) + "'");
    }
    Versioned& current = replica.store_[request.key];
    if (request.versioned.timestamp > current.timestamp) current = request.versioned;
    ++replica.recovered_stores_;
  }
  return replica;
}

Versioned KvReplica::get(const std::string& key) const {
  auto it = store_.find(key);
  return it == store_.end() ? Versioned{} : it->second;
}

std::string KvReplica::handle(const Request& request) {
  if (request.kind == Request::Kind::kQuery) return encode_versioned(get(request.key));
  std::lock_guard guard(*store_lock_);
  if (request.versioned.timestamp > get(request.key).timestamp) {
    log_.append(encode_store(request.key, request.versioned));
    store_[request.key] = request.versioned;
  }
  return "A";
}

void KvReplica::handle_connection(SocketStream& stream) {
  LineReader reader(stream);
  try {
    while (std::optional<std::string> line = reader.read_line()) {
      std::string response;
      try {
        response = handle(parse_request(*line));
      } catch (const ProtocolError& e) {
        send_line(stream, std::string("E ") + e.what());
        return;
      }
      send_line(stream, response);
    }
  } catch (const BrokenResourceError&) {
    // The client went away (or crashed): nothing to answer.
  } catch (const ProtocolError&) {
    // An over-long line or a truncated request: drop the connection.
  } catch (const OSError&) {
    // The log's disk failed: no answer (the store may or may not be durable), and the
    // replica stops.
    stop_serving(std::current_exception());
  }
}

void KvReplica::stop_serving(std::exception_ptr disk_error) noexcept {
  if (!disk_error_) disk_error_ = std::move(disk_error);
  if (serving_ != nullptr) serving_->cancel();
}

void KvReplica::serve(std::uint16_t port, std::string host,
                      TaskStatus<std::vector<SocketListener*>>* task_status) {
  if (disk_error_) std::rethrow_exception(disk_error_);  // open it again to go on
  CancelScope scope;
  serving_ = &scope;
  struct Clear {
    CancelScope*& serving;
    ~Clear() { serving = nullptr; }
  } clear{serving_};
  scope.run([&] {
    serve_tcp([this](SocketStream& stream) { handle_connection(stream); }, port,
              {.host = std::move(host), .task_status = task_status});
  });
  if (disk_error_) std::rethrow_exception(disk_error_);
}

}  // namespace trellis::scenarios::kv
