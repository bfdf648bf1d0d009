// trellis/base/source_location.h — trellis::SourceLocation: std::source_location where the
// compiler and library provide it, else the same thing built on the compiler builtins that
// std::source_location itself uses (clang 14 with libstdc++ 12 has the header but not the
// type: it needs __builtin_source_location, from clang 15; the `fuzz` preset uses clang 14).
//
//   void acquire(SourceLocation site = SourceLocation::current());   // the caller's place
#pragma once

#include <cstdint>
#if __has_include(<source_location>)
#include <source_location>
#endif

namespace trellis {

#if defined(__cpp_lib_source_location)
using SourceLocation = std::source_location;
#else
// The subset of std::source_location that Trellis uses, with the same meaning.
class SourceLocation {
 public:
  static constexpr SourceLocation current(
      const char* file = __builtin_FILE(), const char* function = __builtin_FUNCTION(),
      std::uint_least32_t line = __builtin_LINE(),
      std::uint_least32_t column = __builtin_COLUMN()) noexcept {
    SourceLocation site;
    site.file_ = file;
    site.function_ = function;
    site.line_ = line;
    site.column_ = column;
    return site;
  }
  constexpr SourceLocation() noexcept = default;
  constexpr const char* file_name() const noexcept { return file_; }
  constexpr const char* function_name() const noexcept { return function_; }
  constexpr std::uint_least32_t line() const noexcept { return line_; }
  constexpr std::uint_least32_t column() const noexcept { return column_; }

 private:
  const char* file_ = "";
  const char* function_ = "";
  std::uint_least32_t line_ = 0;
  std::uint_least32_t column_ = 0;
};
#endif

}  // namespace trellis
