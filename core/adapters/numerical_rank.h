#pragma once
// Singular values (LAPACK dgesdd from OpenBLAS) and numerical rank, for
// ReLoRA's report of how the accumulated update grows past r.
#include <vector>

namespace lwb {

// Singular values of a row-major [rows, cols] matrix, largest first.
std::vector<double> singular_values(std::vector<double> a, int rows, int cols);
// Count of singular values above rel_tol * the largest (0 for a zero matrix).
int numerical_rank(const std::vector<double>& singular, double rel_tol);

}  // namespace lwb
