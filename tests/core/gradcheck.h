#pragma once
// Finite-difference gradient checking in double precision on the CPU backend
// (the model is ggml's test-backend-ops grad mode): a scalar loss is formed as
// <output, R> with a fixed random R, the analytic gradients come from the op's
// backward with dout = R, and every (or a sampled subset of) input element is
// perturbed by +-h with central differences.
#include <QtTest>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "core/cpu/cpu_backend.h"
#include "core/model/weights_init.h"
#include "core/tensor/rng.h"

namespace lwb::test {

inline Tensor random_tensor(Backend& be, Shape shape, std::uint64_t seed, double scale = 1.0,
                            DType dtype = DType::F64) {
  Tensor t = make_tensor(be, shape, dtype);
  upload_values(be, t, normal_values(shape.numel(), scale, seed));
  return t;
}

inline double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (std::size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

struct GradInput {
  std::string name;
  Tensor value;  // F64 on the CPU backend
  Tensor grad;   // analytic gradient, filled by `backward`
};

// Returns the worst relative error ||analytic - numeric|| / ||numeric|| over the
// inputs, printing one line per input. At most max_elems elements per input are
// perturbed (spread evenly), which keeps big checks fast while touching every
// part of each tensor. The derivative uses the 4-point stencil
// (8(f(x+h) - f(x-h)) - (f(x+2h) - f(x-2h))) / 12h: its O(h^4) truncation error
// lets h be large enough that rounding stays near 1e-12 even through a whole model.
inline double gradcheck(const std::string& label, Backend& be, std::vector<GradInput>& inputs,
                        const std::function<double()>& loss, const std::function<void()>& backward,
                        int max_elems = 400, double h = 1e-4) {
  for (auto& in : inputs) be.fill(in.grad, 0.0);
  backward();
  // Read every analytic gradient before any perturbed evaluation: a loss
  // function may touch gradient buffers too (regularisers add into them).
  std::vector<std::vector<double>> analytic_all;
  for (auto& in : inputs) analytic_all.push_back(download_values(be, in.grad));
  double worst = 0;
  for (std::size_t k = 0; k < inputs.size(); ++k) {
    GradInput& in = inputs[k];
    std::vector<double> values = download_values(be, in.value);
    const std::vector<double>& analytic = analytic_all[k];
    const std::int64_t n = in.value.numel();
    const std::int64_t stride = std::max<std::int64_t>(1, n / max_elems);
    double diff2 = 0, ref2 = 0;
    for (std::int64_t i = 0; i < n; i += stride) {
      const double orig = values[i];
      auto at = [&](double delta) {
        values[i] = orig + delta;
        upload_values(be, in.value, values);
        return loss();
      };
      const double numeric = (8 * (at(h) - at(-h)) - (at(2 * h) - at(-2 * h))) / (12 * h);
      values[i] = orig;
      upload_values(be, in.value, values);
      diff2 += (numeric - analytic[i]) * (numeric - analytic[i]);
      ref2 += numeric * numeric;
    }
    const double rel = std::sqrt(diff2) / std::max(std::sqrt(ref2), 1e-30);
    qInfo("gradcheck %-28s %-14s rel err %.3e (|grad| %.3e)", label.c_str(), in.name.c_str(), rel,
          std::sqrt(ref2));
    if (!(ref2 > 0)) {
      qWarning("gradcheck %s %s: numeric gradient is zero; the check would be vacuous",
               label.c_str(), in.name.c_str());
      return 1.0;
    }
    worst = std::max(worst, rel);
  }
  return worst;
}

}  // namespace lwb::test
