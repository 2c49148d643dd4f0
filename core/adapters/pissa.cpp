#include "core/adapters/pissa.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>

#include "core/adapters/peft_config.h"
#include "core/common/errors.h"
#include "core/common/integers.h"
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

namespace {

// PiSSA's initial factors of W [out, in] from its top-r triplets; PEFT divides
// S by the scaling first, so that s B A = U S Vt.
struct PissaFactors {
  std::vector<double> a, b;  // [r, in], [out, r]
};
PissaFactors pissa_factors(const SingularTriplets& t, int in, int out, int r, double scaling) {
  const std::size_t R = static_cast<std::size_t>(r), I = static_cast<std::size_t>(in),
                    O = static_cast<std::size_t>(out);
  PissaFactors f{std::vector<double>(R * I), std::vector<double>(O * R)};
  for (std::size_t j = 0; j < R; ++j) {
    const double root = std::sqrt(t.S[j] / scaling);
    for (std::size_t c = 0; c < I; ++c) f.a[j * I + c] = root * t.Vt[j * I + c];
    for (std::size_t o = 0; o < O; ++o) f.b[o * R + j] = root * t.U[o * R + j];
  }
  return f;
}

}  // namespace

void PissaLinear::initialize(Backend& backend, std::uint64_t seed) {
  const std::vector<double> w = download_values(backend, weight);
  const SingularTriplets t = niter_ < 0 ? top_singular_triplets(w, out(), in(), r_)
                                        : randomized_singular_triplets(w, out(), in(), r_, niter_,
                                                                       derive_seed(seed, module_index()));
  const PissaFactors f = pissa_factors(t, in(), out(), r_, scaling_);
  std::vector<double> residual = w;
  const std::vector<double> ba = matmul(f.b, false, f.a, out(), r_, in());
  for (std::size_t i = 0; i < residual.size(); ++i) residual[i] -= scaling_ * ba[i];
  upload_values(backend, lora_A, f.a);
  upload_values(backend, lora_B, f.b);
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

namespace {

// The config of the converted adapter: a plain LoRA of the original base
// (loading it must not decompose W again) with the same scaling at twice the
// rank, as PeftModel.save_pretrained writes it; the PiSSA config is kept
// beside it for the unconverted export.
void convert_pissa_config(AdapterState& s) {
  AdapterConfig& c = s.config;
  s.trained_as = c;
  c.alpha *= c.use_rslora ? std::sqrt(2.0) : 2.0;
  c.r *= 2;
  c.method = "lora";
  c.options.clear();
}

// The kept (converted) adapter's rank-r PiSSA config; FormatError naming the
// adapter when its rank is not twice the one it trained with.
const AdapterConfig& trained_pissa(const AdapterState& kept) {
  const int r = kept.trained_as ? kept.trained_as->r : 0;
  if (r <= 0 || kept.config.r != 2 * r)
    throw FormatError("adapter of " + kept.base_model,
                      "records PiSSA rank " + std::to_string(r) + " but holds a LoRA of rank " +
                          std::to_string(kept.config.r) + "; the converted form has twice the trained rank");
  return *kept.trained_as;
}

// Rows [first, first + R) of A' [2R, in] and columns [first, first + R) of B' [out, 2R].
void pissa_half(const AdapterState& kept, const std::string& module, int first, std::vector<double>& a,
                std::vector<double>& b) {
  const std::size_t R = static_cast<std::size_t>(trained_pissa(kept).r);
  const HostTensor& A = kept.tensors.at(peft_key(module, "lora_A.weight"));
  const HostTensor& B = kept.tensors.at(peft_key(module, "lora_B.weight"));
  const std::size_t I = static_cast<std::size_t>(A.shape[1]), O = static_cast<std::size_t>(B.shape[0]);
  a.assign(A.values.begin() + static_cast<std::ptrdiff_t>(first * R * I),
           A.values.begin() + static_cast<std::ptrdiff_t>((first + 1) * R * I));
  b.resize(O * R);
  for (std::size_t o = 0; o < O; ++o)
    for (std::size_t j = 0; j < R; ++j) b[o * R + j] = B.values[o * 2 * R + first * R + j];
}

// A' = [A; A0] and B' = [B | -B0]: A, B are the first halves. On the
// residual base they are a plain LoRA (PEFT's example saves them with
// init_lora_weights = true next to the residual model).
AdapterState pissa_own_form(const AdapterState& kept, bool on_residual_base) {
  AdapterState s = kept;
  s.config = trained_pissa(kept);
  s.config.targets = kept.config.targets;
  if (on_residual_base) {
    s.config.method = "lora";
    s.config.options.clear();
  }
  s.trained_as.reset();
  constexpr std::string_view prefix = "base_model.model.", suffix = ".lora_A.weight";
  std::vector<double> a, b;
  for (const auto& [key, t] : kept.tensors) {
    if (!key.starts_with(prefix) || !key.ends_with(suffix)) continue;
    const std::string module = key.substr(prefix.size(), key.size() - prefix.size() - suffix.size());
    pissa_half(kept, module, 0, a, b);
    HostTensor& A = s.tensors.at(key);
    HostTensor& B = s.tensors.at(peft_key(module, "lora_B.weight"));
    A.values.assign(a.begin(), a.end());
    A.shape = {s.config.r, A.shape[1]};
    B.values.assign(b.begin(), b.end());
    B.shape = {B.shape[0], s.config.r};
  }
  return s;
}

// W_res = W - s B0 A0 = W + s (-B0) A0 from the kept adapter's second halves.
std::vector<double> pissa_residual(const AdapterState& kept, const std::string& module, std::vector<double> w,
                                   int in, int out) {
  const AdapterConfig& c = trained_pissa(kept);
  std::vector<double> a0, neg_b0;
  pissa_half(kept, module, 1, a0, neg_b0);
  const std::vector<double> ba = matmul(neg_b0, false, a0, out, c.r, in);
  const double s = c.scaling();
  for (std::size_t i = 0; i < w.size(); ++i) w[i] += s * ba[i];
  return w;
}

// The unconverted form read from PEFT's files onto the original base: PEFT's
// from_pretrained re-runs pissa_init on it (SVD of W, the residual in its
// place) before the saved A and B overwrite the fresh ones. The residual
// depends only on U_r S_r V_rᵀ, not on the signs the SVD picks (distinct
// singular values), so the exact SVD here gives PEFT's residual to fp32
// rounding; a randomized one does not.
void pissa_to_kept_form(AdapterState& s, const Model& original, const std::string& source) {
  const AdapterConfig& c = s.config;
  if (c.option(kRandomized) != 0)
    throw FormatError(source, "init_lora_weights is \"pissa_niter_" + std::to_string(static_cast<int>(c.option(kNiter))) +
                                  "\": its A and B are relative to a residual base made by a randomized SVD, "
                                  "which cannot be reproduced from the original base, so applying them to it would "
                                  "be wrong. Save the adapter with PEFT's "
                                  "save_pretrained(path_initial_model_for_weight_conversion=...) (a plain LoRA of "
                                  "the original base), or save the residual model (PeftModel.unload() + "
                                  "save_pretrained) with the adapter's init_lora_weights set to true and import it "
                                  "with that residual model as --base");
  const double scaling = c.scaling();
  for (int l = 0; l < original.config().layers; ++l)
    for (Target t : c.targets) {
      const Linear& lin = original.linear(l, t);
      const std::vector<double> w = download_values(original.backend(), lin.weight);
      const PissaFactors f = pissa_factors(top_singular_triplets(w, lin.out(), lin.in(), c.r), lin.in(), lin.out(),
                                           c.r, scaling);
      convert_pissa_module(c.r, lin.in(), lin.out(), {f.a.begin(), f.a.end()}, {f.b.begin(), f.b.end()},
                           s.tensors.at(peft_key(lin.hf_name(), "lora_A.weight")),
                           s.tensors.at(peft_key(lin.hf_name(), "lora_B.weight")));
    }
  convert_pissa_config(s);
}

// init_lora_weights: "pissa" (the exact SVD) or "pissa_niter_K".
constexpr std::string_view kInitName = "pissa", kNiterPrefix = "pissa_niter_";

bool claims_pissa(const PeftConfigReader& c) {
  return !c.boolean("use_dora", false) && c.has("init_lora_weights") && c.at("init_lora_weights").is_string() &&
         c.at("init_lora_weights").get<std::string>().starts_with(kInitName);
}

void read_pissa_config(const PeftConfigReader& c, PeftAdapterFields& out) {
  read_lora_shape(c, out);
  const std::string init = c.string("init_lora_weights", "");
  AdapterConfig& a = out.config;
  a.set_option(kRandomized, init != kInitName);
  if (init == kInitName) return;
  const std::optional<int> niter =
      init.starts_with(kNiterPrefix) ? parse_integer<int>(init.substr(kNiterPrefix.size()), 0) : std::nullopt;
  if (!niter) c.fail("init_lora_weights", "is \"" + init + "\"; expected \"pissa\" or \"pissa_niter_K\" with K >= 0");
  a.set_option(kNiter, *niter);
}

void write_pissa_config(const AdapterState& s, nlohmann::json& j) {
  write_lora_config(s, j);
  const AdapterConfig& c = s.config;
  j["init_lora_weights"] = c.option(kRandomized) != 0
                               ? std::string(kNiterPrefix) + std::to_string(static_cast<int>(c.option(kNiter)))
                               : std::string(kInitName);
}

}  // namespace

void PissaController::finish_adapter_state(AdapterState& s) const {
  for (const Initial& m : initial_)
    convert_pissa_module(s.config.r, m.in, m.out, m.A0, m.B0, s.tensors.at(peft_key(m.module, "lora_A.weight")),
                         s.tensors.at(peft_key(m.module, "lora_B.weight")));
  convert_pissa_config(s);
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
    // Kept as the converted plain LoRA (method "lora"); its own form is a
    // LoRA folder whose init_lora_weights says "pissa" or "pissa_niter_K",
    // relative to the residual base.
    v.peft.type = "LORA";
    v.peft.claims = claims_pissa;
    v.peft.read = read_pissa_config;
    v.peft.write = write_pissa_config;
    v.peft.own_form = pissa_own_form;
    v.peft.residual = pissa_residual;
    v.peft.to_kept_form = pissa_to_kept_form;
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
