// trellis/pipeline/section.h — user-written sections and sequences of sections.
//
// A user section is one function, refine(input, output), run as a task of the pipeline: it
// receives from `input` until it likes (a range-for stops at the end of the input) and sends
// to `output`. Returning ends the section: its input and output are closed, so upstream sees
// that nobody reads any more and downstream sees the end of its input.
//
//   struct Pairs {  // any class with a non-template refine() is a section
//     void refine(MemoryReceiveChannel<int>& input, MemorySendChannel<std::string>& output) {
//       for (int v : input) output.send(std::to_string(v) + "," + std::to_string(v));
//     }
//   };
//   auto p = pipeline::create(nursery, pipeline::Chain(std::move(rx)), Pairs{},
//                             pipeline::Section([](MemoryReceiveChannel<std::string>& in,
//                                                  MemorySendChannel<std::size_t>& out) {
//                               for (std::string& s : in) out.send(s.size());
//                             }));
//
// A refine that takes only the output, refine(MemorySendChannel<T>&), is a source: it can
// only start a pipeline. Sequence(sections...) (or a std::tuple of sections) welds several
// sections into one, usable anywhere a single section is.
#pragma once

#include <tuple>
#include <type_traits>
#include <utility>

#include "trellis/channel/memory_channel.h"
#include "trellis/pipeline/internal/section_traits.h"

namespace trellis::pipeline {
namespace internal {

// The types a refine signature names: input_type for (input, output), source_output for
// (output) alone.
template <class Sig, int Arity = Sig::arity>
struct RefineTypes {};
template <class Sig>
struct RefineTypes<Sig, 2> {
  using input_type = typename Sig::input;
};
template <class Sig>
struct RefineTypes<Sig, 1> {
  using source_output = typename Sig::output;
};

// Adapts a user object (a class with refine(), or a callable) to the built-in section shape.
template <class S, class Sig>
class UserRefine : public SectionTag, public RefineTypes<Sig> {
  static_assert(Sig::arity != 0,
                "pipeline section: refine must be a non-template member returning void and taking "
                "(MemoryReceiveChannel<A>&, MemorySendChannel<B>&) or (MemorySendChannel<B>&)");

 public:
  static constexpr const char* kName = "pipeline.Section";
  explicit UserRefine(S s) : s_(std::move(s)) {}

  template <class In>
  using output = typename Sig::output;

  template <class In>
  void refine(MemoryReceiveChannel<In>& input, MemorySendChannel<typename Sig::output>& output) {
    if constexpr (Sig::arity == 1) {
      static_assert(Sig::arity == 2,
                    "pipeline section: a refine(output) section is a source; it can only start a "
                    "pipeline");
    } else {
      static_assert(std::is_same_v<In, typename Sig::input>,
                    "pipeline section: refine's input type differs from the upstream output type");
      call(input, output);
    }
  }
  void refine(MemorySendChannel<typename Sig::output>& output) requires(Sig::arity == 1) {
    call(output);
  }

 private:
  template <class... A>
  void call(A&... args) {
    if constexpr (HasPlainRefine<S>) {
      s_.refine(args...);
    } else {
      s_(args...);
    }
  }

  S s_;
};

template <class S>
using UserSection = UserRefine<S, RefineSignature<decltype(&S::refine)>>;

}  // namespace internal

// A section from a callable: fn(MemoryReceiveChannel<A>&, MemorySendChannel<B>&), or
// fn(MemorySendChannel<B>&) for a source. The parameter types must be concrete (no auto).
template <class F>
class Section
    : public internal::UserRefine<F, internal::RefineSignature<decltype(&F::operator())>> {
 public:
  explicit Section(F fn)
      : internal::UserRefine<F, internal::RefineSignature<decltype(&F::operator())>>(
            std::move(fn)) {}
};
template <class F>
Section(F) -> Section<F>;

// Several sections welded one after another, used as one section (Slurry's tuple of
// sections). The first may be a source only where the sequence starts a pipeline.
template <class... S>
class Sequence : public internal::SectionTag {
  static_assert(sizeof...(S) > 0, "pipeline::Sequence needs at least one section");

 public:
  explicit Sequence(S... sections) : sections(std::move(sections)...) {}
  std::tuple<S...> sections;
};
template <class... S>
Sequence(S...) -> Sequence<S...>;

namespace internal {
template <class T>
inline constexpr bool is_sequence_v = false;
template <class... S>
inline constexpr bool is_sequence_v<Sequence<S...>> = true;
}  // namespace internal

}  // namespace trellis::pipeline
