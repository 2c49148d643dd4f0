#include "core/adapters/numerical_rank.h"

#include <algorithm>
#include <stdexcept>
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

}  // namespace lwb
