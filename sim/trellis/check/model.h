// trellis/check/model.h — sequential specifications of objects, the "model" a linearizability
// checker replays a candidate order against (Porcupine's Model, Knossos's model).
//
//   CasRegisterModel model;                      // initial value ""
//   CheckResult r = check_linearizable(history, model);
//
// A model describes ONE object (one register, one key's value, one queue): the checker gives
// each key of a history its own copy of the initial state. State is an opaque string that the
// model encodes; two states are the same iff their strings are equal (that is what the
// checker's memoization compares).
//
// Outcome unknown (Operation::completed == nullopt): step accepts any output; its effect on
// the state still follows the state (an indeterminate cas swaps iff the value matches).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "trellis/check/operation.h"

namespace trellis::check {

class Model {
 public:
  virtual ~Model() = default;
  virtual std::string_view name() const = 0;
  virtual std::string initial_state() const = 0;
  // Whether this model defines operations of `kind` (the checker rejects a history that holds
  // others with std::invalid_argument).
  virtual bool supports(Operation::Kind kind) const = 0;
  // The state after `op` takes effect in `state`, or nullopt when `op` could not have returned
  // what it returned there. Pure: same arguments, same answer.
  virtual std::optional<std::string> step(const std::string& state, const Operation& op) const = 0;
  // "the register holds 'a'", "the queue holds ['x', 'y']" — for failure messages.
  virtual std::string describe_state(const std::string& state) const = 0;
};

// A read/write register: kRead, kWrite.
class RegisterModel : public Model {
 public:
  explicit RegisterModel(std::string initial = "") : initial_(std::move(initial)) {}
  std::string_view name() const override { return "register"; }
  std::string initial_state() const override { return initial_; }
  bool supports(Operation::Kind kind) const override;
  std::optional<std::string> step(const std::string& state, const Operation& op) const override;
  std::string describe_state(const std::string& state) const override;

 private:
  std::string initial_;
};

// A compare-and-set register (etcd's, Jepsen's cas-register): kRead, kWrite, kCas.
class CasRegisterModel : public RegisterModel {
 public:
  explicit CasRegisterModel(std::string initial = "") : RegisterModel(std::move(initial)) {}
  std::string_view name() const override { return "cas-register"; }
  bool supports(Operation::Kind kind) const override;
  std::optional<std::string> step(const std::string& state, const Operation& op) const override;
};

// One key of a key-value map whose values are strings: kRead (get), kWrite (put), kAppend
// (Porcupine's kv model; a missing key reads as "").
class KvAppendModel : public RegisterModel {
 public:
  KvAppendModel() = default;
  std::string_view name() const override { return "kv-append"; }
  bool supports(Operation::Kind kind) const override;
  std::optional<std::string> step(const std::string& state, const Operation& op) const override;
  std::string describe_state(const std::string& state) const override;
};

// A FIFO queue of strings, initially empty: kEnqueue, kDequeue.
class QueueModel : public Model {
 public:
  std::string_view name() const override { return "queue"; }
  std::string initial_state() const override { return {}; }
  bool supports(Operation::Kind kind) const override;
  std::optional<std::string> step(const std::string& state, const Operation& op) const override;
  std::string describe_state(const std::string& state) const override;
};

}  // namespace trellis::check
