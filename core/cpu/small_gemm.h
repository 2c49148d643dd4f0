#pragma once
// The decoder's linear products with few rows (a decode step: one row per
// sequence): y[M, N] = x[M, K] · W[N, K]^T as N dot products over W's rows,
// each weight read once from memory, no packing. BLAS packs the whole weight
// matrix on every call, which for M = 1 costs more than the product, and a
// decode step is bound by the bytes of weights it reads; so the weights may
// stay in the GGUF blocks they were loaded from (4.5 to 8.5 bits a weight
// instead of 32), dequantised in registers block by block.
//
// A block is turned into floats exactly as core/format/gguf_quants.cpp's
// dequantize does it (the same f16 scale conversion and the same
// multiply-add, whose product is exact, so fusing it changes nothing): the
// weights are bit-identical to the fp32 copy, and only the dot product's
// summation order differs from cpu::gemm. Accumulation is in fp32.
//
// The loops are compiled three times: for AVX-512, for AVX2+FMA, and for the
// build's baseline ISA (the portable fallback); the best that the running
// CPU supports is picked at run time, since the build is not -march=native.
#include <cstddef>
#include <cstdint>

namespace lwb::cpu {

// How W's rows are stored. Q4_0, Q4_1 and Q8_0 are ggml's block layouts
// (ggml-common.h, gguf_quants.cpp): rows of K / 32 blocks.
enum class WeightLayout { F32, Q4_0, Q4_1, Q8_0 };

struct SmallGemmWeights {
  WeightLayout layout = WeightLayout::F32;
  const void* data = nullptr;  // rows * row_bytes bytes
  std::int64_t rows = 0;       // N
  std::int64_t cols = 0;       // K; a multiple of 32 for the block layouts
  std::size_t row_bytes = 0;   // bytes from one row to the next
};

// Rows of x one call takes; more rows are BLAS's business (they amortise its packing).
constexpr std::int64_t kSmallGemmMaxRows = 16;

enum class Simd { Baseline, Avx2, Avx512 };
const char* simd_name(Simd simd);
// Whether this CPU runs the path (Baseline always).
bool simd_supported(Simd simd);
// The fastest path this CPU runs.
Simd best_simd();

// Bytes of one row of `cols` weights in `layout`; std::invalid_argument when
// cols is not whole blocks.
std::size_t weight_row_bytes(WeightLayout layout, std::int64_t cols);

// y[m * ldy + n] = sum_k x[m * ldx + k] · W[n, k] for m < M, n < w.rows,
// OpenMP over blocks of output columns. std::invalid_argument for M outside
// 1..kSmallGemmMaxRows, a bad shape, or a path this CPU does not run.
void small_gemm(const float* x, std::int64_t ldx, std::int64_t M, const SmallGemmWeights& w, float* y,
                std::int64_t ldy, Simd simd = best_simd());

}  // namespace lwb::cpu
