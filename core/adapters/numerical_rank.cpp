#include "core/adapters/numerical_rank.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "core/common/errors.h"
#include <string>

extern "C" void dgesdd_(const char* jobz, const int* m, const int* n, double* a, const int* lda, double* s,
                        double* u, const int* ldu, double* vt, const int* ldvt, double* work,
                        const int* lwork, int* iwork, int* info);

namespace lwb {

std::vector<double> singular_values(std::vector<double> a, int rows, int cols) {
  // LAPACK is column-major: the row-major [rows, cols] buffer is its transpose,
  // which has the same singular values.
  const int m = cols, n = rows, lda = cols, one = 1;
  std::vector<double> s(static_cast<std::size_t>(std::min(m, n)));
  std::vector<int> iwork(static_cast<std::size_t>(8 * std::min(m, n)));
  double query = 0;
  int lwork = -1, info = 0;
  dgesdd_("N", &m, &n, a.data(), &lda, s.data(), nullptr, &one, nullptr, &one, &query, &lwork, iwork.data(), &info);
  lwork = static_cast<int>(query);
  std::vector<double> work(static_cast<std::size_t>(std::max(lwork, 1)));
  dgesdd_("N", &m, &n, a.data(), &lda, s.data(), nullptr, &one, nullptr, &one, work.data(), &lwork, iwork.data(),
          &info);
  if (info != 0) throw std::runtime_error("dgesdd failed with info " + std::to_string(info));
  return s;
}

int numerical_rank(const std::vector<double>& singular, double rel_tol) {
  if (singular.empty() || singular.front() <= 0) return 0;
  const double cut = rel_tol * singular.front();
  return static_cast<int>(std::count_if(singular.begin(), singular.end(), [&](double v) { return v > cut; }));
}

SingularTriplets top_singular_triplets(std::vector<double> a, int rows, int cols, int k) {
  // LAPACK is column-major, so it sees the row-major buffer as M^T [cols, rows]
  // = U' S V'^T; hence M = V' S U'^T: M's left vectors are the rows of V'^T
  // and its right vectors the columns of U'.
  const int lm = cols, ln = rows, p = std::min(rows, cols);
  if (k < 0 || k > p)
    throw Error("top_singular_triplets: k = " + std::to_string(k) + " outside [0, " +
                                std::to_string(p) + "]");
  std::vector<double> s(static_cast<std::size_t>(p)), u(static_cast<std::size_t>(lm) * p),
      vt(static_cast<std::size_t>(p) * ln);
  std::vector<int> iwork(8 * static_cast<std::size_t>(p));
  int info = 0, lwork = -1;
  double query = 0;
  dgesdd_("S", &lm, &ln, a.data(), &lm, s.data(), u.data(), &lm, vt.data(), &p, &query, &lwork, iwork.data(),
          &info);
  lwork = static_cast<int>(query);
  std::vector<double> work(static_cast<std::size_t>(std::max(lwork, 1)));
  dgesdd_("S", &lm, &ln, a.data(), &lm, s.data(), u.data(), &lm, vt.data(), &p, work.data(), &lwork, iwork.data(),
          &info);
  if (info != 0) throw Error("SVD (LAPACK dgesdd) did not converge, info " + std::to_string(info));
  SingularTriplets t;
  t.k = k;
  const std::size_t K = static_cast<std::size_t>(k), R = static_cast<std::size_t>(rows),
                    C = static_cast<std::size_t>(cols);
  t.S.assign(s.begin(), s.begin() + k);
  t.U.resize(R * K);
  t.Vt.resize(K * C);
  for (std::size_t j = 0; j < K; ++j) {
    for (std::size_t c = 0; c < C; ++c) t.Vt[j * C + c] = u[j * C + c];
    for (std::size_t r = 0; r < R; ++r) t.U[r * K + j] = vt[j + r * static_cast<std::size_t>(p)];
  }
  double total = 0, dropped = 0;
  for (int j = 0; j < p; ++j) {
    total += s[j] * s[j];
    if (j >= k) dropped += s[j] * s[j];
  }
  t.relative_error = total > 0 ? std::sqrt(dropped / total) : 0.0;
  return t;
}

}  // namespace lwb
