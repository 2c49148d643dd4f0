#pragma once
// Watches a run's loss and gradient norm for the signs that it cannot
// recover, so that it ends as "diverged" instead of finishing with a useless
// adapter: a non-finite loss or gradient norm, the loss climbing far above
// where the run started, or the gradients vanishing (a collapsed model, e.g.
// lr = 1000 leaves the loss at ln(vocab) and the gradient norm at 0).
#include <cstdint>
#include <deque>
#include <string>

namespace lwb {

class DivergenceGuard {
 public:
  // Steps averaged for the start and the recent loss.
  static constexpr int kWindow = 10;

  // factor: the recent mean loss may reach factor times the start's (0: no
  // limit); collapse_steps: zero gradient norms in a row that count as a
  // collapse (0: never).
  DivergenceGuard(double factor, int collapse_steps) : factor_(factor), collapse_steps_(collapse_steps) {}

  // Checked before the optimiser step: "" when `value` is finite, else
  // "<what> is nan".
  static std::string non_finite(const char* what, double value);
  // After a step: "" while the run is sound, else why it diverged.
  std::string after_step(double loss, double grad_norm);

 private:
  double factor_;
  int collapse_steps_;
  int start_count_ = 0;
  double start_sum_ = 0;
  std::deque<double> recent_;
  double recent_sum_ = 0;
  int zero_norms_ = 0;
};

}  // namespace lwb
