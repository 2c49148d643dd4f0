#include "core/train/divergence.h"

#include <cmath>
#include <cstdio>

namespace lwb {

namespace {
std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}
}  // namespace

std::string DivergenceGuard::non_finite(const char* what, double value) {
  return std::isfinite(value) ? std::string() : std::string(what) + " is " + number(value);
}

std::string DivergenceGuard::after_step(double loss, double grad_norm) {
  zero_norms_ = grad_norm == 0 ? zero_norms_ + 1 : 0;
  if (collapse_steps_ > 0 && zero_norms_ >= collapse_steps_)
    return "the gradient norm has been 0 for " + std::to_string(zero_norms_) +
           " steps in a row (the model has collapsed: nothing more can be learned)";
  if (start_count_ < kWindow) {
    start_sum_ += loss;
    ++start_count_;
  }
  recent_.push_back(loss);
  recent_sum_ += loss;
  if (static_cast<int>(recent_.size()) > kWindow) {
    recent_sum_ -= recent_.front();
    recent_.pop_front();
  }
  if (factor_ <= 0 || start_count_ < kWindow || static_cast<int>(recent_.size()) < kWindow) return {};
  const double start = start_sum_ / kWindow, now = recent_sum_ / kWindow;
  if (now > factor_ * start)
    return "the loss averaged over the last " + std::to_string(kWindow) + " steps (" + number(now) + ") is above " +
           number(factor_) + " times that of the first " + std::to_string(kWindow) + " (" + number(start) + ")";
  return {};
}

}  // namespace lwb
