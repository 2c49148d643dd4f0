#include "core/adapters/adalora.h"

#include <nlohmann/json.hpp>

#include "core/adapters/adalora_allocator.h"
#include "core/adapters/adapter_state.h"
#include "core/adapters/peft_config.h"
#include "core/model/weights_init.h"
#include "core/tensor/rng.h"

namespace lwb {

AdaLoraOptions::AdaLoraOptions(const AdapterConfig& c)
    : target_r(static_cast<int>(c.option("adalora.target_r"))),
      tinit(static_cast<std::int64_t>(c.option("adalora.tinit"))),
      tfinal(static_cast<std::int64_t>(c.option("adalora.tfinal"))),
      delta_t(static_cast<int>(c.option("adalora.delta_t"))),
      beta1(c.option("adalora.beta1")),
      beta2(c.option("adalora.beta2")),
      orth_reg_weight(c.option("adalora.orth_reg_weight")) {}

AdaLoraLinear::AdaLoraLinear(int layer, Target target, LinearShape shape, const AdapterConfig& config)
    : LoraLinear(layer, target, shape, config) {}

std::vector<std::pair<Tensor*, Tensor*>> AdaLoraLinear::table_members() {
  auto m = LoraLinear::table_members();
  m.emplace_back(&lora_E, &lora_E_grad);
  return m;
}

// Scratch after the LoRA part: v = u * E [rows, r].
std::int64_t AdaLoraLinear::scratch_elems(std::int64_t max_rows) const {
  return base_scratch_elems(max_rows) + max_rows * r_;
}

void AdaLoraLinear::initialize(Backend& backend, std::uint64_t seed) {
  const std::uint64_t s = derive_seed(seed, module_index());
  upload_values(backend, lora_A, normal_values(lora_A.numel(), 0.02, s));
  upload_values(backend, lora_B, normal_values(lora_B.numel(), 0.02, derive_seed(s, 1)));
  backend.fill(lora_E, 0.0);
}

void AdaLoraLinear::forward(const ForwardContext& ctx, const Tensor& x, const Tensor& y) {
  Backend& be = ctx.backend;
  const std::int64_t n = ctx.rows;
  Linear::forward(ctx, x, y);
  const Tensor xa = adapter_input(ctx, x, true);
  const Tensor v = extra_scratch(ctx, 0, Shape{n, r_});
  be.gemm(false, true, n, r_, in(), 1.0, xa, in(), lora_A, in(), 0.0, u_, r_);
  be.scale_columns(v, u_, lora_E, n, r_);
  be.gemm(false, true, n, out(), r_, scaling_, v, r_, lora_B, r_, 1.0, y, out());
}

// With u = xa A^T, v = u * E, y += c v B^T: dB += c dy^T v, dv = c dy B,
// dE += colsum(dv * u), du = dv * E, dA += du^T xa, dxa = du A.
void AdaLoraLinear::backward(const ForwardContext& ctx, const Tensor& x, const Tensor& dy,
                             const Tensor& dx, double dx_beta) {
  Backend& be = ctx.backend;
  const std::int64_t n = ctx.rows;
  Linear::backward(ctx, x, dy, dx, dx_beta);
  const Tensor v = extra_scratch(ctx, 0, Shape{n, r_});
  const Tensor dv = ctx.scratch.view(0, Shape{n, r_});
  be.scale_columns(v, u_, lora_E, n, r_);
  be.gemm(true, false, out(), r_, n, scaling_, dy, out(), v, r_, 1.0, lora_B_grad, r_);
  be.gemm(false, false, n, r_, out(), scaling_, dy, out(), lora_B, r_, 0.0, dv, r_);
  be.column_dot_scale(lora_E_grad, dv, dv, u_, lora_E, n, r_, 1.0);
  const Tensor xa = adapter_input(ctx, x, false);
  be.gemm(true, false, r_, in(), n, 1.0, dv, r_, xa, in(), 1.0, lora_A_grad, in());
  if (!dx.defined()) return;
  const Tensor dxa = input_grad_buffer(ctx, dx);
  be.gemm(false, false, n, in(), r_, 1.0, dv, r_, lora_A, in(), 1.0, dxa, in());
  finish_input_grad(ctx, dxa, dx);
}

void AdaLoraLinear::merge_into_base(Backend& be, double sign) {
  require_mergeable_base();
  const Tensor ea = make_tensor(be, Shape{r_, in()}, lora_A.dtype);
  be.scale_rows(ea, lora_A, lora_E, r_, in());
  be.gemm(false, false, out(), in(), r_, sign * scaling_, lora_B, r_, ea, in(), 1.0, weight, in());
}

// ---- PEFT's ADALORA files ----------------------------------------------------

namespace {

// PEFT's rank_pattern names the E vector as the allocator saw it inside the
// wrapped transformers model: "model.layers.0.self_attn.q_proj.lora_E".
std::string rank_pattern_key(const std::string& module) { return module + ".lora_E"; }

std::vector<std::size_t> kept_indices(const std::vector<bool>& keep) {
  std::vector<std::size_t> idx;
  for (std::size_t i = 0; i < keep.size(); ++i)
    if (keep[i]) idx.push_back(i);
  return idx;
}

// Rows (axis 0) or columns (axis 1) `idx` of a 2-D tensor.
HostTensor select(const HostTensor& t, const std::vector<std::size_t>& idx, int axis) {
  const std::int64_t rows = t.shape[0], cols = t.shape[1];
  const auto k = static_cast<std::int64_t>(idx.size());
  HostTensor out;
  out.shape = axis == 0 ? std::vector<std::int64_t>{k, cols} : std::vector<std::int64_t>{rows, k};
  out.values.reserve(static_cast<std::size_t>(out.numel()));
  if (axis == 0) {
    for (std::size_t i : idx)
      out.values.insert(out.values.end(), t.values.begin() + i * cols, t.values.begin() + (i + 1) * cols);
  } else {
    for (std::int64_t r = 0; r < rows; ++r)
      for (std::size_t i : idx) out.values.push_back(t.values[r * cols + i]);
  }
  return out;
}

// The inverse of select: a tensor of `full` along `axis`, zero elsewhere.
HostTensor spread(const HostTensor& t, const std::vector<std::size_t>& idx, int axis, std::int64_t full) {
  const std::int64_t rows = t.shape[0], cols = t.shape[1];
  HostTensor out;
  out.shape = axis == 0 ? std::vector<std::int64_t>{full, cols} : std::vector<std::int64_t>{rows, full};
  out.values.assign(static_cast<std::size_t>(out.numel()), 0.0f);
  for (std::size_t j = 0; j < idx.size(); ++j) {
    if (axis == 0)
      std::copy_n(t.values.begin() + j * cols, cols, out.values.begin() + idx[j] * cols);
    else
      for (std::int64_t r = 0; r < rows; ++r) out.values[r * full + idx[j]] = t.values[r * cols + j];
  }
  return out;
}

constexpr std::pair<const char*, int> kSlicedAxes[] = {{"lora_A", 0}, {"lora_E", 0}, {"lora_B", 1}};

// The tensors as PEFT saves them: sliced to the kept triplets.
void slice_to_kept(const AdapterState& s, std::map<std::string, HostTensor>& out) {
  for (const auto& [module, keep] : s.rank_pattern) {
    const std::vector<std::size_t> idx = kept_indices(keep);
    for (const auto& [suffix, axis] : kSlicedAxes) {
      const std::string key = peft_key(module, suffix);
      const auto it = s.tensors.find(key);
      if (it == s.tensors.end() || it->second.shape.size() != 2 ||
          it->second.shape[axis] != static_cast<std::int64_t>(keep.size()))
        throw ConfigError("rank_pattern", "\"" + module + "\" needs a tensor " + key + " with init_r = " +
                                              std::to_string(keep.size()) + (axis == 0 ? " rows" : " columns"));
      out[key] = select(it->second, idx, axis);
    }
  }
}

// Back to init_r, masked triplets zero.
void spread_to_full(AdapterState& s, const std::map<std::string, std::string>& key_in_file, const std::string& source) {
  for (const auto& [module, keep] : s.rank_pattern) {
    const std::vector<std::size_t> idx = kept_indices(keep);
    for (const auto& [suffix, axis] : kSlicedAxes) {
      const auto it = s.tensors.find(peft_key(module, suffix));
      if (it == s.tensors.end()) continue;  // reported as missing by the fit check
      HostTensor& t = it->second;
      if (t.shape.size() != 2 || t.shape[axis] != static_cast<std::int64_t>(idx.size()))
        throw FormatError(source, "tensor \"" + key_in_file.at(it->first) + "\" has " +
                                      (t.shape.size() == 2 ? std::to_string(t.shape[axis]) : std::string("no")) +
                                      (axis == 0 ? " rows" : " columns") + " but rank_pattern keeps " +
                                      std::to_string(idx.size()) + " of init_r = " + std::to_string(s.config.r) +
                                      " triplets");
      t = spread(t, idx, axis, s.config.r);
    }
  }
}

// "model.layers.0.self_attn.q_proj.lora_E" (PEFT), also with the adapter name
// or the "base_model.model." prefix -> the module's hf name.
std::string rank_pattern_module(const PeftConfigReader& c, std::string key) {
  constexpr std::string_view prefix = "base_model.model.";
  if (key.starts_with(prefix)) key.erase(0, prefix.size());
  constexpr std::string_view tail = ".lora_E";
  if (const std::size_t pos = key.rfind(tail);
      pos != std::string::npos && (pos + tail.size() == key.size() || key[pos + tail.size()] == '.')) {
    const std::string module = key.substr(0, pos);
    if (parse_module_hf_name(module)) return module;
  }
  c.fail("rank_pattern",
         "has the key \"" + key +
             "\"; expected a module's E vector such as \"model.layers.0.self_attn.q_proj.lora_E\"");
}

void read_adalora_config(const PeftConfigReader& c, PeftAdapterFields& p) {
  AdapterConfig& a = p.config;
  if (c.boolean("use_dora", false)) c.fail("use_dora", "is true, but AdaLoRA has no DoRA form");
  const AdaLoraOptions d;
  a.alpha = c.number("lora_alpha", 8);
  a.dropout = c.number("lora_dropout", 0);
  a.r = c.integer("init_r", 12, 1);  // AdaLoRA's rank; its "r" is unused
  a.set_option("adalora.target_r", c.integer("target_r", d.target_r, 0));
  a.set_option("adalora.tinit", static_cast<double>(c.integer("tinit", d.tinit, std::int64_t{0})));
  a.set_option("adalora.tfinal", static_cast<double>(c.integer("tfinal", d.tfinal, std::int64_t{0})));
  a.set_option("adalora.delta_t", c.integer("deltaT", d.delta_t, 1));
  a.set_option("adalora.beta1", c.number("beta1", d.beta1));
  a.set_option("adalora.beta2", c.number("beta2", d.beta2));
  a.set_option("adalora.orth_reg_weight", c.number("orth_reg_weight", d.orth_reg_weight));
  p.total_step = c.integer("total_step", std::int64_t{0}, std::int64_t{0});
  if (!c.has("rank_pattern")) return;
  if (!c.at("rank_pattern").is_object()) c.fail("rank_pattern", "must be an object or null");
  for (const auto& [key, flags] : c.at("rank_pattern").items()) {
    const std::string module = rank_pattern_module(c, key);
    if (!flags.is_array() || flags.size() != static_cast<std::size_t>(a.r))
      c.fail("rank_pattern", "entry \"" + key + "\" must be a list of init_r = " + std::to_string(a.r) + " booleans");
    std::vector<bool> keep;
    for (const nlohmann::json& f : flags) {
      if (!f.is_boolean()) c.fail("rank_pattern", "entry \"" + key + "\" holds " + f.dump() + "; expected booleans");
      keep.push_back(f.get<bool>());
    }
    p.rank_pattern[module] = std::move(keep);
  }
}

void write_adalora_config(const AdapterState& s, nlohmann::json& j) {
  const AdapterConfig& c = s.config;
  const AdaLoraOptions o(c);
  j["lora_alpha"] = c.alpha;
  j["lora_dropout"] = c.dropout;
  j["use_rslora"] = false;
  j["use_dora"] = false;
  j["init_lora_weights"] = true;
  j["alpha_pattern"] = nlohmann::json::object();
  // AdaLoRA's rank is init_r; PEFT warns when its unused "r" differs from the default, so it is left out.
  j["init_r"] = c.r;
  j["target_r"] = o.target_r;
  j["tinit"] = o.tinit;
  j["tfinal"] = o.tfinal;
  j["deltaT"] = o.delta_t;
  j["beta1"] = o.beta1;
  j["beta2"] = o.beta2;
  j["orth_reg_weight"] = o.orth_reg_weight;
  // total_step only shapes the training schedule, but PEFT refuses a config
  // whose total_step does not exceed tinit + tfinal; an unknown count is
  // written as the smallest value it accepts.
  j["total_step"] = s.total_step > 0 ? s.total_step : o.tinit + o.tfinal + 1;
  if (s.rank_pattern.empty()) {
    j["rank_pattern"] = nullptr;  // PEFT's value before the mask is fixed: nothing is sliced
  } else {
    for (const auto& [module, keep] : s.rank_pattern) j["rank_pattern"][rank_pattern_key(module)] = keep;
  }
}

// The budget's schedule, checked where the run's length is known (the
// planner plans the initial rank and skips it).
void validate_adalora(const AdapterConfig& c, const ModelConfig&, std::int64_t total_steps, std::int64_t) {
  if (total_steps < 0) return;
  const AdaLoraOptions a(c);
  if (a.target_r > c.r)
    throw ConfigError("adapter.adalora.target_r", "target rank " + std::to_string(a.target_r) +
                                                      " exceeds the initial rank adapter.r = " + std::to_string(c.r));
  if (a.tinit >= total_steps - a.tfinal)
    throw ConfigError("adapter.adalora.tinit", std::to_string(a.tinit) +
                                                   " must be below train.steps - adapter.adalora.tfinal = " +
                                                   std::to_string(total_steps - a.tfinal) + " so the budget can shrink");
}

}  // namespace

const VariantDescriptor& adalora_variant() {
  static const VariantDescriptor d = [] {
    const AdaLoraOptions o;
    VariantDescriptor v;
    v.name = "adalora";
    v.title = "AdaLoRA";
    v.description =
        "adaptive budget (Zhang et al. 2023): each module's update is P·diag(E)·Q in SVD form; every deltaT steps "
        "the triplets of least importance (a smoothed |weight × gradient|) are masked, so the total rank shrinks "
        "from r to the target and goes where it matters most";
    v.options = {
        {"adalora.target_r", FieldKind::Int, double(o.target_r), 1, kUnbounded, false, false, std::numeric_limits<std::int32_t>::max(), "Target rank",
         "the average rank per module the budget shrinks to by the end (PEFT's target_r); the total budget is "
         "target rank × modules, and adapter.r is the rank each module starts from (init_r)"},
        {"adalora.tinit", FieldKind::Int, double(o.tinit), 0, kUnbounded, false, false, kMaxStepCount, "tinit (steps)",
         "t_i in the paper: steps trained at the full initial rank before any triplet is pruned, so the importance "
         "scores settle first (the paper's schedule is cubic from t_i to T - t_f)"},
        {"adalora.tfinal", FieldKind::Int, double(o.tfinal), 0, kUnbounded, false, false, kMaxStepCount, "tfinal (steps)",
         "t_f in the paper: the last steps, trained with the final budget and the mask frozen, so the kept "
         "triplets fine-tune without further pruning; tinit + tfinal must stay below the run's steps"},
        {"adalora.delta_t", FieldKind::Int, double(o.delta_t), 1, kUnbounded, false, false, std::numeric_limits<std::int32_t>::max(), "deltaT",
         "ΔT in the paper: steps between budget updates; every deltaT steps between tinit and the final phase the "
         "least important triplets are masked (small: a smoother schedule, more mask changes)"},
        {"adalora.beta1", FieldKind::Float, o.beta1, 0, 1, false, true, 0, "beta1 (sensitivity)",
         "β1 in the paper: the exponential moving average of each parameter's sensitivity |w·∂L/∂w| (0.85 in the "
         "paper and PEFT)"},
        {"adalora.beta2", FieldKind::Float, o.beta2, 0, 1, false, true, 0, "beta2 (uncertainty)",
         "β2 in the paper: the moving average of the sensitivity's uncertainty |I - Ī|; importance = Ī × Ū (0.85 "
         "in the paper and PEFT)"},
        {"adalora.orth_reg_weight", FieldKind::Float, o.orth_reg_weight, 0, kUnbounded, false, false, 0,
         "Orthogonal reg. weight", "γ in the paper: weight of ||P Pᵀ - I||² + ||Qᵀ Q - I||² added to the loss, keeping P and Q near orthogonal so "
         "E holds the singular values"}};
    v.validate = validate_adalora;
    // PEFT divides lora_alpha by ranknum + 1e-5, ranknum = init_r.
    v.scaling = [](const AdapterConfig& c) { return c.alpha / (c.r + 1e-5); };
    v.tensors = {{"lora_A", [](std::int64_t in, std::int64_t, std::int64_t r) { return std::vector{r, in}; }},
                 {"lora_B", [](std::int64_t, std::int64_t out, std::int64_t r) { return std::vector{out, r}; }},
                 {"lora_E", [](std::int64_t, std::int64_t, std::int64_t r) { return std::vector<std::int64_t>{r, 1}; }}};
    v.attach = attach_each<AdaLoraLinear>;
    v.module = module_of<AdaLoraLinear>;
    v.controller = [](const ControllerContext& c) {
      return std::make_unique<AdaLoraController>(c.adapter, c.total_steps);
    };
    v.peft.type = "ADALORA";
    v.peft.claims = [](const PeftConfigReader&) { return true; };
    v.peft.read = read_adalora_config;
    v.peft.write = write_adalora_config;
    v.peft.to_file = slice_to_kept;
    v.peft.from_file = spread_to_full;
    v.has_rank_pattern = true;
    // B·diag(E)·A: E folded into A, so pruned triplets (E = 0) drop out.
    v.lora_form = [](const AdapterConfig& c, int in, int out, const AdapterTensorReader& read) {
      LoraFactors f{c.r, c.scaling(), read("lora_A", false, {c.r, in}), read("lora_B", false, {out, c.r})};
      const std::vector<double> e = read("lora_E", false, {c.r, 1});
      for (std::int64_t i = 0; i < c.r; ++i)
        for (int j = 0; j < in; ++j) f.A[static_cast<std::size_t>(i * in + j)] *= e[static_cast<std::size_t>(i)];
      return f;
    };
    v.factor_family = "adalora";
    v.caps.resumable = false;
    v.caps.not_resumable_why = "the rank allocator's importance averages and mask are not saved";
    v.compare_arms = {method_arm("adalora", "AdaLoRA 12->8",
                                 "LoRA's rate: AdaLoRA's own scripts train DeBERTaV3-base on MNLI at 5e-4 "
                                 "(github.com/QingruZhang/AdaLoRA, NLU/scripts/run_debertav3_mnli.sh), the rate LoRA "
                                 "used for MNLI (Hu et al. 2021, RoBERTa-base)",
                                 {// Starts at rank 12 and ends at 8: the budget at the end matches LoRA r = 8.
                                  {"adapter.r", "12"},
                                  // c = alpha / ranknum = 2, the same scale as LoRA's 16 / 8
                                  {"adapter.alpha", "24"},
                                  {"adapter.adalora.target_r", "8"},
                                  {"adapter.adalora.tinit", "30"},
                                  {"adapter.adalora.tfinal", "60"},
                                  {"adapter.adalora.delta_t", "5"}})};
    v.eager_terms = {{"AdaLoRA A·E and the orthogonal regulariser's A·Aᵀ, Bᵀ·B",
                      [](const EagerModule& m) { return "(r·in + 2·r·r) · " + std::to_string(m.adapter_bytes) + " B"; },
                      [](const AdapterConfig&, const EagerModule& m) {
                        return m.adapter_bytes * static_cast<std::size_t>(m.r * m.in + 2 * m.r * m.r);
                      }}};
    // PEFT's RankAllocator keeps the last importance and both averages.
    v.eager_state_mirrors = 3;
    v.eager_state_what = "AdaLoRA ipt, exp_avg_ipt, exp_avg_unc";
    return v;
  }();
  return d;
}

}  // namespace lwb
