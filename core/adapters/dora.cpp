#include "core/adapters/dora.h"

#include <nlohmann/json.hpp>

#include "core/adapters/dora_monitor.h"
#include "core/adapters/peft_config.h"

namespace lwb {

namespace {
constexpr const char* kNormGrad = "dora.norm_grad";
}

DoraLinear::DoraLinear(int layer, Target target, LinearShape shape, const AdapterConfig& config)
    : LoraLinear(layer, target, shape, config), norm_grad_(config.option(kNormGrad) != 0) {}

std::vector<std::pair<Tensor*, Tensor*>> DoraLinear::table_members() {
  auto m = LoraLinear::table_members();
  m.emplace_back(&magnitude, &magnitude_grad);
  return m;
}

void DoraLinear::declare(ModelBuffers& b) {
  LoraLinear::declare(b);
  const std::string m = target_module_name(target());
  b.activations.add(&z_, layer(), m + ".dora", Shape{b.max_rows, out()});
  b.activations.add(&norm_, layer(), m + ".dora_norm", Shape{out()});
  b.activations.add(&g_, layer(), m + ".dora_norm", Shape{out()});
  // Autograd through the norm keeps W + sBA of every module until the
  // backward; detached, one shared scratch copy serves all modules.
  if (norm_grad_) b.activations.add(&w_prime_, layer(), m + ".dora_weight", Shape{out(), in()});
  b.workspace.add(&merged_norm_, layer(), m + ".dora_merge", Shape{out()});
}

// Scratch after the LoRA part: [W' (detached mode)] [dz: rows x out] [3 x out].
std::int64_t DoraLinear::scratch_elems(std::int64_t max_rows) const {
  return base_scratch_elems(max_rows) + (norm_grad_ ? 0 : std::int64_t{out()} * in()) +
         max_rows * out() + 3 * std::int64_t{out()};
}

Tensor DoraLinear::w_prime_buffer(const ForwardContext& ctx) const {
  return norm_grad_ ? w_prime_ : extra_scratch(ctx, 0, Shape{out(), in()});
}

// A bf16 W is widened into W' (fp32), so the norm of W + sBA is taken in
// fp32 over the rounded W, as PEFT does on a bf16 base under autocast.
void DoraLinear::compute_norm(Backend& be, const Tensor& w_prime) {
  be.copy(w_prime, weight);
  be.gemm(false, false, out(), in(), r_, scaling_, lora_B, r_, lora_A, in(), 1.0, w_prime, in());
  if (!norm_frozen_) be.row_norms(norm_, w_prime, out(), in());
}

void DoraLinear::initialize(Backend& backend, std::uint64_t seed) {
  LoraLinear::initialize(backend, seed);
  // m = ||W + sBA|| row-wise (= ||W|| with B = 0), so DoRA starts at the base.
  // W' is in the adapter's dtype: a bf16 W is widened into it.
  const Tensor tmp = make_tensor(backend, Shape{out(), in()}, lora_A.dtype);
  compute_norm(backend, tmp);
  backend.copy(magnitude, norm_);
}

std::int64_t DoraLinear::inference_scratch_elems() const { return std::int64_t{out()} * in(); }

void DoraLinear::fix_for_inference(Backend& backend, const Tensor& scratch) {
  compute_norm(backend, scratch.view(0, Shape{out(), in()}));
  backend.divide(g_, magnitude, norm_);
  norm_fixed_ = true;
}

void DoraLinear::forward(const ForwardContext& ctx, const Tensor& x, const Tensor& y) {
  Backend& be = ctx.backend;
  const std::int64_t n = ctx.rows;
  if (!norm_fixed_) {
    compute_norm(be, w_prime_buffer(ctx));
    be.divide(g_, magnitude, norm_);
  }
  const Tensor z = z_.rows(0, n);
  const Tensor xa = adapter_input(ctx, x, true);
  if (!dropout_active(ctx)) {
    forward_with_base(ctx, x, x, z);
    be.scale_columns(y, z, g_, n, out());
    return;
  }
  const Tensor gz = extra_scratch(ctx, norm_grad_ ? 0 : std::int64_t{out()} * in(), Shape{n, out()});
  Linear::forward(ctx, x, y);     // W x
  Linear::forward(ctx, xa, z);    // W xd
  be.axpy(y, -1.0, z);            // W x - W xd
  lora_forward(ctx, xa, z, 1.0);  // z = W xd + s B A xd
  be.scale_columns(gz, z, g_, n, out());
  be.axpy(y, 1.0, gz);
}

// With t_o = sum_i dy_io z_io: dm_o = t_o / n_o, the LoRA and base paths see
// g * dy. Through the norm (norm_grad): dL/dW'_o = -t_o m_o / n_o^3 * W'_o,
// which reaches B and A as s (dL/dW') A^T and s B^T (dL/dW').
void DoraLinear::backward(const ForwardContext& ctx, const Tensor& x, const Tensor& dy,
                          const Tensor& dx, double dx_beta) {
  Backend& be = ctx.backend;
  const std::int64_t n = ctx.rows;
  const std::int64_t base = norm_grad_ ? 0 : std::int64_t{out()} * in();
  const Tensor dz = extra_scratch(ctx, base, Shape{n, out()});
  const Tensor t = extra_scratch(ctx, base + n * out(), Shape{out()});
  const Tensor t_over_n = extra_scratch(ctx, base + n * out() + out(), Shape{out()});
  const Tensor coef = extra_scratch(ctx, base + n * out() + 2 * out(), Shape{out()});

  be.fill(t, 0.0);
  be.column_dot_scale(t, dz, dy, z_, g_, n, out(), 1.0);  // and dz = g * dy
  be.divide(t_over_n, t, norm_);
  be.axpy(magnitude_grad, 1.0, t_over_n);
  if (norm_grad_) {
    be.multiply(coef, t_over_n, g_);
    be.divide(coef, coef, norm_);
    be.scale(coef, -1.0);
    be.scale_rows(w_prime_, w_prime_, coef, out(), in());
    be.gemm(false, true, out(), r_, in(), scaling_, w_prime_, in(), lora_A, in(), 1.0, lora_B_grad, r_);
    be.gemm(true, false, r_, in(), out(), scaling_, lora_B, r_, w_prime_, in(), 1.0, lora_A_grad, in());
  }

  const Tensor du = lora_backward(ctx, adapter_input(ctx, x, false), dz);
  if (!dropout_active(ctx)) return input_grad_with_base(ctx, x, dz, du, dx, dx_beta);
  Linear::backward(ctx, x, dy, dx, dx_beta);  // the W x term
  if (!dx.defined()) return;
  const Tensor dxa = input_grad_buffer(ctx, dx);
  be.axpy(dz, -1.0, dy);  // (g - 1) dy for the W xd term
  be.gemm(false, false, n, in(), out(), 1.0, dz, out(), weight, in(), 1.0, dxa, in());
  be.gemm(false, false, n, in(), r_, 1.0, du, r_, lora_A, in(), 1.0, dxa, in());
  finish_input_grad(ctx, dxa, dx);
}

void DoraLinear::merge_into_base(Backend& be, double sign) {
  require_mergeable_base();
  if (sign > 0) {
    LoraLinear::merge_into_base(be, 1.0);  // W + sBA
    be.row_norms(merged_norm_, weight, out(), in());
    be.divide(g_, magnitude, merged_norm_);
    be.scale_rows(weight, weight, g_, out(), in());
  } else {
    be.divide(g_, merged_norm_, magnitude);  // 1 / g at merge time
    be.scale_rows(weight, weight, g_, out(), in());
    LoraLinear::merge_into_base(be, -1.0);
  }
}

const VariantDescriptor& dora_variant() {
  static const VariantDescriptor d = [] {
    VariantDescriptor v;
    v.name = "dora";
    v.title = "DoRA";
    v.description =
        "weight-decomposed LoRA (Liu et al. 2024): each output row of W + sBA is normalised and scaled by a "
        "trained magnitude m, so direction (LoRA) and magnitude are learnt apart; closer to full fine-tuning at "
        "the same rank, one vector per module more and a slower step";
    v.aliases = {"dora-norm-grad"};
    v.select = [](AdapterConfig& c, const std::string& chosen) {
      c.set_option(kNormGrad, chosen == "dora-norm-grad");
    };
    v.display_name = [](const AdapterConfig& c) {
      return std::string(c.option(kNormGrad) != 0 ? "dora-norm-grad" : "dora");
    };
    v.uses_init = v.uses_rslora = true;
    v.options = {{kNormGrad, FieldKind::Bool, 0, 0, 1, false, false, 1, "Gradient through the norm",
                  "DoRA's full form: the gradient flows through ||W + sBA|| (keeps W + sBA of every module "
                  "for the backward); off, the norm is a constant as in PEFT and the DoRA paper's 4.3"}};
    v.scaling = lora_scaling;
    v.tensors = lora_tensor_table();
    v.tensors.push_back({"lora_magnitude_vector", [](std::int64_t, std::int64_t out, std::int64_t) {
                           return std::vector<std::int64_t>{out};
                         }});
    v.attach = attach_each<DoraLinear>;
    v.module = module_of<DoraLinear>;
    v.controller = [](const ControllerContext& c) { return std::make_unique<DoraMonitor>(c.total_steps); };
    v.peft.type = "LORA";
    v.peft.claims = [](const PeftConfigReader& c) { return c.boolean("use_dora", false); };
    v.peft.read = read_lora_config;
    v.peft.write = [](const AdapterState& s, nlohmann::json& j) {
      write_lora_config(s, j);
      j["use_dora"] = true;
    };
    v.caps.composable = false;
    v.caps.not_composable_why =
        "it is a DoRA adapter; its magnitude vectors rescale W + sBA row by row and do not combine across "
        "adapters (merge it into a base model instead)";
    v.compare_arms = {method_arm("dora", "DoRA r=8",
                                 "2/3 of LoRA's rate, 2e-3: DoRA's authors suggest \"starting with a slightly lower "
                                 "learning rate than that of LoRA\" (github.com/NVlabs/DoRA, README, \"DoRA "
                                 "hyperparameters settings\"), and their LLaMA-7B commonsense runs train DoRA at 2e-4 "
                                 "where LoRA trains at 3e-4 (commonsense_reasoning/README.md; 1e-4 at r = 32); "
                                 "PEFT's docs give no rate for DoRA",
                                 {}, 2.0 / 3.0)};
    // PEFT: (m/||W'|| - 1) * base_result and m/||W'|| * lora_result save both
    // results; with the norm's gradient autograd also keeps the identity
    // through A and W + sBA.
    v.eager_terms = {
        {"DoRA base and LoRA results (saved by the magnitude products)",
         [](const EagerModule& m) { return "2 · N·out · " + std::to_string(m.activation_bytes) + " B"; },
         [](const AdapterConfig&, const EagerModule& m) { return 2 * m.activation_bytes * m.N * m.out; }},
        {"DoRA norm with gradient: identity through A, W + s·B·A",
         [](const EagerModule& m) { return "(in·in + out·in) · " + std::to_string(m.adapter_bytes) + " B"; },
         [](const AdapterConfig& c, const EagerModule& m) {
           return c.option(kNormGrad) != 0 ? m.adapter_bytes * (m.in * m.in + m.out * m.in) : 0;
         }}};
    return v;
  }();
  return d;
}

}  // namespace lwb
