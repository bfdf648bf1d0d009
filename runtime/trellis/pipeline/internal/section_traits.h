// trellis/pipeline/internal/section_traits.h — what the welder needs to know about a section
// type: is it a section at all, can it start a pipeline, which input type it names.
//
// A built-in section derives from SectionTag and declares
//   template <class In> using output = ...;      // its output type given input In
//   template <class In> void refine(MemoryReceiveChannel<In>&, MemorySendChannel<output<In>>&);
// and, if it can start a pipeline (a source),
//   using source_output = T;  void refine(MemorySendChannel<T>&);
// A section whose input type is fixed (a Map over a lambda taking `int`) also declares
//   using input_type = int;
// which is how extend() learns the type of the pipeline it extends.
#pragma once

#include <cstddef>
#include <tuple>
#include <type_traits>

#include "trellis/channel/memory_channel.h"

namespace trellis::pipeline::internal {

// The base of every section type the welder accepts (built-in, Section<F>, Sequence).
struct SectionTag {};

template <class S>
using Plain = std::remove_cvref_t<S>;

// The value type of a memory channel handle.
template <class C>
struct ChannelValue;
template <class T>
struct ChannelValue<MemoryReceiveChannel<T>> {
  using type = T;
};
template <class T>
struct ChannelValue<MemorySendChannel<T>> {
  using type = T;
};
template <class C>
using channel_value_t = typename ChannelValue<Plain<C>>::type;

// ---- the first parameter type of a non-generic callable (lambda, function, functor) -----
template <class M>
struct MemberFirstArgument {};
template <class R, class C, class A, class... More>
struct MemberFirstArgument<R (C::*)(A, More...)> {
  using input_type = std::decay_t<A>;
};
template <class R, class C, class A, class... More>
struct MemberFirstArgument<R (C::*)(A, More...) const> {
  using input_type = std::decay_t<A>;
};
template <class R, class C, class A, class... More>
struct MemberFirstArgument<R (C::*)(A, More...) noexcept> {
  using input_type = std::decay_t<A>;
};
template <class R, class C, class A, class... More>
struct MemberFirstArgument<R (C::*)(A, More...) const noexcept> {
  using input_type = std::decay_t<A>;
};

// Defines `input_type` when F's argument type can be read off its signature; a generic
// lambda defines nothing (such a section cannot start an extend() without naming the type).
template <class F, class = void>
struct CallableInput {};
template <class F>
struct CallableInput<F, std::void_t<decltype(&F::operator())>>
    : MemberFirstArgument<decltype(&F::operator())> {};
template <class R, class A, class... More>
struct CallableInput<R (*)(A, More...), void> {
  using input_type = std::decay_t<A>;
};

// ---- refine signatures of user sections -------------------------------------------------
// RefineSignature<&S::refine or &F::operator()>: arity 2 (input, output) or 1 (output only).
template <class M>
struct RefineSignature {
  static constexpr int arity = 0;
};
template <class C, class A, class B>
struct RefineSignature<void (C::*)(MemoryReceiveChannel<A>&, MemorySendChannel<B>&)> {
  static constexpr int arity = 2;
  using input = A;
  using output = B;
};
template <class C, class B>
struct RefineSignature<void (C::*)(MemorySendChannel<B>&)> {
  static constexpr int arity = 1;
  using output = B;
};
template <class C, class... P>
struct RefineSignature<void (C::*)(P...) const> : RefineSignature<void (C::*)(P...)> {};

template <class S>
concept HasPlainRefine = requires {
  &S::refine;
};
template <class S>
concept HasCallOperator = requires {
  &S::operator();
};

// ---- classification used by weld() ----------------------------------------------------
template <class S>
inline constexpr bool is_section_v = std::is_base_of_v<SectionTag, Plain<S>>;

template <class S>
concept SourceSection = is_section_v<S> && requires {
  typename Plain<S>::source_output;
};

template <class S>
concept NamesInput = requires {
  typename Plain<S>::input_type;
};

template <class T>
inline constexpr bool is_tuple_v = false;
template <class... T>
inline constexpr bool is_tuple_v<std::tuple<T...>> = true;

}  // namespace trellis::pipeline::internal
