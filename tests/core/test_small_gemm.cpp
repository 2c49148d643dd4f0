// The decoder's small-batch linear kernel (core/cpu/small_gemm) against the
// reference: the weights dequantised by core/format/gguf_quants and
// multiplied by cpu::gemm, for every layout, every SIMD path this CPU runs
// (and the baseline fallback), M = 1..16 and odd shapes. The weights must be
// gguf_quants' to the bit (shown with one-hot rows of x, whose products are
// the weights themselves, up to the sign of zero); the products differ only by summation order, so
// the tolerance is relative to the sum of |x_k w_k| of each dot.
#include <QtTest>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <span>
#include <vector>

#include "core/common/half.h"
#include "core/cpu/kernels.h"
#include "core/cpu/small_gemm.h"
#include "core/format/gguf_quants.h"
#include "expect_throw.h"
#include "gemm_fixtures.h"

using namespace lwb;
using cpu::Simd;
using test::simd_paths;
using cpu::WeightLayout;
using format::GgmlType;

namespace {

struct Case {
  WeightLayout layout;
  GgmlType type;
};
constexpr Case kCases[] = {{WeightLayout::F32, GgmlType::F32},
                           {WeightLayout::Q4_0, GgmlType::Q4_0},
                           {WeightLayout::Q4_1, GgmlType::Q4_1},
                           {WeightLayout::Q8_0, GgmlType::Q8_0}};

// Random blocks of `type`: random level bytes, and scales drawn as f16 of
// both signs over a wide range (subnormal ones too), as a real file may hold.
std::vector<std::uint8_t> random_blocks(GgmlType type, std::int64_t n, std::int64_t k, std::mt19937& rng) {
  const format::GgmlTypeInfo& t = format::ggml_type_info(type);
  std::vector<std::uint8_t> bytes(static_cast<std::size_t>(n * k / t.block_size * t.type_size));
  std::uniform_int_distribution<int> byte(0, 255);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  if (type == GgmlType::F32) {
    for (std::size_t i = 0; i < bytes.size(); i += 4) {
      const float v = normal(rng);
      std::memcpy(&bytes[i], &v, 4);
    }
    return bytes;
  }
  for (auto& b : bytes) b = static_cast<std::uint8_t>(byte(rng));
  const std::size_t scales = type == GgmlType::Q4_1 ? 2 : 1;
  std::uniform_real_distribution<float> exponent(-26.0f, -2.0f);
  for (std::size_t at = 0; at < bytes.size(); at += t.type_size)
    for (std::size_t s = 0; s < scales; ++s) {
      const float v = std::exp2(exponent(rng)) * (byte(rng) < 128 ? -1.0f : 1.0f);
      const std::uint16_t h = f32_to_f16(v);
      std::memcpy(&bytes[at + 2 * s], &h, 2);
    }
  return bytes;
}

}  // namespace

class TestSmallGemm : public QObject {
  Q_OBJECT
 private slots:
  void paths_of_this_cpu() {
    qInfo("small_gemm paths run here: %s", [] {
      static std::string names;
      for (Simd s : simd_paths()) names += std::string(cpu::simd_name(s)) + " ";
      return names.c_str();
    }());
    QVERIFY(cpu::simd_supported(Simd::Baseline));
    QVERIFY(cpu::simd_supported(cpu::best_simd()));
  }

