// Op-by-op comparison of the CUDA backend against the CPU reference. Sizes sit
// on both sides of the kernels' tile and warp edges (1, 7, 31, 32, 33, 63, 64,
// 65, 127, 129, ...), head dims include 64 and odd ones.
//
// Limits (NMSE = sum (cpu - gpu)^2 / sum cpu^2), against the largest error
// measured under the strict emulation (gpu/emulation: kernels in their own
// summation order, cuBLAS blocked, TF32 inputs rounded):
//   fp32 ops            1e-10  (~1e-5 relative); measured 2.3e-13 (column_dot),
//                               fp32 GEMM 1.8e-13, attention backward 2.5e-13
//                               (was 1e-9 for the cancellation in dS = P (dP - D),
//                               which the measurement does not bear out)
//                               attention over a K/V cache 9.2e-14 (hd 256)
//   TF32 GEMM           5e-6   (inputs rounded to 10 mantissa bits: ~2^-11 each);
//                               measured 7.8e-8, about 4x more if the tensor
//                               cores truncate instead of rounding
//   BF16 GEMM           2e-5   (the fp32 operand is rounded to bf16: ~2^-9 each;
//                               the reference multiplies the same bf16 weights in
//                               fp32); measured 2.4e-6, the rounding itself, which
//                               the GPU does with the same kernel
//   sums (scalars)      1e-20  squared relative error (both accumulate in double:
//                               n eps_double bounds it); measured 1.2e-28
//   argmax, dropout mask, fills, I32: exact.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>

#include "core/common/errors.h"
#include "core/common/str_printf.h"
#include "core/model/config.h"
#include "core/model/linear_cross_entropy.h"
#include "core/model/weights_init.h"
#include "harness.h"

