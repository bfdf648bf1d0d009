// trellis/core/exception_group.h — several errors from concurrent tasks, as one exception.
//
// A nursery whose children (or body) raised reports all of them, in arrival order, as an
// ExceptionGroup (Trio >= 0.25 "strict" groups). A group may contain groups (nested
// nurseries) and Cancelled leaves while it travels outward; each cancel scope removes the
// Cancelled leaves that belong to it.
//
//   try {
//     open_nursery([](Nursery& n) { n.start_soon(fails_with_value_error); });
//   } catch (const ExceptionGroup& group) {
//     if (group.contains<std::invalid_argument>()) { ... }
//   }
#pragma once

#include <exception>
#include <string>
#include <vector>

namespace trellis {

class ExceptionGroup : public std::exception {
 public:
  // `loose` marks a group made by a non-strict nursery: when stripping Cancelled leaves leaves
  // it with one member, it collapses to that member (Trio's collapse_exception_group).
  ExceptionGroup(std::string message, std::vector<std::exception_ptr> exceptions,
                 bool loose = false);

  const char* what() const noexcept override { return what_.c_str(); }
  const std::string& message() const noexcept { return message_; }
  const std::vector<std::exception_ptr>& exceptions() const noexcept { return exceptions_; }
  bool loose() const noexcept { return loose_; }

  // True if an exception of type E (or derived) is anywhere in the tree.
  template <class E>
  bool contains() const {
    for (const std::exception_ptr& e : exceptions_) {
      try {
        std::rethrow_exception(e);
      } catch (const E&) {
        return true;
      } catch (const ExceptionGroup& group) {
        if (group.contains<E>()) return true;
      } catch (...) {
      }
    }
    return false;
  }

  // Number of leaves (non-group exceptions) in the tree.
  std::size_t leaf_count() const;

 private:
  std::string message_;
  std::vector<std::exception_ptr> exceptions_;
  bool loose_;
  std::string what_;
};

// A one-line description of any exception: its what() (or Cancelled's message), or
// "unknown exception". Used in error messages and task dumps.
std::string describe_exception(const std::exception_ptr& error);

namespace internal {

// Removes every Cancelled leaf from `error`. Returns nullptr if nothing is left. Sets
// *matched when at least one Cancelled was removed. Groups keep their nesting; emptied
// subgroups disappear; loose groups left with one member collapse to that member.
std::exception_ptr strip_cancelled(const std::exception_ptr& error, bool* matched);

// True iff `error` holds a Cancelled itself (not a group holding one). False for nullptr.
bool is_cancelled(const std::exception_ptr& error) noexcept;

}  // namespace internal
}  // namespace trellis
