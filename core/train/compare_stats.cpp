#include "core/train/compare_stats.h"

#include <cmath>
#include <cstdio>
#include <limits>
#include <stdexcept>
#include <vector>


namespace lwb {

namespace {

// Continued fraction of the regularized incomplete beta function, evaluated
// by the modified Lentz method (Numerical Recipes, 3rd ed., §6.4).
double beta_continued_fraction(double a, double b, double x) {
  constexpr double tiny = 1e-300, eps = 1e-16;
  const double qab = a + b, qap = a + 1, qam = a - 1;
  double c = 1, d = 1 - qab * x / qap;
  if (std::abs(d) < tiny) d = tiny;
  d = 1 / d;
  double h = d;
  for (int m = 1; m <= 10000; ++m) {
    const int m2 = 2 * m;
    double aa = m * (b - m) * x / ((qam + m2) * (a + m2));
    d = 1 + aa * d;
    if (std::abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (std::abs(c) < tiny) c = tiny;
    d = 1 / d;
    h *= d * c;
    aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
    d = 1 + aa * d;
    if (std::abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (std::abs(c) < tiny) c = tiny;
    d = 1 / d;
    const double del = d * c;
    h *= del;
    if (std::abs(del - 1) < eps) break;
  }
  return h;
}

// I_x(a, b).
double incomplete_beta(double a, double b, double x) {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const double front =
      std::exp(std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) + a * std::log(x) + b * std::log1p(-x));
  // The fraction converges fast on this side of the mean; the other side by symmetry.
  if (x < (a + 1) / (a + b + 2)) return front * beta_continued_fraction(a, b, x) / a;
  return 1 - front * beta_continued_fraction(b, a, 1 - x) / b;
}

void check_df(int df) {
  if (df < 1) throw std::invalid_argument("Student's t needs at least 1 degree of freedom, got " + std::to_string(df));
}

}  // namespace

double student_t_cdf(double t, int df) {
  check_df(df);
  if (std::isnan(t)) return NAN;
  if (std::isinf(t)) return t > 0 ? 1 : 0;
  const double tail = 0.5 * incomplete_beta(df / 2.0, 0.5, df / (df + t * t));
  return t > 0 ? 1 - tail : tail;
}

double student_t_quantile(double p, int df) {
  check_df(df);
  if (!(p > 0 && p < 1)) throw std::invalid_argument("a quantile needs 0 < p < 1, got " + std::to_string(p));
  if (p < 0.5) return -student_t_quantile(1 - p, df);
  if (p == 0.5) return 0;
  // The cdf is increasing: bracket the root, then bisect to the last bit.
  double lo = 0, hi = 1;
  while (student_t_cdf(hi, df) < p) {
    lo = hi;
    hi *= 2;
  }
  for (int i = 0; i < 200 && hi - lo > 1e-15 * hi; ++i) {
    const double mid = 0.5 * (lo + hi);
    (student_t_cdf(mid, df) < p ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}

Interval mean_interval(std::span<const double> values, double confidence) {
  if (!(confidence > 0 && confidence < 1))
    throw std::invalid_argument("a confidence level must be in (0, 1), got " + std::to_string(confidence));
  Interval r;
  r.confidence = confidence;
  double sum = 0;
  for (double v : values) {
    if (std::isfinite(v)) {
      sum += v;
      ++r.n;
    } else {
      ++r.missing;
    }
  }
  if (r.n == 0) {
    r.mean = r.sd = r.lo = r.hi = NAN;
    return r;
  }
  r.mean = sum / r.n;
  if (r.n < 2) {
    r.sd = r.lo = r.hi = NAN;
    return r;
  }
  double ss = 0;
  for (double v : values)
    if (std::isfinite(v)) ss += (v - r.mean) * (v - r.mean);
  r.sd = std::sqrt(ss / (r.n - 1));
  const double half = student_t_quantile(0.5 + confidence / 2, r.n - 1) * r.sd / std::sqrt(static_cast<double>(r.n));
  r.lo = r.mean - half;
  r.hi = r.mean + half;
  return r;
}

Interval paired_difference(std::span<const double> a, std::span<const double> b, double confidence) {
  if (a.size() != b.size())
    throw std::invalid_argument("a paired difference needs as many values in each arm (" + std::to_string(a.size()) +
                                " vs " + std::to_string(b.size()) + ")");
  std::vector<double> d(a.size());
  for (std::size_t i = 0; i < a.size(); ++i) d[i] = b[i] - a[i];  // NaN when either is
  return mean_interval(d, confidence);
}

std::string interval_text(const Interval& i, double scale, int decimals, bool sign, const std::string& unit) {
  if (i.n == 0) return "-";
  char buf[96];
  std::snprintf(buf, sizeof(buf), sign ? "%+.*f" : "%.*f", decimals, scale * i.mean);
  std::string out = buf;
  if (!i.has_spread()) return out + unit + " (one seed, no interval)";
  std::snprintf(buf, sizeof(buf), " ± %.*f", decimals, scale * i.half_width());
  return out + buf + unit;
}

std::string difference_verdict(const std::string& b, const std::string& a, const Interval& d, const std::string& unit,
                               double scale, int decimals) {
  const int percent = static_cast<int>(std::lround(100 * d.confidence));
  std::string verdict;
  if (d.n == 0)
    verdict = "no pair of runs to compare";
  else if (!d.has_spread())
    verdict = "one pair of runs: no interval, not a result";
  else if (d.excludes_zero())
    verdict = b + (d.mean > 0 ? " higher" : " lower") + " at " + std::to_string(percent) + "%";
  else
    verdict = "not distinguishable at " + std::to_string(percent) + "%";
  return b + " − " + a + ": " + interval_text(d, scale, decimals, true) + " " + unit + " — " + verdict;
}

}  // namespace lwb
