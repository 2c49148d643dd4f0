#include "core/adapters/pissa.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "core/adapters/peft_config.h"
#include "core/common/errors.h"
#include "core/model/weights_init.h"
#include "core/tensor/rng.h"

namespace lwb {

namespace {

constexpr const char* kRandomized = "pissa.randomized";
constexpr const char* kNiter = "pissa.niter";

// c [m, n] = a b, or aᵀ b when trans_a; row-major, a [m, k] (aᵀ: a is [k, m]), b [k, n].
std::vector<double> matmul(const std::vector<double>& a, bool trans_a, const std::vector<double>& b, int m, int k,
                           int n) {
  std::vector<double> c(static_cast<std::size_t>(m) * n, 0.0);
  for (int i = 0; i < m; ++i)
    for (int p = 0; p < k; ++p) {
      const double x = trans_a ? a[static_cast<std::size_t>(p) * m + i] : a[static_cast<std::size_t>(i) * k + p];
      const double* bp = &b[static_cast<std::size_t>(p) * n];
      double* ci = &c[static_cast<std::size_t>(i) * n];
      for (int j = 0; j < n; ++j) ci[j] += x * bp[j];
    }
  return c;
}

// Orthonormalises the k columns of a row-major [rows, k] matrix in place:
// modified Gram-Schmidt, run twice so the columns stay orthogonal to
// round-off even when the sketch's columns are nearly parallel. A column that
// vanishes (W of rank < k) stays zero and adds nothing to the projection.
void orthonormalize(std::vector<double>& q, int rows, int k) {
  auto col = [&](int j, int i) -> double& { return q[static_cast<std::size_t>(i) * k + j]; };
  for (int pass = 0; pass < 2; ++pass)
    for (int j = 0; j < k; ++j) {
      for (int p = 0; p < j; ++p) {
        double dot = 0;
        for (int i = 0; i < rows; ++i) dot += col(p, i) * col(j, i);
        for (int i = 0; i < rows; ++i) col(j, i) -= dot * col(p, i);
      }
      double norm = 0;
      for (int i = 0; i < rows; ++i) norm += col(j, i) * col(j, i);
      norm = std::sqrt(norm);
      for (int i = 0; i < rows; ++i) col(j, i) = norm > 1e-300 ? col(j, i) / norm : 0.0;
    }
}

}  // namespace

SingularTriplets randomized_singular_triplets(const std::vector<double>& w, int rows, int cols, int r, int niter,
                                              std::uint64_t seed) {
  // Q spans W Ω; each iteration Q <- orth(W orth(Wᵀ Q)) sharpens it towards
  // the top-r left subspace.
  std::vector<double> q = matmul(w, false, normal_values(std::int64_t{cols} * r, 1.0, seed), rows, cols, r);
  orthonormalize(q, rows, r);
  for (int i = 0; i < niter; ++i) {
    std::vector<double> z = matmul(w, true, q, cols, rows, r);  // Wᵀ Q [cols, r]
    orthonormalize(z, cols, r);
    q = matmul(w, false, z, rows, cols, r);
    orthonormalize(q, rows, r);
  }
  // W ≈ Q (Qᵀ W) and Qᵀ W [r, cols] = Ub S Vt exactly, so U = Q Ub.
  const std::vector<double> p = matmul(q, true, w, r, rows, cols);
  SingularTriplets t = top_singular_triplets(p, r, cols, r);
  t.U = matmul(q, false, t.U, rows, r, r);
  // ||W - Q P||² = ||W||² - ||P||² since Q has orthonormal columns.
  double total = 0, kept = 0;
  for (double x : w) total += x * x;
  for (double s : t.S) kept += s * s;
  t.relative_error = total > 0 ? std::sqrt(std::max(0.0, total - kept) / total) : 0.0;
  return t;
}

PissaLinear::PissaLinear(int layer, Target target, LinearShape shape, const AdapterConfig& config)
    : LoraLinear(layer, target, shape, config),
      niter_(config.option(kRandomized) != 0 ? static_cast<int>(config.option(kNiter)) : -1) {}

void PissaLinear::initialize(Backend& backend, std::uint64_t seed) {
  const std::vector<double> w = download_values(backend, weight);
  const SingularTriplets t = niter_ < 0 ? top_singular_triplets(w, out(), in(), r_)
                                        : randomized_singular_triplets(w, out(), in(), r_, niter_,
                                                                       derive_seed(seed, module_index()));
  // PEFT divides S by the scaling first, so that s B A = U S Vt.
  const std::size_t R = static_cast<std::size_t>(r_), I = static_cast<std::size_t>(in()),
                    O = static_cast<std::size_t>(out());
  std::vector<double> a(R * I), b(O * R);
  for (std::size_t j = 0; j < R; ++j) {
    const double root = std::sqrt(t.S[j] / scaling_);
    for (std::size_t c = 0; c < I; ++c) a[j * I + c] = root * t.Vt[j * I + c];
    for (std::size_t o = 0; o < O; ++o) b[o * R + j] = root * t.U[o * R + j];
  }
  std::vector<double> residual = w;
  const std::vector<double> ba = matmul(b, false, a, out(), r_, in());
  for (std::size_t i = 0; i < residual.size(); ++i) residual[i] -= scaling_ * ba[i];
  upload_values(backend, lora_A, a);
  upload_values(backend, lora_B, b);
  upload_values(backend, weight, residual);
}

void PissaController::attach(Model& model, AdamW&, MemoryLedger&) {
  for (int l = 0; l < model.config().layers; ++l)
    for (Target t : kAllTargets)
      if (auto* m = dynamic_cast<PissaLinear*>(&model.linear(l, t))) {
        const std::vector<double> a = download_values(model.backend(), m->lora_A),
                                  b = download_values(model.backend(), m->lora_B);
        initial_.push_back({m->hf_name(), m->in(), m->out(), {a.begin(), a.end()}, {b.begin(), b.end()}});
      }
}

void convert_pissa_module(int r, int in, int out, const std::vector<float>& A0, const std::vector<float>& B0,
                          HostTensor& A, HostTensor& B) {
  const std::size_t R = static_cast<std::size_t>(r), I = static_cast<std::size_t>(in),
                    O = static_cast<std::size_t>(out);
  if (A.values.size() != R * I || B.values.size() != O * R || A0.size() != R * I || B0.size() != O * R)
    throw Error("PiSSA conversion: factors of a [" + std::to_string(out) + ", " + std::to_string(in) +
                "] module of rank " + std::to_string(r) + " have the wrong sizes");
  A.values.insert(A.values.end(), A0.begin(), A0.end());  // rows r..2r-1: A0
  A.shape = {2 * std::int64_t{r}, in};
  std::vector<float> b(O * 2 * R);
  for (std::size_t o = 0; o < O; ++o)
    for (std::size_t j = 0; j < R; ++j) {
      b[o * 2 * R + j] = B.values[o * R + j];
      b[o * 2 * R + R + j] = -B0[o * R + j];
    }
  B.values = std::move(b);
  B.shape = {out, 2 * std::int64_t{r}};
}

void PissaController::finish_adapter_state(AdapterState& s) const {
  AdapterConfig& c = s.config;
  for (const Initial& m : initial_)
    convert_pissa_module(c.r, m.in, m.out, m.A0, m.B0, s.tensors.at(peft_key(m.module, "lora_A.weight")),
                         s.tensors.at(peft_key(m.module, "lora_B.weight")));
  // Same scaling at twice the rank (PeftModel.save_pretrained does the same).
  c.alpha *= c.use_rslora ? std::sqrt(2.0) : 2.0;
  c.r *= 2;
  // A plain LoRA of the original base: loading it must not decompose W again.
  c.method = "lora";
  c.options.clear();
}

namespace {

void validate_pissa(const AdapterConfig& c, const ModelConfig& model, std::int64_t, std::int64_t) {
  for (Target t : c.targets) {
    const LinearShape s = linear_shape(model, t);
    if (c.r > std::min(s.in, s.out))
      throw ConfigError("adapter.r", "PiSSA takes the top r singular vectors of each adapted weight; r = " +
                                         std::to_string(c.r) + " exceeds min(in, out) = " +
                                         std::to_string(std::min(s.in, s.out)) + " of " + target_module_name(t));
  }
}

}  // namespace

const VariantDescriptor& pissa_variant() {
  static const VariantDescriptor d = [] {
    VariantDescriptor v;
    v.name = "pissa";
    v.title = "PiSSA";
    v.description =
        "principal singular values and vectors (Meng et al. 2024): LoRA whose A and B start from the top-r "
        "singular vectors of W, the rest of W kept frozen as the residual, so training moves the principal "
        "directions first; the kept adapter is converted to a plain LoRA of the original base, as PEFT does";
    v.uses_rslora = true;
    v.options = {{kRandomized, FieldKind::Bool, 0, 0, 1, false, false, 1, "Randomized SVD",
                  "off: the exact SVD of W (PEFT's init_lora_weights = \"pissa\"); on: a randomized SVD "
                  "(\"pissa_niter_K\"), much faster on large weights"},
                 {kNiter, FieldKind::Int, 4, 0, kUnbounded, false, false, 1 << 20, "Subspace iterations",
                  "K of the randomized SVD (\"pissa_niter_K\"); more iterations come closer to the exact SVD"}};
    v.validate = validate_pissa;
    v.scaling = lora_scaling;
    v.tensors = lora_tensor_table();
    v.attach = attach_each<PissaLinear>;
    v.module = module_of<PissaLinear>;
    v.controller = [](const ControllerContext&) { return std::make_unique<PissaController>(); };
    // Kept and exported as the converted plain LoRA (method "lora"), so no
    // PEFT form of its own: a PEFT folder saved without the conversion needs
    // the residual base and is refused by LoRA's reader with that advice.
    v.caps.composable = false;
    v.caps.not_composable_why =
        "during training its A and B are relative to the residual base; the adapter it keeps is the converted "
        "LoRA of the original base, which composes";
    v.caps.resumable = false;
    v.caps.not_resumable_why =
        "the initial factors A0, B0 that the export subtracts are not saved with the run's state";
    v.caps.bf16_base = false;
    v.caps.not_bf16_why =
        "PiSSA replaces each base weight by its residual W - s B A; rounded to bf16 the residual no longer adds "
        "up to W with the adapter, so PiSSA needs model.frozen_dtype = fp32";
    v.compare_arms = {method_arm("pissa", "PiSSA r=8 (exact SVD)",
                                 "LoRA's rate / 4 = 7.5e-4, a guess not tuned here: A and B start at W's principal "
                                 "components instead of B = 0, so the first steps already move s B A along them; the "
                                 "PiSSA paper (Meng et al. 2024, arXiv 2404.02948) gives no rate for a model this "
                                 "small",
                                 {}, 0.25)};
    return v;
  }();
  return d;
}

}  // namespace lwb
