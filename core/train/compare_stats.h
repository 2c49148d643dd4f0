#pragma once
// The statistics a comparison reports: the mean of a metric over training
// seeds with its Student-t confidence interval, and the paired difference of
// two arms run on the same seeds. Few seeds (3 to 10) is the normal case, so
// the t quantile is computed exactly for any degrees of freedom rather than
// approximated by the normal one (at n = 3 the 95% half-width is 4.30 standard
// errors, not 1.96).
#include <span>
#include <string>

namespace lwb {

// Quantile of Student's t distribution with `df` degrees of freedom (df >= 1,
// 0 < p < 1): t_p such that P(T <= t_p) = p. Accurate to about 1e-12.
double student_t_quantile(double p, int df);
// P(T <= t) for Student's t with `df` degrees of freedom.
double student_t_cdf(double t, int df);

// A mean with its two-sided confidence interval. n < 2 has no spread: sd and
// the bounds are NaN. Values that are NaN (a run that failed) are left out
// and counted in `missing`.
struct Interval {
  int n = 0;
  int missing = 0;
  double mean = 0, sd = 0;  // sd with n - 1 in the denominator
  double lo = 0, hi = 0;
  double confidence = 0.95;
  double half_width() const { return (hi - lo) / 2; }
  bool has_spread() const { return n >= 2; }
  bool excludes_zero() const { return n >= 2 && (lo > 0 || hi < 0); }
};

Interval mean_interval(std::span<const double> values, double confidence = 0.95);
// The interval of the mean of b[i] - a[i] over the pairs where both are
// finite (the same seed in two arms). std::invalid_argument if the lengths
// differ.
Interval paired_difference(std::span<const double> a, std::span<const double> b, double confidence = 0.95);

// "+4.5 ± 6.1" with `decimals` digits after the point, values multiplied by
// `scale` (100 for fractions shown in points) and `unit` after the numbers
// ("45.0 ± 6.1%"); "+4.5 (one seed, no interval)" without spread; "-" when
// nothing was measured.
std::string interval_text(const Interval& i, double scale = 1, int decimals = 1, bool sign = false,
                          const std::string& unit = "");

// "DoRA − LoRA: +4.5 ± 6.1 points exact match — not distinguishable at 95%"
// (or "— B higher at 95%", "— B lower at 95%"); `unit` follows the number
// ("points exact match", "eval loss").
std::string difference_verdict(const std::string& b, const std::string& a, const Interval& d,
                               const std::string& unit, double scale = 1, int decimals = 1);

}  // namespace lwb
