#include "core/adapters/lora.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "core/adapters/adapter_state.h"
#include "core/adapters/peft_config.h"
#include "core/common/errors.h"
#include "core/model/weights_init.h"
#include "core/tensor/rng.h"

namespace lwb {

LoraLinear::LoraLinear(int layer, Target target, LinearShape shape, const AdapterConfig& config)
    : AdapterLinear(layer, target, shape, config), scaling_(config.scaling()), init_(config.init) {}

std::vector<std::pair<Tensor*, Tensor*>> LoraLinear::table_members() {
  return {{&lora_A, &lora_A_grad}, {&lora_B, &lora_B_grad}};
}

void LoraLinear::initialize(Backend& backend, std::uint64_t seed) {
  const std::uint64_t s = derive_seed(seed, module_index());
  // kaiming_uniform_(a=sqrt(5)) on [r, in] has bound 1/sqrt(in); PEFT's
  // "gaussian" init draws A ~ N(0, 1/r^2). B starts at zero either way.
  upload_values(backend, lora_A,
                init_ == LoraInit::Kaiming
                    ? uniform_values(lora_A.numel(), 1.0 / std::sqrt(static_cast<double>(in())), s)
                    : normal_values(lora_A.numel(), 1.0 / r_, s));
  backend.fill(lora_B, 0.0);
}

void LoraLinear::lora_forward(const ForwardContext& ctx, const Tensor& xa, const Tensor& y, double y_beta) {
  Backend& be = ctx.backend;
  be.gemm(false, true, ctx.rows, r_, in(), 1.0, xa, in(), lora_A, in(), 0.0, u_, r_);
  be.gemm(false, true, ctx.rows, out(), r_, scaling_, u_, r_, lora_B, r_, y_beta, y, out());
}

void LoraLinear::forward_with_base(const ForwardContext& ctx, const Tensor& x, const Tensor& xa, const Tensor& y) {
  if (ctx.base_products) {
    Linear::forward(ctx, x, y);
    lora_forward(ctx, xa, y, 1.0);
    return;
  }
  lora_forward(ctx, xa, y, 0.0);
  base_product(ctx, x, y, 1.0);
}

Tensor LoraLinear::lora_backward(const ForwardContext& ctx, const Tensor& xa, const Tensor& g) {
  Backend& be = ctx.backend;
  const std::int64_t n = ctx.rows;
  const Tensor du = du_scratch(ctx);
  be.gemm(true, false, out(), r_, n, scaling_, g, out(), u_, r_, 1.0, lora_B_grad, r_);
  be.gemm(false, false, n, r_, out(), scaling_, g, out(), lora_B, r_, 0.0, du, r_);
  be.gemm(true, false, r_, in(), n, 1.0, du, r_, xa, in(), 1.0, lora_A_grad, in());
  return du;
}

void LoraLinear::input_grad_with_base(const ForwardContext& ctx, const Tensor& x, const Tensor& g,
                                      const Tensor& du, const Tensor& dx, double dx_beta) {
  if (dx.defined()) ctx.backend.gemm(false, false, ctx.rows, in(), r_, 1.0, du, r_, lora_A, in(), dx_beta, dx, in());
  Linear::backward(ctx, x, g, dx, 1.0);
}

void LoraLinear::forward(const ForwardContext& ctx, const Tensor& x, const Tensor& y) {
  forward_with_base(ctx, x, adapter_input(ctx, x, true), y);
}

void LoraLinear::backward(const ForwardContext& ctx, const Tensor& x, const Tensor& dy,
                          const Tensor& dx, double dx_beta) {
  const Tensor du = lora_backward(ctx, adapter_input(ctx, x, false), dy);
  if (!dropout_active(ctx)) return input_grad_with_base(ctx, x, dy, du, dx, dx_beta);
  Linear::backward(ctx, x, dy, dx, dx_beta);
  if (!dx.defined()) return;
  const Tensor dxa = input_grad_buffer(ctx, dx);
  ctx.backend.gemm(false, false, ctx.rows, in(), r_, 1.0, du, r_, lora_A, in(), 1.0, dxa, in());
  finish_input_grad(ctx, dxa, dx);
}

void LoraLinear::merge_into_base(Backend& backend, double sign) {
  require_mergeable_base();
  backend.gemm(false, false, out(), in(), r_, sign * scaling_, lora_B, r_, lora_A, in(), 1.0,
               weight, in());
}

// ---- the LoRA family's shared pieces ------------------------------------------

std::vector<AdapterTensorSpec> lora_tensor_table() {
  return {{"lora_A.weight", [](std::int64_t in, std::int64_t, std::int64_t r) { return std::vector{r, in}; }},
          {"lora_B.weight", [](std::int64_t, std::int64_t out, std::int64_t r) { return std::vector{out, r}; }}};
}

double lora_scaling(const AdapterConfig& c) {
  return c.use_rslora ? c.alpha / std::sqrt(static_cast<double>(c.r)) : c.alpha / c.r;
}

void write_lora_config(const AdapterState& s, nlohmann::json& j) {
  const AdapterConfig& c = s.config;
  j["r"] = c.r;
  j["lora_alpha"] = c.alpha;
  j["lora_dropout"] = c.dropout;
  j["use_rslora"] = c.use_rslora;
  j["use_dora"] = false;
  j["init_lora_weights"] = c.init == LoraInit::Gaussian ? nlohmann::json("gaussian") : nlohmann::json(true);
  j["rank_pattern"] = nlohmann::json::object();
  j["alpha_pattern"] = nlohmann::json::object();
}

void read_lora_shape(const PeftConfigReader& c, PeftAdapterFields& out) {
  AdapterConfig& a = out.config;
  c.require_unset("rank_pattern", "per-module ranks are not supported; expected {}");
  a.r = c.integer("r", 8, 1);
  a.alpha = c.number("lora_alpha", 8);
  a.dropout = c.number("lora_dropout", 0);
  a.use_rslora = c.boolean("use_rslora", false);
}

void read_lora_config(const PeftConfigReader& c, PeftAdapterFields& out) {
  AdapterConfig& a = out.config;
  read_lora_shape(c, out);
  if (!c.has("init_lora_weights")) return;
  const nlohmann::json& init = c.at("init_lora_weights");
  if (init.is_boolean()) return;
  if (!init.is_string()) c.fail("init_lora_weights", "must be true, false or a string, got " + init.dump());
  // "eva" and "orthogonal" initialise A and B without touching W: after
  // training they are plain LoRA weights.
  const std::string v = init.get<std::string>();
  if (v == "gaussian")
    a.init = LoraInit::Gaussian;
  else if (v != "eva" && v != "orthogonal")
    c.fail("init_lora_weights", "is \"" + v +
                                    "\": this initialisation changes the base weights; save the adapter with PEFT's "
                                    "path_initial_model_for_weight_conversion to get a plain LoRA");
}

LoraFactors lora_factors_of(const AdapterConfig& c, int in, int out, const AdapterTensorReader& read) {
  return {c.r, lora_scaling(c), read("lora_A.weight", false, {c.r, in}), read("lora_B.weight", false, {out, c.r})};
}

ComparisonArm method_arm(const std::string& label, const std::string& description, std::string lr_note,
                         std::vector<std::pair<std::string, std::string>> more, double lr_factor) {
  ComparisonArm arm{label, description, {{"adapter.method", label}}, lr_factor, std::move(lr_note)};
  arm.settings.insert(arm.settings.end(), more.begin(), more.end());
  return arm;
}

const VariantDescriptor& lora_variant() {
  static const VariantDescriptor d = [] {
    VariantDescriptor v;
    v.name = "lora";
    v.title = "LoRA";
    v.description =
        "W + (alpha / r)·B·A with A (r×in) and B (out×r) trained and W frozen (Hu et al. 2021); B starts at zero, so "
        "training starts from the base model. \"rslora\" is LoRA with alpha / sqrt(r) (Kalajdzievski 2023), which "
        "keeps the update's scale as r grows";
    v.aliases = {"rslora"};
    // "lora" and "rslora" name the scaling too.
    v.select = [](AdapterConfig& c, const std::string& chosen) { c.use_rslora = chosen == "rslora"; };
    v.display_name = [](const AdapterConfig& c) { return std::string(c.use_rslora ? "rslora" : "lora"); };
    v.uses_init = v.uses_rslora = true;
    v.scaling = lora_scaling;
    v.tensors = lora_tensor_table();
    v.attach = attach_each<LoraLinear>;
    v.module = module_of<LoraLinear>;
    v.peft.type = "LORA";
    v.peft.fallback = true;
    v.peft.claims = [](const PeftConfigReader& c) { return !c.boolean("use_dora", false); };
    v.peft.read = read_lora_config;
    v.peft.write = write_lora_config;
    v.lora_form = lora_factors_of;
    v.factor_family = "lora";
    v.compare_arms = {
        method_arm("lora", "LoRA r=8", "the tiny-lora preset's rate, tuned on the tiny base"),
        // Same rank and alpha as LoRA: rsLoRA's s = alpha / sqrt(r) is then
        // sqrt(8) times larger, which is the point of comparing them; the rate
        // is divided by as much so that a step moves the output as LoRA's does.
        method_arm("rslora", "rsLoRA r=8",
                   "LoRA's rate / sqrt(r) = 1.06e-3: at equal rank and alpha rsLoRA scales the adapter by "
                   "alpha/sqrt(r), sqrt(8) times LoRA's alpha/r (Kalajdzievski 2023, arXiv 2312.03732; PEFT "
                   "LoraConfig.use_rslora), and under Adam the adapter's output moves by about lr times that scale "
                   "per step; neither source gives a rate",
                   {}, 1 / std::sqrt(8.0))};
    return v;
  }();
  return d;
}

}  // namespace lwb