namespace lwb::gpucheck {

namespace {

constexpr double kF32 = 1e-10;
constexpr double kTf32 = 5e-6;
constexpr double kBf16 = 2e-5;
constexpr double kScalar = 1e-20;

std::uint64_t g_seed = 1000;
std::uint64_t next_seed() { return ++g_seed; }

std::uint16_t to_bf16(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<std::uint16_t>((u >> 16) | 0x40u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<std::uint16_t>(u >> 16);
}
float from_bf16(std::uint16_t b) {
  const std::uint32_t u = static_cast<std::uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// ---- GEMM ----------------------------------------------------------------------------------

struct GemmShape {
  std::int64_t M, N, K;
};
const GemmShape kGemmShapes[] = {{1, 1, 1},     {7, 33, 65},    {31, 64, 129},  {64, 64, 64},
                                 {65, 127, 63}, {129, 257, 33}, {256, 96, 512}, {33, 1, 300}};

void gemm_fp32(Env& env, Backend& gpu, const std::string& group, double limit) {
  int idx = 0;
  for (const GemmShape& g : kGemmShapes)
    for (int t = 0; t < 4; ++t, ++idx) {
      const bool ta = t & 1, tb = t & 2;
      const std::int64_t pad = (idx % 2) * 3;
      const double alpha = 0.75, beta = idx % 3 == 0 ? 0.0 : 0.5;
      const std::int64_t a_rows = ta ? g.K : g.M, a_cols = ta ? g.M : g.K;
      const std::int64_t b_rows = tb ? g.N : g.K, b_cols = tb ? g.K : g.N;
      const std::int64_t lda = a_cols + pad, ldb = b_cols + pad, ldc = g.N + pad;
      Case c(env.report, group, "gemm",
             str_printf("%c%c M=%lld N=%lld K=%lld ld+%lld b=%.1f", ta ? 'T' : 'N', tb ? 'T' : 'N',
                        (long long)g.M, (long long)g.N, (long long)g.K, (long long)pad, beta),
             limit);
      Pair A = c.f32(env.cpu, gpu, Shape{a_rows * lda}, uniform(a_rows * lda, next_seed()));
      Pair B = c.f32(env.cpu, gpu, Shape{b_rows * ldb}, uniform(b_rows * ldb, next_seed()));
      Pair C = c.f32(env.cpu, gpu, Shape{g.M * ldc}, uniform(g.M * ldc, next_seed()));
      env.cpu.gemm(ta, tb, g.M, g.N, g.K, alpha, A.cpu.t, lda, B.cpu.t, ldb, beta, C.cpu.t, ldc);
      gpu.gemm(ta, tb, g.M, g.N, g.K, alpha, A.gpu.t, lda, B.gpu.t, ldb, beta, C.gpu.t, ldc);
      c.compare("C", C);
      c.finish();
    }
}

void gemm_bf16(Env& env) {
  const GemmShape shapes[] = {{33, 65, 127}, {128, 96, 64}};
  int idx = 0;
  for (int mode = 0; mode < 3; ++mode)  // 0: A bf16, 1: B bf16, 2: both
    for (const GemmShape& g : shapes)
      for (int t = 0; t < 4; ++t, ++idx) {
        const bool ta = t & 1, tb = t & 2;
        const bool a16 = mode != 1, b16 = mode != 0;
        const std::int64_t pad = (idx % 2) * 2;
        const std::int64_t a_rows = ta ? g.K : g.M, a_cols = ta ? g.M : g.K;
        const std::int64_t b_rows = tb ? g.N : g.K, b_cols = tb ? g.K : g.N;
        const std::int64_t lda = a_cols + pad, ldb = b_cols + pad, ldc = g.N;
        Case c(env.report, "gemm_bf16", "gemm_bf16",
               str_printf("%s %c%c M=%lld N=%lld K=%lld",
                          mode == 0   ? "A16"
                          : mode == 1 ? "B16"
                                      : "AB16",
                          ta ? 'T' : 'N', tb ? 'T' : 'N', (long long)g.M, (long long)g.N,
                          (long long)g.K),
               kBf16);
        // A bf16 operand: the CPU multiplies the same (bf16-exact) values in fp32.
        auto operand = [&](std::int64_t n, bool as_bf16, Guarded& cpu_t, Guarded& gpu_t) {
          std::vector<float> v = uniform(n, next_seed());
          if (!as_bf16) {
            Pair p = c.f32(env.cpu, env.gpu, Shape{n}, v);
            cpu_t = p.cpu;
            gpu_t = p.gpu;
            return;
          }
          std::vector<std::uint16_t> bits(v.size());
          for (std::size_t i = 0; i < v.size(); ++i) {
            bits[i] = to_bf16(v[i]);
            v[i] = from_bf16(bits[i]);
          }
          cpu_t = make_guarded(env.cpu, Shape{n}, DType::F32, v.data());
          gpu_t = make_guarded(env.gpu, Shape{n}, DType::BF16, bits.data());
          c.watch(gpu_t);
        };
        Guarded Ac, Ag, Bc, Bg;
        operand(a_rows * lda, a16, Ac, Ag);
        operand(b_rows * ldb, b16, Bc, Bg);
        Pair C = c.f32(env.cpu, env.gpu, Shape{g.M * ldc}, uniform(g.M * ldc, next_seed()));
        env.cpu.gemm(ta, tb, g.M, g.N, g.K, 1.0, Ac.t, lda, Bc.t, ldb, 0.5, C.cpu.t, ldc);
        env.gpu.gemm(ta, tb, g.M, g.N, g.K, 1.0, Ag.t, lda, Bg.t, ldb, 0.5, C.gpu.t, ldc);
        c.compare("C", C);
        c.finish();
      }
}

// ---- memory and elementwise ---------------------------------------------------------------------

void fills(Env& env) {
  const std::int64_t n = 1031;
  {
    Case c(env.report, "fill", "fill", "f32 n=1031 v=1.5", kF32);
    Guarded g = make_f32(env.gpu, Shape{n}, uniform(n, next_seed()));
    c.watch(g);
    env.gpu.fill(g.t, 1.5);
    bool ok = true;
    for (float x : read_f32(g)) ok = ok && x == 1.5f;
    c.expect(ok, "not all 1.5");
    env.gpu.fill(g.t, 0.0);
    for (float x : read_f32(g)) ok = ok && x == 0.0f;
    c.expect(ok, "fill(0) left non-zeros");
    c.finish();
  }
  {
    Case c(env.report, "fill", "fill", "i32 n=1031 v=-7", kF32);
    const auto init = integers(n, next_seed(), 0, 100);
    Guarded g = make_guarded(env.gpu, Shape{n}, DType::I32, init.data());
    c.watch(g);
    env.gpu.fill(g.t, -7.0);
    bool ok = true;
    for (std::int32_t x : read_i32(g)) ok = ok && x == -7;
    c.expect(ok, "not all -7");
    c.finish();
  }
  {
    Case c(env.report, "fill", "fill", "bf16 n=1031 v=0.333", kF32);
    std::vector<std::uint16_t> init(static_cast<std::size_t>(n), 0x1234);
    Guarded g = make_guarded(env.gpu, Shape{n}, DType::BF16, init.data());
    c.watch(g);
    env.gpu.fill(g.t, 0.333);
    std::vector<std::uint16_t> got(static_cast<std::size_t>(n));
    env.gpu.download(got.data(), g.t, got.size() * 2);
    const std::uint16_t want = to_bf16(0.333f);
    bool ok = true;
    for (std::uint16_t x : got) ok = ok && x == want;
    c.expect(ok, str_printf("bf16 bits differ from 0x%04x", want));
    c.finish();
  }
  {
    Case c(env.report, "fill", "copy", "f32 n=1031 (unaligned views)", kF32);
    Pair src = c.f32(env.cpu, env.gpu, Shape{n}, uniform(n, next_seed()));
    Pair dst = c.f32(env.cpu, env.gpu, Shape{n}, uniform(n, next_seed()));
    env.cpu.copy(dst.cpu.t, src.cpu.t);
    env.gpu.copy(dst.gpu.t, src.gpu.t);
    c.compare("dst", dst);
    c.expect(read_f32(dst.gpu) == read_f32(src.gpu), "copy is not bit-exact");
    c.finish();
  }
}

void elementwise(Env& env) {
  for (std::int64_t n : {1LL, 1000LL, 100003LL}) {
    {
      Case c(env.report, "add", "add", str_printf("n=%lld", (long long)n), kF32);
      Pair a = c.f32(env.cpu, env.gpu, Shape{n}, uniform(n, next_seed()));
      Pair b = c.f32(env.cpu, env.gpu, Shape{n}, uniform(n, next_seed()));
      Pair o = c.f32(env.cpu, env.gpu, Shape{n}, uniform(n, next_seed()));
      env.cpu.add(o.cpu.t, a.cpu.t, b.cpu.t);
      env.gpu.add(o.gpu.t, a.gpu.t, b.gpu.t);
      c.compare("out", o);
      env.cpu.add(a.cpu.t, a.cpu.t, b.cpu.t);  // out aliases a
      env.gpu.add(a.gpu.t, a.gpu.t, b.gpu.t);
      c.compare("a+=b", a);
      c.finish();
    }
    {
      Case c(env.report, "axpy", "axpy/scale", str_printf("n=%lld", (long long)n), kF32);
      Pair y = c.f32(env.cpu, env.gpu, Shape{n}, uniform(n, next_seed()));
      Pair x = c.f32(env.cpu, env.gpu, Shape{n}, uniform(n, next_seed()));
      env.cpu.axpy(y.cpu.t, -0.3, x.cpu.t);
      env.gpu.axpy(y.gpu.t, -0.3, x.gpu.t);
      c.compare("axpy", y);
      env.cpu.scale(x.cpu.t, 1.7);
      env.gpu.scale(x.gpu.t, 1.7);
      c.compare("scale", x);
      c.finish();
    }
    {
      Case c(env.report, "multiply", "multiply/divide", str_printf("n=%lld", (long long)n), kF32);
      Pair a = c.f32(env.cpu, env.gpu, Shape{n}, uniform(n, next_seed()));
      Pair b = c.f32(env.cpu, env.gpu, Shape{n}, nonzero(n, next_seed()));
      Pair o = c.f32(env.cpu, env.gpu, Shape{n}, uniform(n, next_seed()));
      env.cpu.multiply(o.cpu.t, a.cpu.t, b.cpu.t);
      env.gpu.multiply(o.gpu.t, a.gpu.t, b.gpu.t);
      c.compare("mul", o);
      env.cpu.divide(a.cpu.t, a.cpu.t, b.cpu.t);
      env.gpu.divide(a.gpu.t, a.gpu.t, b.gpu.t);
      c.compare("div", a);
      c.finish();
    }
    {
      Case c(env.report, "adalora_importance", "adalora_importance/zero_below",
             str_printf("n=%lld", (long long)n), kF32);
      Pair ipt = c.f32(env.cpu, env.gpu, Shape{n}, uniform(n, next_seed(), 0, 1));
      Pair unc = c.f32(env.cpu, env.gpu, Shape{n}, uniform(n, next_seed(), 0, 1));
      Pair p = c.f32(env.cpu, env.gpu, Shape{n}, uniform(n, next_seed()));
      Pair g = c.f32(env.cpu, env.gpu, Shape{n}, uniform(n, next_seed()));
      env.cpu.adalora_importance(ipt.cpu.t, unc.cpu.t, p.cpu.t, g.cpu.t, 0.85, 0.8, 0.5);
      env.gpu.adalora_importance(ipt.gpu.t, unc.gpu.t, p.gpu.t, g.gpu.t, 0.85, 0.8, 0.5);
      c.compare("ipt", ipt);
      c.compare("unc", unc);
      env.cpu.zero_below(p.cpu.t, 0.3);
      env.gpu.zero_below(p.gpu.t, 0.3);
      c.expect(read_f32(p.cpu) == read_f32(p.gpu), "zero_below differs");
      c.finish();
    }
  }
}

void reductions(Env& env) {
  for (std::int64_t n : {1LL, 7LL, 4097LL, (1LL << 20) + 3}) {
    Case c(env.report, "sum", "sum/sum_squares", str_printf("n=%lld", (long long)n), kScalar);
    Pair x = c.f32(env.cpu, env.gpu, Shape{n}, uniform(n, next_seed(), -0.5f, 1.0f));
    c.compare_scalar("sum", env.cpu.sum(x.cpu.t), env.gpu.sum(x.gpu.t));
    c.compare_scalar("sum_squares", env.cpu.sum_squares(x.cpu.t), env.gpu.sum_squares(x.gpu.t));
    c.finish();
  }
}

// ---- transformer ops
// --------------------------------------------------------------------------------

void embedding(Env& env) {
  const std::int64_t V = 50;
  for (std::int64_t C : {1LL, 31LL, 64LL, 129LL})
    for (std::int64_t n : {1LL, 33LL, 257LL}) {
      Case c(env.report, "embedding", "embedding fwd/bwd",
             str_printf("n=%lld C=%lld V=%lld", (long long)n, (long long)C, (long long)V), kF32);
      Pair table = c.f32(env.cpu, env.gpu, Shape{V, C}, uniform(V * C, next_seed()));
      Pair tok = c.i32(env.cpu, env.gpu, Shape{n}, integers(n, next_seed(), 0, 9));  // repeats
      Pair out = c.f32(env.cpu, env.gpu, Shape{n, C}, uniform(n * C, next_seed()));
      env.cpu.embedding_forward(out.cpu.t, tok.cpu.t, table.cpu.t, n, C);
      env.gpu.embedding_forward(out.gpu.t, tok.gpu.t, table.gpu.t, n, C);
      c.compare("out", out);
      Pair dout = c.f32(env.cpu, env.gpu, Shape{n, C}, uniform(n * C, next_seed()));
      Pair dtable = c.f32(env.cpu, env.gpu, Shape{V, C}, uniform(V * C, next_seed()));
      env.cpu.embedding_backward(dtable.cpu.t, tok.cpu.t, dout.cpu.t, n, C);
      env.gpu.embedding_backward(dtable.gpu.t, tok.gpu.t, dout.gpu.t, n, C);
      c.compare("dtable", dtable);
      c.finish();
    }
}

void rmsnorm(Env& env) {
  struct S {
    std::int64_t n, C;
  };
  const S shapes[] = {{1, 1},   {7, 31},   {33, 32},  {129, 33}, {300, 128},
                      {64, 65}, {3, 4096}, {513, 64}, {2, 1000}};
  for (const S& s : shapes)
    for (bool with_dw : {true, false}) {
      if (!with_dw && s.n != 33) continue;
      Case c(env.report, "rmsnorm", "rmsnorm fwd/bwd",
             str_printf("n=%lld C=%lld%s", (long long)s.n, (long long)s.C, with_dw ? "" : " no dw"),
             kF32);
      Pair x = c.f32(env.cpu, env.gpu, Shape{s.n, s.C}, uniform(s.n * s.C, next_seed(), -2, 2));
      Pair w = c.f32(env.cpu, env.gpu, Shape{s.C}, uniform(s.C, next_seed(), 0.5, 1.5));
      Pair out = c.f32(env.cpu, env.gpu, Shape{s.n, s.C}, uniform(s.n * s.C, next_seed()));
      Pair rstd = c.f32(env.cpu, env.gpu, Shape{s.n}, uniform(s.n, next_seed()));
      env.cpu.rmsnorm_forward(out.cpu.t, rstd.cpu.t, x.cpu.t, w.cpu.t, s.n, s.C, 1e-5);
      env.gpu.rmsnorm_forward(out.gpu.t, rstd.gpu.t, x.gpu.t, w.gpu.t, s.n, s.C, 1e-5);
      c.compare("out", out);
      c.compare("rstd", rstd);
      Pair dout = c.f32(env.cpu, env.gpu, Shape{s.n, s.C}, uniform(s.n * s.C, next_seed()));
      Pair dx = c.f32(env.cpu, env.gpu, Shape{s.n, s.C}, uniform(s.n * s.C, next_seed()));
      Pair dw = c.f32(env.cpu, env.gpu, Shape{s.C}, uniform(s.C, next_seed()));
      // The backward reads the CPU's rstd on both sides, so only the backward is compared.
      Pair r = c.f32(env.cpu, env.gpu, Shape{s.n}, read_f32(rstd.cpu));
      env.cpu.rmsnorm_backward(dx.cpu.t, with_dw ? dw.cpu.t : Tensor{}, dout.cpu.t, x.cpu.t,
                               w.cpu.t, r.cpu.t, s.n, s.C);
      env.gpu.rmsnorm_backward(dx.gpu.t, with_dw ? dw.gpu.t : Tensor{}, dout.gpu.t, x.gpu.t,
                               w.gpu.t, r.gpu.t, s.n, s.C);
      c.compare("dx", dx);
      c.compare("dw", dw);
      c.finish();
    }
}

void rope(Env& env) {
  struct S {
    std::int64_t B, T;
    int heads, hd;
    std::int64_t table_rows;
  };
  const S shapes[] = {{1, 1, 1, 2, 4},       {2, 7, 3, 8, 7},   {2, 33, 4, 64, 40},
                      {1, 129, 2, 128, 129}, {3, 31, 2, 6, 64}, {1, 65, 5, 16, 65}};
  for (const S& s : shapes) {
    const std::int64_t n = s.B * s.T, w = static_cast<std::int64_t>(s.heads) * s.hd;
    Case c(
        env.report, "rope", "rope fwd/bwd",
        str_printf("B=%lld T=%lld heads=%d hd=%d", (long long)s.B, (long long)s.T, s.heads, s.hd),
        kF32);
    ModelConfig mc;
    mc.hidden = s.hd;
    mc.heads = 1;
    std::vector<float> table_v;
    for (double d : rope_table(mc, s.table_rows)) table_v.push_back(static_cast<float>(d));
    Pair table = c.f32(env.cpu, env.gpu, Shape{s.table_rows, s.hd}, table_v);
    Pair x = c.f32(env.cpu, env.gpu, Shape{n, w}, uniform(n * w, next_seed()));
    env.cpu.rope_forward(x.cpu.t, table.cpu.t, n, s.T, s.heads, s.hd);
    env.gpu.rope_forward(x.gpu.t, table.gpu.t, n, s.T, s.heads, s.hd);
    c.compare("fwd", x);
    Pair dx = c.f32(env.cpu, env.gpu, Shape{n, w}, uniform(n * w, next_seed()));
    env.cpu.rope_backward(dx.cpu.t, table.cpu.t, n, s.T, s.heads, s.hd);
    env.gpu.rope_backward(dx.gpu.t, table.gpu.t, n, s.T, s.heads, s.hd);
    c.compare("bwd", dx);
    c.finish();
  }
}

std::vector<AttentionShape> attention_shapes() {
  std::vector<AttentionShape> v;
  for (std::int64_t T : {1, 7, 31, 32, 33, 63, 64, 65, 127, 129}) v.push_back({2, T, 4, 2, 64});
  v.push_back({1, 33, 6, 3, 24});
  v.push_back({1, 65, 8, 1, 80});
  v.push_back({2, 40, 2, 2, 4});
  v.push_back({1, 129, 4, 4, 128});
  v.push_back({1, 70, 2, 1, 256});
  v.push_back({3, 17, 3, 1, 5});
  v.push_back({1, 200, 4, 2, 32});
  v.push_back({1, 96, 2, 2, 17});
  return v;
}

void attention(Env& env) {
  for (const AttentionShape& s : attention_shapes()) {
    const std::int64_t n = s.rows();
    const std::int64_t qd = static_cast<std::int64_t>(s.heads) * s.head_dim;
    const std::int64_t kvd = static_cast<std::int64_t>(s.kv_heads) * s.head_dim;
    const std::int64_t stats = s.B * s.heads * s.T;
    const std::string shape = str_printf("B=%lld T=%lld H=%d KV=%d hd=%d", (long long)s.B,
                                         (long long)s.T, s.heads, s.kv_heads, s.head_dim);
    auto workspace = [&](Case& c, Backend& be) {
      const std::int64_t elems = std::max<std::int64_t>(
          1, static_cast<std::int64_t>(be.attention_workspace_bytes(s, DType::F32) / 4));
      Guarded g = make_f32(be, Shape{elems}, uniform(elems, next_seed()));
      if (&be == &env.gpu) c.watch(g);
      return g;
    };
    std::vector<float> out_cpu, lse_cpu;
    std::vector<float> qv = uniform(n * qd, next_seed(), -2, 2),
                       kv = uniform(n * kvd, next_seed(), -2, 2),
                       vv = uniform(n * kvd, next_seed());
    {
      Case c(env.report, "attention", "attention_forward", shape, kF32);
      Pair q = c.f32(env.cpu, env.gpu, Shape{n, qd}, qv);
      Pair k = c.f32(env.cpu, env.gpu, Shape{n, kvd}, kv);
      Pair v = c.f32(env.cpu, env.gpu, Shape{n, kvd}, vv);
      Pair out = c.f32(env.cpu, env.gpu, Shape{n, qd}, uniform(n * qd, next_seed()));
      Pair lse = c.f32(env.cpu, env.gpu, Shape{stats}, uniform(stats, next_seed()));
      Guarded wc = workspace(c, env.cpu), wg = workspace(c, env.gpu);
      env.cpu.attention_forward(out.cpu.t, lse.cpu.t, q.cpu.t, k.cpu.t, v.cpu.t, s, wc.t);
      env.gpu.attention_forward(out.gpu.t, lse.gpu.t, q.gpu.t, k.gpu.t, v.gpu.t, s, wg.t);
      c.compare("out", out);
      c.compare("lse", lse);
      out_cpu = read_f32(out.cpu);
      lse_cpu = read_f32(lse.cpu);
      c.finish();
    }
    {
      Case c(env.report, "attention", "attention_backward", shape, kF32);
      Pair q = c.f32(env.cpu, env.gpu, Shape{n, qd}, qv);
      Pair k = c.f32(env.cpu, env.gpu, Shape{n, kvd}, kv);
      Pair v = c.f32(env.cpu, env.gpu, Shape{n, kvd}, vv);
      Pair out = c.f32(env.cpu, env.gpu, Shape{n, qd}, out_cpu);  // the reference's forward
      Pair lse = c.f32(env.cpu, env.gpu, Shape{stats}, lse_cpu);
      Pair dout = c.f32(env.cpu, env.gpu, Shape{n, qd}, uniform(n * qd, next_seed()));
      // Outputs start as garbage: the backward overwrites them (=).
      Pair dq = c.f32(env.cpu, env.gpu, Shape{n, qd}, uniform(n * qd, next_seed(), 5, 6));
      Pair dk = c.f32(env.cpu, env.gpu, Shape{n, kvd}, uniform(n * kvd, next_seed(), 5, 6));
      Pair dv = c.f32(env.cpu, env.gpu, Shape{n, kvd}, uniform(n * kvd, next_seed(), 5, 6));
      Guarded wc = workspace(c, env.cpu), wg = workspace(c, env.gpu);
      env.cpu.attention_backward(dq.cpu.t, dk.cpu.t, dv.cpu.t, dout.cpu.t, q.cpu.t, k.cpu.t,
                                 v.cpu.t, out.cpu.t, lse.cpu.t, s, wc.t);
      env.gpu.attention_backward(dq.gpu.t, dk.gpu.t, dv.gpu.t, dout.gpu.t, q.gpu.t, k.gpu.t,
                                 v.gpu.t, out.gpu.t, lse.gpu.t, s, wg.t);
      if (s.T > 1) {
        c.compare("dq", dq);
        c.compare("dk", dk);
      } else {
        // One key: P = 1 and dP = D, so dS, dq and dk are exactly zero; both
        // backends return rounding noise, which NMSE cannot compare.
        float worst = 0;
        for (const Pair* p : {&dq, &dk})
          for (float x : read_f32(p->gpu)) worst = std::max(worst, std::fabs(x));
        c.expect(worst < 1e-4f, str_printf("T=1: dq/dk should be ~0, max |x| = %g", worst));
      }
      c.compare("dv", dv);
      c.finish();
    }
  }
}

// Inference: query rows over a K/V cache, as runs of (sequence, first
// position, rows): prefill runs across the CPU's 64-row blocks and the GPU's
// 128-key tiles, single decode rows, several sequences in one call in any
// order, MHA and GQA, odd and largest head dims. The cache is random: each
// row reads its sequence's keys 0..its position. scatter_rows writes rows
// into a cache at distinct, unordered rows.
void attention_cached(Env& env) {
  struct Run {
    int sequence, first, rows;
  };
  struct S {
    int heads, kv_heads, head_dim;
    std::int64_t sequences, capacity;
    std::vector<Run> runs;
  };
  const S shapes[] = {
      {4, 2, 16, 3, 200, {{0, 0, 70}, {2, 150, 1}, {1, 120, 10}, {0, 70, 1}}},
      {9, 3, 64, 2, 300, {{1, 0, 1}, {0, 255, 1}}},
      {2, 1, 256, 1, 140, {{0, 0, 140}}},
      {3, 3, 7, 4, 33, {{3, 32, 1}, {0, 0, 33}, {2, 5, 3}}},
      {8, 2, 64, 8, 129, {{0, 128, 1}, {1, 0, 1}, {2, 64, 1}, {3, 127, 1}, {4, 1, 1}, {5, 63, 1}, {6, 31, 1}, {7, 100, 1}}},
  };
  for (const S& sh : shapes) {
    std::vector<std::int32_t> seqs, pos;
    for (const Run& r : sh.runs)
      for (int i = 0; i < r.rows; ++i) {
        seqs.push_back(r.sequence);
        pos.push_back(r.first + i);
      }
    const auto n = static_cast<std::int64_t>(seqs.size());
    const CachedAttentionShape s{n, sh.heads, sh.kv_heads, sh.head_dim, sh.sequences, sh.capacity};
    const std::int64_t qd = std::int64_t{sh.heads} * sh.head_dim, kvd = std::int64_t{sh.kv_heads} * sh.head_dim;
    const std::int64_t cache = sh.sequences * sh.capacity * kvd;
    Case c(env.report, "attention_cached", "attention_cached",
           str_printf("n=%lld H=%d KV=%d hd=%d seqs=%lld cap=%lld", (long long)n, sh.heads, sh.kv_heads, sh.head_dim,
                      (long long)sh.sequences, (long long)sh.capacity),
           kF32);
    Pair q = c.f32(env.cpu, env.gpu, Shape{n, qd}, uniform(n * qd, next_seed(), -2, 2));
    Pair k = c.f32(env.cpu, env.gpu, Shape{cache}, uniform(cache, next_seed(), -2, 2));
    Pair v = c.f32(env.cpu, env.gpu, Shape{cache}, uniform(cache, next_seed()));
    Pair sq = c.i32(env.cpu, env.gpu, Shape{n}, seqs);
    Pair ps = c.i32(env.cpu, env.gpu, Shape{n}, pos);
    Pair out = c.f32(env.cpu, env.gpu, Shape{n, qd}, uniform(n * qd, next_seed(), 5, 6));
    auto workspace = [&](Backend& be) {
      const std::int64_t elems =
          std::max<std::int64_t>(1, static_cast<std::int64_t>(be.attention_cached_workspace_bytes(s, DType::F32) / 4));
      Guarded g = make_f32(be, Shape{elems}, uniform(elems, next_seed()));
      if (&be == &env.gpu) c.watch(g);
      return g;
    };
    Guarded wc = workspace(env.cpu), wg = workspace(env.gpu);
    env.cpu.attention_cached(out.cpu.t, q.cpu.t, k.cpu.t, v.cpu.t, sq.cpu.t, ps.cpu.t, s, wc.t);
    env.gpu.attention_cached(out.gpu.t, q.gpu.t, k.gpu.t, v.gpu.t, sq.gpu.t, ps.gpu.t, s, wg.t);
    c.compare("out", out);
    c.finish();
  }
  for (std::int64_t C : {1LL, 48LL, 192LL}) {
    const std::int64_t rows = 300, n = 37;
    Case c(env.report, "attention_cached", "scatter_rows", str_printf("n=%lld C=%lld into %lld rows", (long long)n,
                                                                      (long long)C, (long long)rows),
           kF32);
    std::vector<std::int32_t> order(static_cast<std::size_t>(rows));
    for (std::int64_t i = 0; i < rows; ++i) order[static_cast<std::size_t>(i)] = static_cast<std::int32_t>(i);
    const auto pick = integers(rows, next_seed(), 0, 1 << 30);
    for (std::size_t i = order.size(); i > 1; --i)
      std::swap(order[i - 1], order[static_cast<std::size_t>(pick[i - 1]) % i]);
    order.resize(static_cast<std::size_t>(n));
    Pair dst = c.f32(env.cpu, env.gpu, Shape{rows, C}, uniform(rows * C, next_seed()));
    Pair idx = c.i32(env.cpu, env.gpu, Shape{n}, order);
    Pair src = c.f32(env.cpu, env.gpu, Shape{n, C}, uniform(n * C, next_seed()));
    env.cpu.scatter_rows(dst.cpu.t, idx.cpu.t, src.cpu.t, n, C);
    env.gpu.scatter_rows(dst.gpu.t, idx.gpu.t, src.gpu.t, n, C);
    c.compare("dst", dst);
    c.finish();
  }
}

void swiglu(Env& env) {
  for (std::int64_t n : {1LL, 1023LL, 65537LL}) {
    Case c(env.report, "swiglu", "swiglu fwd/bwd", str_printf("n=%lld", (long long)n), kF32);
    std::vector<float> gate = uniform(n, next_seed(), -12, 12);
    if (n > 4) {  // saturated tails: exp overflow must not give NaN
      gate[0] = 100.0f;
      gate[1] = -100.0f;
      gate[2] = 88.5f;
      gate[3] = -88.5f;
    }
    Pair g = c.f32(env.cpu, env.gpu, Shape{n}, gate);
    Pair u = c.f32(env.cpu, env.gpu, Shape{n}, uniform(n, next_seed()));
    Pair h = c.f32(env.cpu, env.gpu, Shape{n}, uniform(n, next_seed()));
    env.cpu.swiglu_forward(h.cpu.t, g.cpu.t, u.cpu.t, n);
    env.gpu.swiglu_forward(h.gpu.t, g.gpu.t, u.gpu.t, n);
    c.compare("h", h);
    Pair dh = c.f32(env.cpu, env.gpu, Shape{n}, uniform(n, next_seed()));
    Pair dg = c.f32(env.cpu, env.gpu, Shape{n}, uniform(n, next_seed()));
    Pair du = c.f32(env.cpu, env.gpu, Shape{n}, uniform(n, next_seed()));
    env.cpu.swiglu_backward(dg.cpu.t, du.cpu.t, dh.cpu.t, g.cpu.t, u.cpu.t, n);
    env.gpu.swiglu_backward(dg.gpu.t, du.gpu.t, dh.gpu.t, g.gpu.t, u.gpu.t, n);
    c.compare("dgate", dg);
    c.compare("dup", du);
    c.finish();
  }
}

void cross_entropy(Env& env) {
  struct S {
    std::int64_t n, V;
  };
  const S shapes[] = {{1, 1}, {7, 31}, {33, 260}, {129, 1025}, {4, 32000}, {3, 128256}, {65, 97}};
  int idx = 0;
  for (const S& s : shapes)
    for (int mode = 0; mode < 3; ++mode, ++idx) {  // 0: separate dlogits, 1: in place, 2: none
      Case c(env.report, "cross_entropy", "cross_entropy",
             str_printf("n=%lld V=%lld %s", (long long)s.n, (long long)s.V,
                        mode == 0   ? "dlogits"
                        : mode == 1 ? "in-place"
                                    : "loss only"),
             kF32);
      std::vector<std::int32_t> t =
          integers(s.n, next_seed(), 0, static_cast<std::int32_t>(s.V - 1));
      std::int64_t scored = 0;
      for (std::size_t i = 0; i < t.size(); ++i) {
        if (s.n > 1 && i % 4 == 1) t[i] = -1;  // ignored rows
        scored += t[i] >= 0;
      }
      const double scale = 1.0 / static_cast<double>(std::max<std::int64_t>(1, scored));
      Pair logits =
          c.f32(env.cpu, env.gpu, Shape{s.n, s.V}, uniform(s.n * s.V, next_seed(), -4, 4));
      Pair targets = c.i32(env.cpu, env.gpu, Shape{s.n}, t);
      Pair losses = c.f32(env.cpu, env.gpu, Shape{s.n}, uniform(s.n, next_seed()));
      Pair dl = c.f32(env.cpu, env.gpu, Shape{s.n, s.V}, uniform(s.n * s.V, next_seed()));
      auto run = [&](Backend& be, Guarded& lg, Guarded& ls, Guarded& d, Guarded& tg) {
        const Tensor dlogits = mode == 0 ? d.t : mode == 1 ? lg.t : Tensor{};
        be.cross_entropy(ls.t, dlogits, lg.t, tg.t, s.n, s.V, scale);
      };
      run(env.cpu, logits.cpu, losses.cpu, dl.cpu, targets.cpu);
      run(env.gpu, logits.gpu, losses.gpu, dl.gpu, targets.gpu);
      c.compare("losses", losses);
      if (mode == 0) c.compare("dlogits", dl);
      if (mode == 1) c.compare("dlogits", logits);
      c.finish();
    }
}

// The fused classifier (core/model/linear_cross_entropy): cuBLAS gemms and
// the cross-entropy and argmax kernels chunk by chunk, against the same
// sequence on the CPU. Chunks of 1 row, of a non-divisor and of every row;
// dW starts non-zero (it accumulates). fp32 limit: the gemms' and the
// softmax's, which it composes.
void linear_cross_entropy_op(Env& env) {
  struct S {
    std::int64_t n, C, V, chunk;
  };
  const S shapes[] = {{1, 8, 7, 1}, {37, 24, 1031, 8}, {65, 64, 4099, 65}, {40, 32, 32000, 17}};
  for (const S& s : shapes) {
    Case c(env.report, "linear_cross_entropy", "linear_cross_entropy",
           str_printf("n=%lld C=%lld V=%lld chunk=%lld", (long long)s.n, (long long)s.C,
                      (long long)s.V, (long long)s.chunk),
           kF32);
    std::vector<std::int32_t> t = integers(s.n, next_seed(), 0, static_cast<std::int32_t>(s.V - 1));
    std::int64_t scored = 0;
    for (std::size_t i = 0; i < t.size(); ++i) {
      if (s.n > 1 && i % 4 == 1) t[i] = -1;
      scored += t[i] >= 0;
    }
    const double scale = 1.0 / static_cast<double>(std::max<std::int64_t>(1, scored));
    Pair h = c.f32(env.cpu, env.gpu, Shape{s.n, s.C}, uniform(s.n * s.C, next_seed(), -1, 1));
    Pair W = c.f32(env.cpu, env.gpu, Shape{s.V, s.C}, uniform(s.V * s.C, next_seed(), -0.5, 0.5));
    Pair dW = c.f32(env.cpu, env.gpu, Shape{s.V, s.C}, uniform(s.V * s.C, next_seed()));
    Pair dh = c.f32(env.cpu, env.gpu, Shape{s.n, s.C}, uniform(s.n * s.C, next_seed()));
    Pair losses = c.f32(env.cpu, env.gpu, Shape{s.n}, uniform(s.n, next_seed()));
    Pair chunk = c.f32(env.cpu, env.gpu, Shape{s.chunk, s.V}, uniform(s.chunk * s.V, next_seed()));
    Pair targets = c.i32(env.cpu, env.gpu, Shape{s.n}, t);
    Pair ids = c.i32(env.cpu, env.gpu, Shape{s.n}, integers(s.n, next_seed(), -5, -1));
    auto run = [&](Backend& be, bool gpu) {
      auto g = [&](Pair& p) -> const Tensor& { return gpu ? p.gpu.t : p.cpu.t; };
      linear_cross_entropy(be, g(losses), g(ids), g(dh), g(dW), g(h), g(W), g(targets), g(chunk),
                           s.n, s.C, s.V, scale);
    };
    run(env.cpu, false);
    run(env.gpu, true);
    c.compare("losses", losses);
    c.compare("dh", dh);
    c.compare("dW", dW);
    const auto a = read_i32(ids.cpu), b = read_i32(ids.gpu);
    std::int64_t differ = 0;
    for (std::size_t i = 0; i < a.size(); ++i) differ += a[i] != b[i];
    c.expect(differ * 100 <= s.n, std::to_string(differ) + " argmax rows differ (1% allowed: near ties)");
    c.finish();
  }
}

void argmax(Env& env) {
  struct S {
    std::int64_t n, V;
  };
  const S shapes[] = {{1, 1}, {7, 31}, {33, 260}, {5, 32000}, {3, 1500}, {129, 129}};
  for (const S& s : shapes) {
    Case c(env.report, "argmax", "argmax_rows",
           str_printf("n=%lld V=%lld (ties)", (long long)s.n, (long long)s.V), kF32);
    std::vector<float> v = uniform(s.n * s.V, next_seed());
    const auto pos = integers(3 * s.n, next_seed(), 0, static_cast<std::int32_t>(s.V - 1));
    for (std::int64_t i = 0; i < s.n; ++i)  // the row maximum at up to three positions
      for (int k = 0; k < 3; ++k)
        v[static_cast<std::size_t>(i * s.V + pos[static_cast<std::size_t>(3 * i + k)])] = 2.0f;
    Pair logits = c.f32(env.cpu, env.gpu, Shape{s.n, s.V}, v);
    Pair ids = c.i32(env.cpu, env.gpu, Shape{s.n}, integers(s.n, next_seed(), -5, -1));
    env.cpu.argmax_rows(ids.cpu.t, logits.cpu.t, s.n, s.V);
    env.gpu.argmax_rows(ids.gpu.t, logits.gpu.t, s.n, s.V);
    c.compare_exact_i32("ids", ids);
    c.finish();
  }
}

void dropout(Env& env) {
  for (std::int64_t n : {1LL, 1000LL, 100003LL})
    for (double p : {0.1, 0.5, 0.9}) {
      Case c(env.report, "dropout", "dropout fwd/bwd", str_printf("n=%lld p=%.1f", (long long)n, p),
             kF32);
      const std::uint64_t seed = 0x9E3779B97F4A7C15ull ^ (static_cast<std::uint64_t>(n) * 31 + 7);
      Pair x = c.f32(env.cpu, env.gpu, Shape{n}, nonzero(n, next_seed()));
      Pair out = c.f32(env.cpu, env.gpu, Shape{n}, uniform(n, next_seed()));
      env.cpu.dropout_forward(out.cpu.t, x.cpu.t, p, seed, n);
      env.gpu.dropout_forward(out.gpu.t, x.gpu.t, p, seed, n);
      c.compare("out", out);
      const auto a = read_f32(out.cpu), b = read_f32(out.gpu);
      std::int64_t mask_diff = 0;
      for (std::size_t i = 0; i < a.size(); ++i) mask_diff += (a[i] == 0) != (b[i] == 0);
      c.expect(mask_diff == 0, std::to_string(mask_diff) + " mask bits differ");
      Pair dout = c.f32(env.cpu, env.gpu, Shape{n}, uniform(n, next_seed()));
      Pair dx = c.f32(env.cpu, env.gpu, Shape{n}, uniform(n, next_seed()));
      env.cpu.dropout_backward(dx.cpu.t, dout.cpu.t, p, seed, n);
      env.gpu.dropout_backward(dx.gpu.t, dout.gpu.t, p, seed, n);
      c.compare("dx", dx);
      c.finish();
    }
}

void adamw(Env& env) {
  for (std::int64_t n : {1LL, 1000LL, 100003LL})
    for (int variant = 0; variant < 2; ++variant) {
      Case c(env.report, "adamw", "adamw",
             str_printf("n=%lld %s", (long long)n, variant ? "5 steps wd=0.01 gs=0.7" : "1 step"),
             kF32);
      Pair p = c.f32(env.cpu, env.gpu, Shape{n}, uniform(n, next_seed()));
      Pair m =
          c.f32(env.cpu, env.gpu, Shape{n}, std::vector<float>(static_cast<std::size_t>(n), 0.0f));
      Pair v =
          c.f32(env.cpu, env.gpu, Shape{n}, std::vector<float>(static_cast<std::size_t>(n), 0.0f));
      const int steps = variant ? 5 : 1;
      for (int step = 1; step <= steps; ++step) {
        Pair g = c.f32(env.cpu, env.gpu, Shape{n}, uniform(n, next_seed(), -0.1f, 0.1f));
        Backend::AdamWStep st;
        st.lr = 1e-3;
        st.beta1 = 0.9;
        st.beta2 = 0.999;
        st.eps = 1e-8;
        st.weight_decay = variant ? 0.01 : 0.0;
        st.step = step;
        st.grad_scale = variant ? 0.7 : 1.0;
        env.cpu.adamw(p.cpu.t, g.cpu.t, m.cpu.t, v.cpu.t, st);
        env.gpu.adamw(p.gpu.t, g.gpu.t, m.gpu.t, v.gpu.t, st);
      }
      c.compare("params", p);
      c.compare("exp_avg", m);
      c.compare("exp_avg_sq", v);
      c.finish();
    }
}

void variants(Env& env) {
  struct S {
    std::int64_t rows, cols;
  };
  const S shapes[] = {{1, 1}, {33, 31}, {129, 64}, {7, 257}, {300, 33}, {1000, 129}};
  for (const S& s : shapes) {
    const std::int64_t n = s.rows * s.cols;
    Case c(env.report, "row_norms", "row_norms/scale_*/column_dot_scale",
           str_printf("rows=%lld cols=%lld", (long long)s.rows, (long long)s.cols), kF32);
    Pair X = c.f32(env.cpu, env.gpu, Shape{s.rows, s.cols}, uniform(n, next_seed()));
    Pair norms = c.f32(env.cpu, env.gpu, Shape{s.rows}, uniform(s.rows, next_seed()));
    env.cpu.row_norms(norms.cpu.t, X.cpu.t, s.rows, s.cols);
    env.gpu.row_norms(norms.gpu.t, X.gpu.t, s.rows, s.cols);
    c.compare("row_norms", norms);
    Pair sc = c.f32(env.cpu, env.gpu, Shape{s.cols}, uniform(s.cols, next_seed()));
    Pair sr = c.f32(env.cpu, env.gpu, Shape{s.rows}, uniform(s.rows, next_seed()));
    Pair out = c.f32(env.cpu, env.gpu, Shape{s.rows, s.cols}, uniform(n, next_seed()));
    env.cpu.scale_columns(out.cpu.t, X.cpu.t, sc.cpu.t, s.rows, s.cols);
    env.gpu.scale_columns(out.gpu.t, X.gpu.t, sc.gpu.t, s.rows, s.cols);
    c.compare("scale_columns", out);
    env.cpu.scale_rows(out.cpu.t, out.cpu.t, sr.cpu.t, s.rows, s.cols);  // in place
    env.gpu.scale_rows(out.gpu.t, out.gpu.t, sr.gpu.t, s.rows, s.cols);
    c.compare("scale_rows", out);
    Pair B = c.f32(env.cpu, env.gpu, Shape{s.rows, s.cols}, uniform(n, next_seed()));
    Pair col = c.f32(env.cpu, env.gpu, Shape{s.cols}, uniform(s.cols, next_seed()));
    env.cpu.column_dot_scale(col.cpu.t, out.cpu.t, X.cpu.t, B.cpu.t, sc.cpu.t, s.rows, s.cols, 0.5);
    env.gpu.column_dot_scale(col.gpu.t, out.gpu.t, X.gpu.t, B.gpu.t, sc.gpu.t, s.rows, s.cols, 0.5);
    c.compare("column_dot_scale: dot", col);
    c.compare("column_dot_scale: scaled", out);
    // The adapters write the scaled copy over a (AdaLoRA, VeRA's du) or over b
    // (VeRA's v): each element must be read before it is replaced.
    env.cpu.column_dot_scale(col.cpu.t, X.cpu.t, X.cpu.t, B.cpu.t, sc.cpu.t, s.rows, s.cols, -1.0);
    env.gpu.column_dot_scale(col.gpu.t, X.gpu.t, X.gpu.t, B.gpu.t, sc.gpu.t, s.rows, s.cols, -1.0);
    c.compare("column_dot_scale over a: dot", col);
    c.compare("column_dot_scale over a: scaled", X);
    env.cpu.column_dot_scale(col.cpu.t, B.cpu.t, X.cpu.t, B.cpu.t, sc.cpu.t, s.rows, s.cols, 2.0);
    env.gpu.column_dot_scale(col.gpu.t, B.gpu.t, X.gpu.t, B.gpu.t, sc.gpu.t, s.rows, s.cols, 2.0);
    c.compare("column_dot_scale over b: dot", col);
    c.compare("column_dot_scale over b: scaled", B);
    c.finish();
  }
}

// ---- behaviour: errors and determinism
// ----------------------------------------------------------------

template <class E>
void expect_throw(Case& c, const std::string& what, const std::function<void()>& fn,
                  const std::string& must_contain = "") {
  try {
    fn();
    c.fail(what + ": no exception");
  } catch (const E& e) {
    if (!must_contain.empty() && std::string(e.what()).find(must_contain) == std::string::npos)
      c.fail(what + ": message \"" + e.what() + "\" lacks \"" + must_contain + "\"");
  } catch (const std::exception& e) {
    c.fail(what + ": wrong exception type: " + e.what());
  }
}

void errors(Env& env) {
  {
    Case c(env.report, "errors", "errors", "f64 tensors rejected", kF32);
    Tensor a = make_tensor(env.gpu, Shape{8}, DType::F64),
           b = make_tensor(env.gpu, Shape{8}, DType::F64);
    expect_throw<std::invalid_argument>(
        c, "add f64", [&] { env.gpu.add(a, a, b); }, "add");
    expect_throw<std::invalid_argument>(
        c, "add f64", [&] { env.gpu.add(a, a, b); }, "f64");
    expect_throw<std::invalid_argument>(
        c, "sum f64", [&] { env.gpu.sum(a); }, "sum");
    expect_throw<std::invalid_argument>(
        c, "gemm f64", [&] { env.gpu.gemm(false, false, 2, 2, 2, 1, a, 2, b, 2, 0, a, 2); }, "f64");
    c.finish();
  }
  {
    Case c(env.report, "errors", "errors", "out of memory -> OutOfMemoryError", kF32);
    const std::size_t before = env.gpu.allocated_bytes();
    const std::size_t huge = std::size_t{1} << 50;
    try {
      void* p = env.gpu.allocate(huge);
      env.gpu.release(p, huge);
      c.fail("a 1 PiB allocation succeeded");
    } catch (const OutOfMemoryError& e) {
      c.expect(e.requested() == huge, "requested bytes not reported");
      c.expect(std::string(e.what()).find("cuda:") != std::string::npos, "device not named");
    }
    c.expect(env.gpu.allocated_bytes() == before, "allocated_bytes changed by a failed allocation");
    Guarded g = make_f32(env.gpu, Shape{100}, std::vector<float>(100, 1.0f));  // still usable
    c.expect(env.gpu.sum(g.t) == 100.0, "backend unusable after OOM");
    c.finish();
  }
  {
    Case c(env.report, "errors", "errors", "bad arguments rejected", kF32);
    Tensor host = make_tensor(env.cpu, Shape{16}, DType::F32);
    Tensor dev = make_tensor(env.gpu, Shape{256}, DType::F32);
    expect_throw<std::invalid_argument>(
        c, "cpu tensor", [&] { env.gpu.add(dev, dev, host); }, "cpu");
    expect_throw<std::invalid_argument>(
        c, "too small", [&] { env.gpu.swiglu_forward(dev, dev, dev, 257); }, "257");
    const AttentionShape s{1, 8, 2, 1, 4};
    expect_throw<std::invalid_argument>(
        c, "workspace",
        [&] {
          env.gpu.attention_backward(dev, dev, dev, dev, dev, dev, dev, dev, dev, s,
                                     dev.view(0, Shape{2}));
        },
        "workspace");
    const AttentionShape bad{1, 4, 3, 2, 4};
    expect_throw<std::invalid_argument>(
        c, "heads % kv_heads",
        [&] { env.gpu.attention_forward(dev, dev, dev, dev, dev, bad, dev); }, "kv_heads");
    const CachedAttentionShape wide{1, 1, 1, 300, 1, 1};
    expect_throw<std::invalid_argument>(
        c, "cached head_dim",
        [&] { env.gpu.attention_cached(dev, dev, dev, dev, dev, dev, wide, dev); }, "head_dim");
    c.finish();
  }
}

// Same inputs twice on the GPU: results must be bit-identical (no atomics).
void determinism(Env& env) {
  auto twice = [&](const std::string& op, const std::string& shape,
                   const std::function<std::vector<float>()>& run) {
    Case c(env.report, "determinism", op, shape + " twice", kF32);
    const auto a = run(), b = run();
    c.expect(a == b, "results differ between two runs");
    c.finish();
  };
  {
    const AttentionShape s{2, 129, 8, 2, 64};
    const std::int64_t n = s.rows(), qd = 8 * 64, kvd = 2 * 64, stats = 2 * 8 * 129;
    Guarded q = make_f32(env.gpu, Shape{n, qd}, uniform(n * qd, 1, -2, 2));
    Guarded k = make_f32(env.gpu, Shape{n, kvd}, uniform(n * kvd, 2, -2, 2));
    Guarded v = make_f32(env.gpu, Shape{n, kvd}, uniform(n * kvd, 3));
    Guarded dout = make_f32(env.gpu, Shape{n, qd}, uniform(n * qd, 4));
    Guarded out = make_f32(env.gpu, Shape{n, qd}, uniform(n * qd, 5));
    Guarded lse = make_f32(env.gpu, Shape{stats}, uniform(stats, 6));
    Guarded dq = make_f32(env.gpu, Shape{n, qd}, uniform(n * qd, 7));
    Guarded dk = make_f32(env.gpu, Shape{n, kvd}, uniform(n * kvd, 8));
    Guarded dv = make_f32(env.gpu, Shape{n, kvd}, uniform(n * kvd, 9));
    Guarded ws = make_f32(env.gpu, Shape{stats}, uniform(stats, 10));
    env.gpu.attention_forward(out.t, lse.t, q.t, k.t, v.t, s, ws.t);
    twice("attention_backward", "B=2 T=129 H=8 KV=2 hd=64", [&] {
      env.gpu.attention_backward(dq.t, dk.t, dv.t, dout.t, q.t, k.t, v.t, out.t, lse.t, s, ws.t);
      auto r = read_f32(dq);
      for (float x : read_f32(dk)) r.push_back(x);
      for (float x : read_f32(dv)) r.push_back(x);
      return r;
    });
  }
  {
    const std::int64_t n = 4096, C = 256, V = 16;
    Guarded tok = make_guarded(env.gpu, Shape{n}, DType::I32, integers(n, 11, 0, 3).data());
    Guarded dout = make_f32(env.gpu, Shape{n, C}, uniform(n * C, 12));
    Guarded x = make_f32(env.gpu, Shape{n, C}, uniform(n * C, 13));
    Guarded w = make_f32(env.gpu, Shape{C}, uniform(C, 14));
    Guarded r = make_f32(env.gpu, Shape{n}, uniform(n, 15, 0.5, 2));
    Guarded dtable = make_f32(env.gpu, Shape{V, C}, uniform(V * C, 16));
    Guarded dx = make_f32(env.gpu, Shape{n, C}, uniform(n * C, 17));
    Guarded dw = make_f32(env.gpu, Shape{C}, uniform(C, 18));
    twice("embedding_backward", "n=4096 C=256 4 tokens", [&] {
      env.gpu.fill(dtable.t, 0.0);
      env.gpu.embedding_backward(dtable.t, tok.t, dout.t, n, C);
      return read_f32(dtable);
    });
    twice("rmsnorm_backward", "n=4096 C=256 (dw)", [&] {
      env.gpu.fill(dw.t, 0.0);
      env.gpu.rmsnorm_backward(dx.t, dw.t, dout.t, x.t, w.t, r.t, n, C);
      return read_f32(dw);
    });
    twice("column_dot_scale", "rows=4096 cols=256", [&] {
      env.gpu.fill(dw.t, 0.0);
      env.gpu.column_dot_scale(dw.t, dx.t, dout.t, x.t, w.t, n, C, 1.0);
      return read_f32(dw);
    });
    twice("sum_squares", "n=1048576", [&] {
      const double d = env.gpu.sum_squares(x.t);
      std::vector<float> bits(2);
      std::memcpy(bits.data(), &d, sizeof d);
      return bits;
    });
  }
}

}  // namespace

std::vector<Group> op_groups() {
  return {
      {"gemm", "fp32 GEMM, all transposes, ld padding, beta 0 / 0.5",
       [](Env& e) { gemm_fp32(e, e.gpu, "gemm", kF32); }},
      {"gemm_tf32", "fp32 GEMM on TF32 tensor cores",
       [](Env& e) { gemm_fp32(e, e.gpu_tf32, "gemm_tf32", kTf32); }},
      {"gemm_bf16", "bf16 weight operand x fp32, fp32 output", gemm_bf16},
      {"fill", "fill f32/i32/bf16, copy", fills},
      {"elementwise", "add, axpy, scale, multiply, divide, adalora_importance, zero_below",
       elementwise},
      {"sum", "sum, sum_squares (double accumulation)", reductions},
      {"embedding", "embedding forward/backward", embedding},
      {"rmsnorm", "rmsnorm forward/backward (dx, dw)", rmsnorm},
      {"rope", "rotary embedding forward/backward", rope},
      {"attention", "causal GQA attention forward/backward", attention},
      {"attention_cached", "inference: attention over a K/V cache, scatter_rows", attention_cached},
      {"swiglu", "swiglu forward/backward", swiglu},
      {"cross_entropy", "fused cross-entropy (separate, in-place, loss only)", cross_entropy},
      {"argmax", "argmax_rows with ties", argmax},
      {"linear_cross_entropy", "fused chunked classifier + loss (dh, dW, argmax)",
       linear_cross_entropy_op},
      {"dropout", "dropout forward/backward, same mask", dropout},
      {"adamw", "fused AdamW", adamw},
      {"variants", "row_norms, scale_columns, scale_rows, column_dot_scale", variants},
      {"errors", "f64 rejected, OOM, bad arguments", errors},
      {"determinism", "bit-identical reruns", determinism},
  };
}

}  // namespace lwb::gpucheck
