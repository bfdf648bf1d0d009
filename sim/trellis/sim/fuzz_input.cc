#include "trellis/sim/fuzz_input.h"

#include <algorithm>

namespace trellis::sim {
namespace {

class Reader {
 public:
  explicit Reader(std::span<const std::uint8_t> bytes) : bytes_(bytes) {}
  std::uint8_t u8() { return at_ < bytes_.size() ? bytes_[at_++] : 0; }
  std::uint16_t u16() {
    const std::uint16_t low = u8();
    return static_cast<std::uint16_t>(low | (u8() << 8));
  }
  std::size_t remaining() const { return bytes_.size() - std::min(at_, bytes_.size()); }

 private:
  std::span<const std::uint8_t> bytes_;
  std::size_t at_ = 0;
};

// fraction / 65536 of span.
Duration scaled(std::uint16_t fraction, Duration span) {
  return Duration(
      static_cast<Duration::rep>(static_cast<__int128>(span.count()) * fraction / 65536));
}

}  // namespace

FuzzInput decode_fuzz_input(std::span<const std::uint8_t> bytes, const FuzzLimits& limits) {
  Reader in(bytes);
  FuzzInput out;
  out.seed = in.u16();
  const std::size_t faults = in.u8() % (limits.faults_max + 1);
  constexpr auto kKinds = static_cast<std::uint32_t>(PlannedFault::Kind::kCount);
  for (std::size_t i = 0; i < faults; ++i) {
    PlannedFault f;
    f.kind = static_cast<PlannedFault::Kind>(in.u8() % kKinds);
    f.at = scaled(in.u16(), limits.horizon);
    f.a = in.u8();
    f.b = in.u8();
    if (f.kind == PlannedFault::Kind::kSignal) f.b = 1 + f.b % kPlannedSignalMax;
    f.duration = scaled(in.u16(), limits.horizon / 2);
    f.latency = std::chrono::microseconds(200) * in.u8();
    out.fault_plan.faults.push_back(f);
  }
  const std::size_t decisions = std::min(in.remaining(), limits.decisions_max);
  out.decisions.reserve(decisions);
  for (std::size_t i = 0; i < decisions; ++i) out.decisions.push_back(in.u8());
  return out;
}

}  // namespace trellis::sim
