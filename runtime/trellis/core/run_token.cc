// RunToken (core/run_token.h): a handle on a run that other threads may use.
#include "trellis/core/run_token.h"

#include "trellis/core/errors.h"
#include "trellis/core/internal/run_token_state.h"

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
