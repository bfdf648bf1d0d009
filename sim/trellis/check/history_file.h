// trellis/check/history_file.h — a plain-text file format for histories, so that histories
// recorded elsewhere (Jepsen logs, converted by tests/check/convert_histories.py) or saved
// from a failing run can be checked again.
//
//   HistoryFile h = read_history_file("tests/data/histories/porcupine-etcd_000.txt");
//   CheckResult r = check_linearizable(h.operations, *make_model(h.model, h.initial));
//
// Format: UTF-8 lines. '#' starts a comment line. Header lines "model <name>",
// "initial <value>" (optional), "expect linearizable|not-linearizable" (optional); then one
// operation per line, nine tab-separated fields:
//   client  invoked  completed|?  kind  key  value  expected  output  ok(1|0)
// kind: read|write|cas|append|enqueue|dequeue; "?" marks an indeterminate operation.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "trellis/check/linearizability.h"
#include "trellis/check/model.h"
#include "trellis/check/operation.h"

namespace trellis::check {

struct HistoryFile {
  std::string model;    // register, cas-register, kv-append, queue
  std::string initial;  // the initial value of each key ("" when absent)
  std::optional<Verdict> expect;
  std::vector<Operation> operations;
};

// Throws std::invalid_argument naming the line for malformed text.
HistoryFile parse_history_file(std::string_view text);
// As parse_history_file; throws std::runtime_error when the file cannot be read.
HistoryFile read_history_file(const std::string& path);
std::string format_history_file(const HistoryFile& file);

// The model a history file names: "register", "cas-register", "kv-append", "queue".
// Throws std::invalid_argument for another name.
std::unique_ptr<Model> make_model(std::string_view name, const std::string& initial = "");

}  // namespace trellis::check
