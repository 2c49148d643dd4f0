#pragma once
// Singular values and vectors (LAPACK dgesdd from OpenBLAS) and numerical
// rank: ReLoRA's report of how the accumulated update grows past r, the
// truncated SVD of an update into LoRA factors, PiSSA's initialisation.
#include <vector>

namespace lwb {

// Singular values of a row-major [rows, cols] matrix, largest first.
std::vector<double> singular_values(std::vector<double> a, int rows, int cols);
// Count of singular values above rel_tol * the largest (0 for a zero matrix).
int numerical_rank(const std::vector<double>& singular, double rel_tol);

// The k largest singular triplets of a row-major [rows, cols] matrix M:
// M ≈ U diag(S) Vt with U [rows, k], S [k] (largest first), Vt [k, cols],
// all row-major. Error naming dgesdd when LAPACK does not converge.
struct SingularTriplets {
  int k = 0;
  std::vector<double> U, S, Vt;
  double relative_error = 0;  // ||M - U S Vt||_F / ||M||_F (0 for a zero M)
};
SingularTriplets top_singular_triplets(std::vector<double> a, int rows, int cols, int k);

}  // namespace lwb