  // y against dequantize + cpu::gemm, M = 1..16, N and K odd where the layout allows.
  void matches_reference() {
    std::mt19937 rng(7);
    for (const Case& c : kCases) {
      const bool blocks = c.layout != WeightLayout::F32;
      for (auto [N, K] : {std::pair<std::int64_t, std::int64_t>{37, blocks ? 96 : 75}, {5, blocks ? 32 : 3},
                          {130, blocks ? 576 : 577}}) {
        const std::vector<std::uint8_t> w = random_blocks(c.type, N, K, rng);
        std::vector<float> dense(static_cast<std::size_t>(N * K));
        format::dequantize(c.type, std::as_bytes(std::span(w)), dense);
        for (std::int64_t M = 1; M <= cpu::kSmallGemmMaxRows; ++M) {
          const std::int64_t ldx = K + 3, ldy = N + 2;  // strided rows, as the decoder's views may be
          std::vector<float> x(static_cast<std::size_t>(M * ldx));
          std::normal_distribution<float> normal(0.0f, 1.0f);
          for (float& v : x) v = normal(rng);
          std::vector<float> ref(static_cast<std::size_t>(M * N)), mag(ref.size());
          cpu::gemm<float>(false, true, M, N, K, 1.0f, x.data(), ldx, dense.data(), K, 0.0f, ref.data(), N);
          for (std::int64_t m = 0; m < M; ++m)
            for (std::int64_t n = 0; n < N; ++n) {
              double s = 0;
              for (std::int64_t k = 0; k < K; ++k) s += std::fabs(double(x[m * ldx + k]) * dense[n * K + k]);
              mag[m * N + n] = static_cast<float>(s);
            }
          const cpu::SmallGemmWeights sw{c.layout, w.data(), N, K, cpu::weight_row_bytes(c.layout, K)};
          for (Simd s : simd_paths()) {
            std::vector<float> y(static_cast<std::size_t>(M * ldy), -1.0f);
            cpu::small_gemm(x.data(), ldx, M, sw, y.data(), ldy, s);
            for (std::int64_t m = 0; m < M; ++m)
              for (std::int64_t n = 0; n < N; ++n) {
                // fp32 sums of K terms in two orders: each within K·eps of the magnitude.
                const double tol = 2.0 * K * 0x1p-24 * mag[m * N + n] + 1e-30;
                const double err = std::fabs(double(y[m * ldy + n]) - ref[m * N + n]);
                if (err > tol)
                  QFAIL(qPrintable(QString("%1 %2 M=%3 N=%4 K=%5: y[%6,%7] = %8, reference %9 (tolerance %10)")
                                       .arg(format::ggml_type_name(c.type), cpu::simd_name(s))
                                       .arg(M).arg(N).arg(K).arg(m).arg(n)
                                       .arg(y[m * ldy + n], 0, 'g', 9).arg(ref[m * N + n], 0, 'g', 9).arg(tol)));
              }
            for (std::int64_t m = 0; m < M; ++m)  // the padding between rows is left alone
              for (std::int64_t n = N; n < ldy; ++n) QCOMPARE(y[m * ldy + n], -1.0f);
          }
        }
      }
    }
  }

  // Row k of x one-hot: y[., n] is W[n, k] exactly, so every weight the
  // kernel makes is compared with gguf_quants' bit for bit.
  void weights_are_bit_identical() {
    std::mt19937 rng(11);
    for (const Case& c : kCases) {
      const std::int64_t N = 9, K = 64;
      const std::vector<std::uint8_t> w = random_blocks(c.type, N, K, rng);
      std::vector<float> dense(static_cast<std::size_t>(N * K));
      format::dequantize(c.type, std::as_bytes(std::span(w)), dense);
      const cpu::SmallGemmWeights sw{c.layout, w.data(), N, K, cpu::weight_row_bytes(c.layout, K)};
      for (Simd s : simd_paths())
        for (std::int64_t k0 = 0; k0 < K; k0 += cpu::kSmallGemmMaxRows) {
          const std::int64_t M = cpu::kSmallGemmMaxRows;
          std::vector<float> x(static_cast<std::size_t>(M * K), 0.0f), y(static_cast<std::size_t>(M * N));
          for (std::int64_t m = 0; m < M; ++m) x[m * K + k0 + m] = 1.0f;
          cpu::small_gemm(x.data(), K, M, sw, y.data(), N, s);
          for (std::int64_t m = 0; m < M; ++m)
            for (std::int64_t n = 0; n < N; ++n)
              // == and not memcmp: a sum that starts at +0 cannot give -0 (0 · -d).
              if (!(y[m * N + n] == dense[n * K + k0 + m]))
                QFAIL(qPrintable(QString("%1 %2: weight [%3, %4] is %5, gguf_quants gives %6")
                                     .arg(format::ggml_type_name(c.type), cpu::simd_name(s))
                                     .arg(n).arg(k0 + m).arg(y[m * N + n], 0, 'g', 9)
                                     .arg(dense[n * K + k0 + m], 0, 'g', 9)));
        }
    }
  }

  void bad_calls() {
    std::vector<float> x(64), y(64);
    std::vector<std::uint8_t> w(2 * 20);
    const cpu::SmallGemmWeights sw{WeightLayout::Q4_1, w.data(), 2, 32, 20};
    EXPECT_THROW_WITH(std::invalid_argument, cpu::small_gemm(x.data(), 32, 0, sw, y.data(), 2), "0 rows");
    EXPECT_THROW_WITH(std::invalid_argument, cpu::small_gemm(x.data(), 32, 17, sw, y.data(), 2), "expected 1..16");
    EXPECT_THROW_WITH(std::invalid_argument, cpu::weight_row_bytes(WeightLayout::Q8_0, 33), "not whole blocks of 32");
    const cpu::SmallGemmWeights short_rows{WeightLayout::Q4_1, w.data(), 2, 32, 18};
    EXPECT_THROW_WITH(std::invalid_argument, cpu::small_gemm(x.data(), 32, 1, short_rows, y.data(), 2), "bad shape");
  }
};

QTEST_APPLESS_MAIN(TestSmallGemm)
#include "test_small_gemm.moc"
