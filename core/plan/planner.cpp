#include "core/plan/planner.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <sstream>

#include "core/adapters/attach.h"
#include "core/adapters/descriptor.h"
#include "core/adapters/variant.h"
#include "core/common/errors.h"
#include "core/cpu/kernels.h"
#include "core/model/checkpoint.h"
#include "core/optim/adamw.h"
#include "core/tensor/arena.h"

namespace lwb {

// ---- names ------------------------------------------------------------------

const char* plan_profile_name(PlanProfile p) { return p == PlanProfile::Workbench ? "workbench" : "pytorch-eager"; }

PlanProfile parse_plan_profile(const std::string& s) {
  if (s == "workbench") return PlanProfile::Workbench;
  if (s == "pytorch-eager" || s == "pytorch") return PlanProfile::PytorchEager;
  throw ConfigError("plan.profile", "unknown profile \"" + s + "\"; expected workbench or pytorch-eager");
}

std::size_t number_format_bytes(NumberFormat f) { return f == NumberFormat::F32 ? 4 : 2; }

const char* number_format_name(NumberFormat f) {
  switch (f) {
    case NumberFormat::F32:
      return "fp32";
    case NumberFormat::BF16:
      return "bf16";
    case NumberFormat::F16:
      return "fp16";
  }
  return "";
}

PlanPrecision parse_plan_precision(const std::string& s) {
  using F = NumberFormat;
  if (s == "fp32") return {F::F32, F::F32, F::F32, false};
  if (s == "bf16") return {F::BF16, F::BF16, F::BF16, false};
  if (s == "fp16") return {F::F16, F::F16, F::F16, false};
  if (s == "mixed") return {F::BF16, F::BF16, F::F32, true};
  if (s == "bf16-frozen") return {F::BF16, F::F32, F::F32, false};
  throw ConfigError("plan.precision",
                    "unknown precision \"" + s + "\"; expected fp32, bf16, fp16, mixed or bf16-frozen");
}

std::string plan_precision_name(const PlanPrecision& p) {
  for (const char* name : {"fp32", "bf16", "fp16", "mixed", "bf16-frozen"}) {
    const PlanPrecision q = parse_plan_precision(name);
    if (q.weights == p.weights && q.activations == p.activations && q.adapter == p.adapter &&
        q.master_weights == p.master_weights)
      return name;
  }
  return std::string("weights ") + number_format_name(p.weights) + ", activations " +
         number_format_name(p.activations) + ", adapter " + number_format_name(p.adapter) +
         (p.master_weights ? ", fp32 masters" : "");
}

const char* optimizer_states_name(OptimizerStates s) {
  switch (s) {
    case OptimizerStates::F32:
      return "fp32";
    case OptimizerStates::BF16:
      return "bf16";
    case OptimizerStates::Int8:
      return "8bit";
  }
  return "";
}

OptimizerStates parse_optimizer_states(const std::string& s) {
  if (s == "fp32") return OptimizerStates::F32;
  if (s == "bf16" || s == "fp16") return OptimizerStates::BF16;
  if (s == "8bit") return OptimizerStates::Int8;
  throw ConfigError("plan.optimizer", "unknown optimizer states \"" + s + "\"; expected fp32, bf16 or 8bit");
}

OptimizerStates default_optimizer_states(const PlanPrecision& p) {
  // bf16-frozen: the optimiser updates only the fp32 adapters.
  const bool fp32_updated = p.weights == NumberFormat::F32 || p.master_weights ||
                            (p.activations == NumberFormat::F32 && p.adapter == NumberFormat::F32);
  return fp32_updated ? OptimizerStates::F32 : OptimizerStates::BF16;
}

// ---- the plan ---------------------------------------------------------------

namespace {

std::string bytes_str(std::size_t b) { return std::to_string(b) + " B"; }

struct Dims {
  std::int64_t B, T, N, C, I, V, H, hd, qd, kvd, L, r;
};

// Element counts of the tensors of one group (a layer's base weights, ...).
using Tensors = std::vector<std::int64_t>;

std::int64_t sum(const Tensors& t) {
  std::int64_t s = 0;
  for (std::int64_t n : t) s += n;
  return s;
}

std::int64_t numel(const std::vector<std::int64_t>& shape) {
  std::int64_t n = 1;
  for (std::int64_t d : shape) n *= d;
  return n;
}

// Sums terms into the plan's per-layer rows and totals.
void total_up(MemoryPlan& plan, int layers) {
  plan.rows.resize(static_cast<std::size_t>(layers) + 1);
  plan.rows[0].layer = kModelLevel;
  for (int l = 0; l < layers; ++l) plan.rows[l + 1].layer = l;
  for (const PlanTerm& t : plan.terms) {
    const auto c = static_cast<std::size_t>(t.category);
    if (t.layer == kEveryLayer)
      for (int l = 0; l < layers; ++l) plan.rows[l + 1].bytes[c] += t.bytes;
    else
      plan.rows[static_cast<std::size_t>(t.layer + 1)].bytes[c] += t.bytes;
  }
  for (const auto& row : plan.rows)
    for (std::size_t c = 0; c < plan.totals.size(); ++c) plan.totals[c] += row.bytes[c];
  for (std::size_t b : plan.totals) plan.total += b;
}

// ---- workbench: a counting pass over the engine's own declarations --------
// The run is built as Trainer::prepare builds it (model, adapters, AdamW, the
// variant's controller), every buffer declared and none allocated; the
// arenas' slots are the size table, 256-byte slot padding included. Only
// what the CPU backend keeps outside the arenas is a formula here.
class WorkbenchPlan {
 public:
  explicit WorkbenchPlan(const PlanInput& in) : in_(in) {}

  MemoryPlan run() {
    const PlanPrecision& p = in_.precision;
    const bool bf16_frozen = p.weights != p.activations;
    const DType dtype = p.activations == NumberFormat::F32 ? DType::F32 : DType::BF16;
    Model model(in_.model, model_mode_for(in_.adapter), dtype,
                bf16_frozen ? std::optional(DType::BF16) : std::nullopt);
    attach_adapters(model, in_.adapter);
    const AttentionShape att{in_.batch, in_.seq, in_.model.heads, in_.model.kv_heads, in_.model.head_dim()};
    model.declare(in_.batch, in_.seq, cpu::attention_workspace_elems(att, in_.threads) * dtype_size(dtype));
    AdamW optimizer(model.trainable(), AdamWConfig{});
    optimizer.declare();
    std::vector<const TensorArena*> arenas = model.arenas();
    arenas.push_back(&optimizer.exp_avg());
    arenas.push_back(&optimizer.exp_avg_sq());
    const auto controller = make_variant_controller(in_.adapter, ScheduleConfig{}, 1e-3, 1, 0);
    if (controller)
      for (const TensorArena* a : controller->declare(model)) arenas.push_back(a);

    MemoryPlan plan;
    plan.input = in_;
    plan.trainable_params = model.trainable_count();
    plan.total_params = in_.model.param_count() + (in_.adapter.is_adapter() ? plan.trainable_params : 0);
    for (const TensorArena* a : arenas) count(*a);
    terms(plan);
    if (bf16_frozen) {
      // The CPU gemm widens a bf16 weight into fp32 scratch sized once for the
      // largest projection (CpuBackend::reserve_mixed_gemm), outside the arenas.
      std::int64_t largest = 0;
      for (Target t : kAllTargets) {
        const LinearShape s = linear_shape(in_.model, t);
        largest = std::max(largest, std::int64_t{s.in} * s.out);
      }
      plan.terms.push_back({kModelLevel, MemCategory::Workspace, "bf16 weight widened to fp32 for the CPU gemm",
                            "max over linears in·out · 4 B", static_cast<std::size_t>(largest) * 4});
    }
    total_up(plan, in_.model.layers);
    return plan;
  }

 private:
  // Slots of one (category, module) in one layer, as "⌈[4, 64] · 4 B⌉" each.
  struct Group {
    std::vector<std::string> shapes;
    std::size_t bytes = 0;
  };
  using Key = std::pair<MemCategory, std::string>;

  void count(const TensorArena& a) {
    for (const TensorArena::Slot& s : a.entries()) {
      Group& g = groups_[{a.category(), s.module}][s.layer];
      g.shapes.push_back("⌈" + s.shape.str() + " · " + bytes_str(dtype_size(a.dtype())) + "⌉");
      g.bytes += s.span_bytes;
    }
  }

  static std::string formula(const Group& g) {
    std::string f;
    for (std::size_t i = 0; i < g.shapes.size();) {
      std::size_t j = i;
      while (j < g.shapes.size() && g.shapes[j] == g.shapes[i]) ++j;
      f += (f.empty() ? "" : " + ") + (j - i > 1 ? std::to_string(j - i) + " · " : std::string()) + g.shapes[i];
      i = j;
    }
    return f;
  }

  // A module that every layer declares alike is one term per layer
  // (kEveryLayer); anything else is a term of its layer (or of the model).
  void terms(MemoryPlan& plan) const {
    const int L = in_.model.layers;
    for (const auto& [key, by_layer] : groups_) {
      const auto& [category, module] = key;
      std::map<int, Group> layers = by_layer;
      if (const auto it = layers.find(kModelLevel); it != layers.end()) {
        plan.terms.push_back({kModelLevel, category, module, formula(it->second), it->second.bytes});
        layers.erase(it);
      }
      if (layers.empty()) continue;
      const Group& first = layers.begin()->second;
      bool every = static_cast<int>(layers.size()) == L;
      for (const auto& [layer, g] : layers)
        if (g.bytes != first.bytes || g.shapes != first.shapes) every = false;
      if (every) {
        plan.terms.push_back({kEveryLayer, category, module, formula(first), first.bytes});
        continue;
      }
      for (const auto& [layer, g] : layers) plan.terms.push_back({layer, category, module, formula(g), g.bytes});
    }
  }

  const PlanInput& in_;
  std::map<Key, std::map<int, Group>> groups_;
};

// ---- pytorch-eager: what HF transformers + PEFT keep ----------------------
class EagerPlan {
 public:
  // One activation term of a layer.
  struct Act {
    std::string what, formula;
    std::size_t bytes;
  };

  explicit EagerPlan(const PlanInput& in)
      : in_(in),
        ad_(in.adapter),
        variant_(in.adapter.variant()),
        adapter_(in.adapter.is_adapter()),
        w_(number_format_bytes(in.precision.weights)),
        a_(number_format_bytes(in.precision.activations)),
        p_(adapter_ ? number_format_bytes(in.precision.adapter) : w_) {
    const ModelConfig& m = in.model;
    d_.B = in.batch;
    d_.T = in.seq;
    d_.N = in.batch * in.seq;
    d_.C = m.hidden;
    d_.I = m.intermediate;
    d_.V = m.vocab;
    d_.H = m.heads;
    d_.hd = m.head_dim();
    d_.qd = std::int64_t{m.heads} * m.head_dim();
    d_.kvd = std::int64_t{m.kv_heads} * m.head_dim();
    d_.L = m.layers;
    d_.r = ad_.r;
  }

  MemoryPlan run() {
    MemoryPlan plan;
    plan.input = in_;
    parameters(plan);
    buffers();
    plan.terms = std::move(terms_);
    total_up(plan, in_.model.layers);
    return plan;
  }

 private:
  void add(int layer, MemCategory c, std::string what, std::string formula, std::size_t bytes) {
    if (bytes > 0) terms_.push_back({layer, c, std::move(what), std::move(formula), bytes});
  }

  std::size_t span(const Tensors& t, std::size_t esize) const { return static_cast<std::size_t>(sum(t)) * esize; }

  bool adapted(Target t) const { return adapter_ && ad_.targets_contain(t); }
  std::string target_list() const {
    std::string s;
    for (Target t : ad_.targets) s += std::string(s.empty() ? "" : ",") + target_short_name(t);
    return s;
  }
  // Σ over the targets of f(in, out).
  template <class F>
  std::int64_t over_targets(F f) const {
    std::int64_t s = 0;
    if (!adapter_) return s;
    for (Target t : ad_.targets) {
      const LinearShape sh = linear_shape(in_.model, t);
      s += f(std::int64_t{sh.in}, std::int64_t{sh.out});
    }
    return s;
  }

  // ---- parameters: weights, gradients, optimiser state --------------------
  Tensors base_layer_tensors() const {
    Tensors t = {d_.C, d_.C};  // input_layernorm, post_attention_layernorm
    for (Target x : kAllTargets) {
      const LinearShape s = linear_shape(in_.model, x);
      t.push_back(std::int64_t{s.in} * s.out);
    }
    return t;
  }
  Tensors base_model_tensors() const {
    Tensors t = {d_.V * d_.C, d_.C};                          // embed_tokens, norm
    if (!in_.model.tie_embeddings) t.push_back(d_.V * d_.C);  // lm_head
    return t;
  }
  // The variant's table over the targets: per layer, and the model-level
  // tensors (sized by the largest in and out).
  Tensors adapter_tensors(bool trainable, bool model_level) const {
    Tensors t;
    const LinearShape extent = adapted_extent(ad_, in_.model);
    for (const AdapterTensorSpec& spec : variant_.tensors) {
      if (spec.trainable != trainable || spec.model_level != model_level) continue;
      if (model_level) {
        t.push_back(numel(tensor_shape(spec, extent.in, extent.out, d_.r)));
        continue;
      }
      for (Target x : ad_.targets) {
        const LinearShape s = linear_shape(in_.model, x);
        t.push_back(numel(tensor_shape(spec, s.in, s.out, d_.r)));
      }
    }
    return t;
  }
  // The table's tensors as a formula: "Σ targets (r·in + out·r) · 2 B".
  std::string adapter_formula(std::size_t esize) const {
    std::string f;
    for (const AdapterTensorSpec& spec : variant_.tensors) {
      if (!spec.trainable || spec.model_level) continue;
      const std::vector<std::int64_t> shape = tensor_shape(spec, -1, -2, -3);  // symbols: in -1, out -2, r -3
      std::string term;
      for (std::int64_t d : shape)
        term += (term.empty() ? "" : "·") + std::string(d == -1 ? "in" : d == -2 ? "out" : d == -3 ? "r" : std::to_string(d));
      f += (f.empty() ? "" : " + ") + term;
    }
    return "Σ targets (" + f + ") · " + bytes_str(esize);
  }

  void parameters(MemoryPlan& plan) {
    const std::string layer_what = "base weights (2 norms, q k v o gate up down)";
    const bool tied = in_.model.tie_embeddings;
    const std::string model_what = tied ? "embed_tokens (tied lm_head), norm" : "embed_tokens, lm_head, norm";
    const auto base_layer = [](std::size_t e) { return "(2·C + 2·C·qd + 2·C·kvd + 3·C·I) · " + bytes_str(e); };
    const auto base_model = [tied](std::size_t e) {
      return std::string(tied ? "(V·C + C)" : "(2·V·C + C)") + " · " + bytes_str(e);
    };
    const Tensors base_l = base_layer_tensors(), base_m = base_model_tensors();
    if (!adapter_) {
      plan.trainable_params = plan.total_params = in_.model.param_count();
      group(kEveryLayer, base_l, layer_what, base_layer);
      group(kModelLevel, base_m, model_what, base_model);
      return;
    }
    const Tensors ad = adapter_tensors(true, false);
    plan.trainable_params = sum(ad) * d_.L;
    plan.total_params = in_.model.param_count() + plan.trainable_params;
    add(kEveryLayer, MemCategory::FrozenWeights, layer_what, base_layer(w_), span(base_l, w_));
    add(kModelLevel, MemCategory::FrozenWeights, model_what, base_model(w_), span(base_m, w_));
    const Tensors shared = adapter_tensors(false, false), shared_model = adapter_tensors(false, true);
    add(kEveryLayer, MemCategory::FrozenWeights, variant_.title + " frozen tensors", "Σ targets · " + bytes_str(p_),
        span(shared, p_));
    add(kModelLevel, MemCategory::FrozenWeights, variant_.title + " shared frozen tensors",
        "largest in and out · " + bytes_str(p_), span(shared_model, p_));
    group(kEveryLayer, ad,
          method_display_name(ad_) + " parameters (r = " + std::to_string(d_.r) + ", targets " + target_list() + ")",
          [this](std::size_t e) { return adapter_formula(e); });
  }

  // Trainable tensors: their values (plus fp32 masters), gradients (in the
  // tensors' dtype, as PyTorch's .grad), AdamW's moments, and what the
  // variant's training keeps per parameter (AdaLoRA's importance averages).
  void group(int layer, const Tensors& t, const std::string& what,
             const std::function<std::string(std::size_t)>& f) {
    using C = MemCategory;
    add(layer, C::TrainableWeights, what, f(p_), span(t, p_));
    if (in_.precision.master_weights && p_ == 2)
      add(layer, C::TrainableWeights, "fp32 master copy of " + what, f(4), span(t, 4));
    add(layer, C::Gradients, "gradients of " + what, f(p_), span(t, p_));
    switch (in_.optimizer) {
      case OptimizerStates::F32:
        add(layer, C::OptimizerState, "AdamW m, v of " + what, "2 · " + f(4) + " (fp32)", 2 * span(t, 4));
        break;
      case OptimizerStates::BF16:
        add(layer, C::OptimizerState, "AdamW m, v of " + what, "2 · " + f(2) + " (16-bit)", 2 * span(t, 2));
        break;
      case OptimizerStates::Int8: {
        // bitsandbytes' blockwise 8-bit Adam: one byte per element and an fp32
        // absmax per block of 256; tensors under 4096 elements stay in fp32.
        std::size_t states = 0;
        for (std::int64_t e : t) states += 2 * static_cast<std::size_t>(e < 4096 ? 4 * e : e + 4 * ((e + 255) / 256));
        add(layer, C::OptimizerState, "8-bit AdamW m, v of " + what,
            "2 · Σ (n + 4·⌈n/256⌉) B (an fp32 absmax per 256 elements; tensors under 4096 elements in fp32)", states);
        break;
      }
    }
    const int mirrors = variant_.eager_state_mirrors;
    if (mirrors > 0)
      add(layer, C::OptimizerState, variant_.eager_state_what, std::to_string(mirrors) + " · " + f(p_),
          static_cast<std::size_t>(mirrors) * span(t, p_));
  }

  // HF LlamaDecoderLayer with eager attention, PEFT adapters. A linear's
  // input is saved when its weight trains, or by the adapter's first factor
  // when the adapter reads it unchanged (no dropout, same dtype). Every layer
  // is treated as a middle layer (everything upstream requires grad).
  void buffers() {
    const Dims& d = d_;
    const std::size_t a = a_;
    const bool full = !adapter_;
    const std::string A = " · " + bytes_str(a);
    const bool adapter_reads_input = adapter_ && ad_.dropout == 0 && p_ == a;
    auto input_saved = [&](std::initializer_list<Target> group) {
      if (full) return true;
      for (Target t : group)
        if (adapted(t) && adapter_reads_input) return true;
      return false;
    };
    std::vector<Act> layer;
    // LlamaRMSNorm: fp32 copy of the input (pow, mul), 1/rms; the normalised
    // 16-bit output only when the norm weight trains (weight · x saves x).
    layer.push_back({"input_layernorm, post_attention_layernorm (fp32 input, 1/rms)",
                     std::string("2 · (N·C + N) · 4 B") + (full ? " + 2 · N·C" + A : ""),
                     2 * static_cast<std::size_t>(4 * d.N * d.C + 4 * d.N) + (full ? 2 * d.N * d.C * a : 0)});
    if (input_saved({Target::Q, Target::K, Target::V}))
      layer.push_back({"q, k, v projections' input", "N·C" + A, static_cast<std::size_t>(d.N * d.C) * a});
    // Q·Kᵀ saves q and k after rotary, P·V saves v; repeat_kv has expanded k
    // and v to all H heads.
    layer.push_back({"q, k, v after rotary (k, v repeated to H heads)", "3 · N·qd" + A, 3 * d.N * d.qd * a});
    // softmax(dtype=float32) keeps its fp32 output; the cast back to the
    // activation dtype is what P·V saves. Attention dropout is 0.
    const std::size_t prob = a == 4 ? 4 : 4 + a;
    layer.push_back({"attention probabilities (fp32 softmax output" + std::string(a == 4 ? ")" : " and its cast)"),
                     std::to_string(prob) + " B · B·H·T²", prob * d.B * d.H * d.T * d.T});
    if (input_saved({Target::O}))
      layer.push_back({"o_proj input", "N·qd" + A, static_cast<std::size_t>(d.N * d.qd) * a});
    if (input_saved({Target::Gate, Target::Up}))
      layer.push_back({"gate, up projections' input", "N·C" + A, static_cast<std::size_t>(d.N * d.C) * a});
    layer.push_back({"SwiGLU: gate, silu(gate), up", "3 · N·I" + A, 3 * d.N * d.I * a});
    if (input_saved({Target::Down}))
      layer.push_back({"down_proj input", "N·I" + A, static_cast<std::size_t>(d.N * d.I) * a});
    if (adapter_) adapter_activations(layer);

    using C = MemCategory;
    std::size_t layer_total = 0;
    for (const Act& x : layer) layer_total += x.bytes;
    if (in_.checkpointing) {
      // HF gradient checkpointing: each layer keeps its input; its other
      // activations exist again while that one layer's backward runs.
      add(kEveryLayer, C::Activations, "layer input (gradient checkpointing)", "N·C" + A,
          static_cast<std::size_t>(d.N * d.C) * a);
      add(kModelLevel, C::Workspace, "one layer's activations, recomputed in its backward",
          "Σ of the per-layer activation terms without checkpointing", layer_total);
    } else {
      for (const Act& x : layer) add(kEveryLayer, C::Activations, x.what, x.formula, x.bytes);
    }

    add(kModelLevel, C::Activations, "input_ids, labels (int64)", "2 · N · 8 B", 16 * d.N);
    add(kModelLevel, C::Activations, "rotary cos, sin", "2 · N·hd" + A, 2 * d.N * d.hd * a);
    add(kModelLevel, C::Activations, "final norm (fp32 input, 1/rms)",
        std::string("(N·C + N) · 4 B") + (full ? " + N·C" + A : ""),
        static_cast<std::size_t>(4 * d.N * d.C + 4 * d.N) + (full ? d.N * d.C * a : 0));
    if (full) add(kModelLevel, C::Activations, "lm_head input", "N·C" + A, static_cast<std::size_t>(d.N * d.C) * a);
    add(kModelLevel, C::Activations, "cross-entropy log-softmax (fp32)", "N·V · 4 B", 4 * d.N * d.V);
    // ForCausalLMLoss: logits.float(), then a shifted contiguous copy; the
    // 16-bit logits live on in the model output.
    add(kModelLevel, C::Workspace, "logits, fp32 upcast, shifted copy",
        a == 4 ? "N·V · 4 B + N·V · 4 B" : "N·V" + A + " + 2 · N·V · 4 B", (a == 4 ? 8 : a + 8) * d.N * d.V);
    add(kModelLevel, C::Workspace, "one layer's attention backward: gradients of probabilities and scores",
        std::to_string(4 + a) + " B · B·H·T²", (4 + a) * d.B * d.H * d.T * d.T);
  }

  // PEFT's adapter layers: result += B(A(dropout(x.to(adapter dtype)))) · s,
  // and what the variant's forward saves beyond that (its eager terms).
  void adapter_activations(std::vector<Act>& layer) const {
    const Dims& d = d_;
    const std::size_t a = a_, p = p_;
    const std::string P = " · " + bytes_str(p);
    auto sum_t = [&](auto f) { return static_cast<std::size_t>(over_targets(f)); };
    if (ad_.dropout > 0)
      layer.push_back({"dropped adapter input and its bool mask", "Σ targets N·in · (" + bytes_str(p) + " + 1 B)",
                       (p + 1) * sum_t([&](std::int64_t in, std::int64_t) { return d.N * in; })});
    else if (p != a)
      layer.push_back({"adapter input cast to the adapter dtype", "Σ targets N·in" + P,
                       p * sum_t([&](std::int64_t in, std::int64_t) { return d.N * in; })});
    layer.push_back(
        {"LoRA u = A·x", "Σ targets N·r" + P, p * sum_t([&](std::int64_t, std::int64_t) { return d.N * d.r; })});
    for (const EagerTerm& t : variant_.eager_terms) {
      std::size_t bytes = 0;
      std::string formula;
      for (Target x : ad_.targets) {
        const LinearShape s = linear_shape(in_.model, x);
        const EagerModule m{s.in, s.out, d.r, d.N, a, p};
        bytes += t.bytes(ad_, m);
        formula = t.formula(m);
      }
      if (bytes > 0) layer.push_back({t.what, "Σ targets " + formula, bytes});
    }
  }

  const PlanInput& in_;
  const AdapterConfig& ad_;
  const VariantDescriptor& variant_;
  bool adapter_;
  std::size_t w_, a_, p_;  // bytes per element: base weights, activations, trainable tensors
  Dims d_{};
  std::vector<PlanTerm> terms_;
};

void validate(const PlanInput& in) {
  in.model.validate();
  in.adapter.validate(in.model);
  if (in.batch <= 0) throw ConfigError("plan.batch", "must be positive");
  if (in.seq <= 0) throw ConfigError("plan.seq", "must be positive");
  if (in.seq > in.model.max_seq)
    throw ConfigError("plan.seq", "sequence length " + std::to_string(in.seq) + " exceeds the model's maximum of " +
                                      std::to_string(in.model.max_seq));
  if (in.profile != PlanProfile::Workbench) return;
  const PlanPrecision& p = in.precision;
  const bool bf16_frozen = p.weights == NumberFormat::BF16 && p.activations == NumberFormat::F32;
  if (p.weights == NumberFormat::F16 || (p.weights != p.activations && !bf16_frozen) ||
      p.activations != p.adapter || p.master_weights)
    throw ConfigError("plan.precision",
                      "the workbench engine keeps every buffer in one dtype (fp32 or bf16), or only the frozen "
                      "projections in bf16 (bf16-frozen)");
  if (bf16_frozen && !in.adapter.is_adapter())
    throw ConfigError("plan.precision", "bf16-frozen applies to frozen base weights; full fine-tuning trains them in fp32");
  if (bf16_frozen) in.adapter.check_bf16_frozen();
  if (number_format_bytes(p.activations) != (in.optimizer == OptimizerStates::F32 ? 4u : 2u) ||
      in.optimizer == OptimizerStates::Int8)
    throw ConfigError("plan.optimizer", "the workbench engine keeps AdamW's moments in the model dtype");
  if (in.checkpointing)
    throw ConfigError("plan.checkpointing", "the workbench engine keeps every activation (no checkpointing)");
  if (in.threads < 1) throw ConfigError("plan.threads", "must be positive");
}

}  // namespace

MemoryPlan plan_memory(const PlanInput& input) {
  validate(input);
  return input.profile == PlanProfile::Workbench ? WorkbenchPlan(input).run() : EagerPlan(input).run();
}

// The assumptions under which the pytorch-eager profile reproduces the LISA
// figures (GB = 10^9 B); the paper does not list them all, these are ours:
//  * pure bf16 training: weights, gradients and both AdamW moments in bf16 (as
//    torch.optim.AdamW keeps them for a model loaded in bf16; no fp32 master
//    weights: with them, or with fp32 moments (54 GB alone), full fine-tuning
//    could not come to 60 GB);
//  * batch 1 × 512 tokens, HF eager attention (the T×T probabilities of every
//    head kept in fp32 and bf16), no gradient checkpointing;
//  * LoRA at rank 128 on all seven projections with dropout 0.05 (LISA's LoRA
//    baseline is rank 128).
// The planner then gives full 58.9 GB, LoRA 21.7 GB, optimiser-state saving
// 25.7 GB and gradient saving 12.8 GB: all within 10% of the paper.
PlanInput lisa_llama2_7b_input(const ModelConfig& llama2_7b, const std::string& method) {
  PlanInput in;
  in.model = llama2_7b;
  select_method(in.adapter, method);
  in.adapter.r = 128;
  in.adapter.dropout = 0.05;
  in.adapter.targets.assign(kAllTargets.begin(), kAllTargets.end());
  in.profile = PlanProfile::PytorchEager;
  in.batch = 1;
  in.seq = 512;
  in.precision = parse_plan_precision("bf16");
  in.optimizer = OptimizerStates::BF16;
  return in;
}

std::vector<std::string> lisa_methods() { return {"full", "lora"}; }

// ---- text -------------------------------------------------------------------

std::string format_plan_bytes(double b, int decimals) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (std::abs(b) >= 1024 && u < 4) {
    b /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.*f %s", u == 0 ? 0 : decimals, b, units[u]);
  return buf;
}

namespace {

std::string grouped(std::int64_t v) {
  const std::string digits = std::to_string(v);
  std::string s;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) s += ',';
    s += digits[i];
  }
  return s;
}

std::string pad(const std::string& s, std::size_t width, bool right = false) {
  // Width in characters: count UTF-8 lead bytes only.
  std::size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  if (n >= width) return s;
  return right ? std::string(width - n, ' ') + s : s + std::string(width - n, ' ');
}

const char* short_category(int c) {
  static const char* names[] = {"frozen", "trainable", "activations", "gradients", "optimizer", "workspace"};
  return names[c];
}

}  // namespace

namespace {

// "r=8 on q,v (dropout 0.05)"; empty for full fine-tuning.
std::string adapter_settings(const AdapterConfig& a) {
  if (!a.is_adapter()) return {};
  std::string s = "r=" + std::to_string(a.r) + " on ";
  if (a.targets.size() == kAllTargets.size()) {
    s += "all";
  } else {
    for (std::size_t i = 0; i < a.targets.size(); ++i) s += std::string(i ? "," : "") + target_short_name(a.targets[i]);
  }
  if (a.dropout > 0) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), " (dropout %g)", a.dropout);
    s += buf;
  }
  return s;
}

// Everything but the model and the method.
std::string describe_knobs(const PlanInput& in) {
  std::string s = "batch " + std::to_string(in.batch) + " × seq " + std::to_string(in.seq);
  s += " · " + plan_precision_name(in.precision) + " · AdamW states " + optimizer_states_name(in.optimizer);
  if (in.checkpointing) s += " · gradient checkpointing";
  s += " · profile " + std::string(plan_profile_name(in.profile));
  if (in.profile == PlanProfile::Workbench) s += " (" + std::to_string(in.threads) + " threads)";
  return s;
}

}  // namespace

std::string describe_plan_input(const PlanInput& in) {
  const std::string settings = adapter_settings(in.adapter);
  return in.model.name + " · " + method_display_name(in.adapter) + (settings.empty() ? "" : " " + settings) + " · " +
         describe_knobs(in);
}

std::string format_plan_table(const MemoryPlan& plan) {
  const PlanInput& in = plan.input;
  const ModelConfig& m = in.model;
  std::ostringstream o;
  o << describe_plan_input(in) << "\n";
  o << "parameters: " << grouped(plan.total_params) << " total, " << grouped(plan.trainable_params) << " trainable";
  char share[32];
  std::snprintf(share, sizeof(share), " (%.3g%%)",
                100.0 * static_cast<double>(plan.trainable_params) /
                    static_cast<double>(std::max<std::int64_t>(plan.total_params, 1)));
  o << share << "\n";
  o << "N = B·T = " << in.batch * in.seq << ", C = " << m.hidden << ", I = " << m.intermediate << ", V = " << m.vocab
    << ", H = " << m.heads << ", KVH = " << m.kv_heads << ", hd = " << m.head_dim()
    << ", qd = H·hd, kvd = KVH·hd, L = " << m.layers;
  if (in.adapter.is_adapter()) o << ", r = " << in.adapter.r;
  o << "\n";
  if (in.profile == PlanProfile::Workbench) o << "⌈x⌉ = x rounded up to the arena's 256-byte slot\n";
  o << "GiB = 2^30 bytes\n\n";
  for (int c = 0; c < kMemCategoryCount; ++c) {
    const std::size_t total = plan.totals[static_cast<std::size_t>(c)];
    char pct[16];
    std::snprintf(pct, sizeof(pct), "%5.1f%%",
                  plan.total ? 100.0 * static_cast<double>(total) / static_cast<double>(plan.total) : 0.0);
    o << pad(mem_category_name(static_cast<MemCategory>(c)), 40)
      << pad(format_plan_bytes(static_cast<double>(total)), 11, true) << "  " << pct << "\n";
    for (const PlanTerm& t : plan.terms) {
      if (static_cast<int>(t.category) != c) continue;
      std::string where;
      std::size_t all = t.bytes;
      if (t.layer == kEveryLayer) {
        where = "per layer × " + std::to_string(m.layers);
        all = t.bytes * static_cast<std::size_t>(m.layers);
      } else if (t.layer == kModelLevel) {
        where = "model";
      } else {
        where = "layer " + std::to_string(t.layer);
      }
      o << "    " << pad(where, 16) << pad(format_plan_bytes(static_cast<double>(t.bytes)), 11, true) << " "
        << pad(format_plan_bytes(static_cast<double>(all)), 11, true) << "   " << t.what << ": " << t.formula << "\n";
    }
  }
  o << pad("total", 40) << pad(format_plan_bytes(static_cast<double>(plan.total)), 11, true) << "\n";
  return o.str();
}

std::string format_plan_layers(const MemoryPlan& plan) {
  std::ostringstream o;
  o << pad("layer", 10);
  for (int c = 0; c < kMemCategoryCount; ++c) o << pad(short_category(c), 12, true);
  o << pad("total", 12, true) << "\n";
  auto row_line = [&](const std::string& label, const CategoryBytes& b) {
    o << pad(label, 10);
    std::size_t total = 0;
    for (std::size_t c = 0; c < b.size(); ++c) {
      o << pad(format_plan_bytes(static_cast<double>(b[c])), 12, true);
      total += b[c];
    }
    o << pad(format_plan_bytes(static_cast<double>(total)), 12, true) << "\n";
  };
  row_line("model", plan.rows.front().bytes);
  // Equal neighbouring layers share one line ("0-31", each).
  for (std::size_t i = 1; i < plan.rows.size();) {
    std::size_t j = i;
    while (j + 1 < plan.rows.size() && plan.rows[j + 1].bytes == plan.rows[i].bytes) ++j;
    const std::string label = i == j ? std::to_string(plan.rows[i].layer)
                                     : std::to_string(plan.rows[i].layer) + "-" + std::to_string(plan.rows[j].layer);
    row_line(label + (i == j ? "" : " each"), plan.rows[i].bytes);
    i = j + 1;
  }
  row_line("all", plan.totals);
  return o.str();
}

std::string format_plan_comparison(const std::vector<MemoryPlan>& plans) {
  if (plans.empty()) return {};
  std::ostringstream o;
  // Header: the model, the methods, their adapter settings when shared.
  std::vector<std::string> settings;
  for (const MemoryPlan& p : plans) {
    const std::string s = adapter_settings(p.input.adapter);
    if (!s.empty() && std::find(settings.begin(), settings.end(), s) == settings.end()) settings.push_back(s);
  }
  o << plans.front().input.model.name << " · ";
  for (std::size_t i = 0; i < plans.size(); ++i) {
    o << (i ? ", " : "") << method_display_name(plans[i].input.adapter);
    if (settings.size() > 1 && plans[i].input.adapter.is_adapter())
      o << " " << adapter_settings(plans[i].input.adapter);
  }
  if (settings.size() == 1) o << " · adapters " << settings.front();
  o << " · " << describe_knobs(plans.front().input) << "\nGiB = 2^30 bytes\n\n";
  std::vector<std::string> heads;
  for (const MemoryPlan& p : plans) heads.push_back(method_display_name(p.input.adapter));
  o << pad("", 20);
  for (const auto& h : heads) o << pad(h, 16, true);
  o << "\n";
  auto line = [&](const std::string& label, auto value) {
    o << pad(label, 20);
    for (const MemoryPlan& p : plans) o << pad(value(p), 16, true);
    o << "\n";
  };
  for (int c = 0; c < kMemCategoryCount; ++c)
    line(mem_category_name(static_cast<MemCategory>(c)), [c](const MemoryPlan& p) {
      return format_plan_bytes(static_cast<double>(p.totals[static_cast<std::size_t>(c)]));
    });
  line("total", [](const MemoryPlan& p) { return format_plan_bytes(static_cast<double>(p.total)); });
  const double first = static_cast<double>(plans.front().total);
  line("vs " + heads.front(), [first](const MemoryPlan& p) {
    const double diff = static_cast<double>(p.total) - first;
    return std::string(diff < 0 ? "-" : "+").append(format_plan_bytes(std::abs(diff)));
  });
  line("trainable params", [](const MemoryPlan& p) { return grouped(p.trainable_params); });
  return o.str();
}

// ---- model configs ----------------------------------------------------------

std::vector<std::string> shipped_model_names(const std::filesystem::path& resources) {
  namespace fs = std::filesystem;
  std::vector<std::string> names;
  std::error_code ec;
  if (resources.empty() || !fs::is_directory(resources / "models", ec)) return names;
  for (const auto& e : fs::directory_iterator(resources / "models", ec))
    if (e.path().extension() == ".json") names.push_back(e.path().stem().string());
  std::sort(names.begin(), names.end());
  return names;
}

ModelConfig load_plan_model(const std::string& name_or_path, const std::filesystem::path& resources) {
  namespace fs = std::filesystem;
  const auto presets = model_preset_names();
  if (std::find(presets.begin(), presets.end(), name_or_path) != presets.end()) return model_preset(name_or_path);
  fs::path file = name_or_path;
  std::error_code ec;
  if (!fs::is_regular_file(file, ec) && !resources.empty()) file = resources / "models" / (name_or_path + ".json");
  if (!fs::is_regular_file(file, ec)) {
    std::string known = "tiny, small";
    for (const auto& n : shipped_model_names(resources)) known += ", " + n;
    throw ConfigError("plan.model", "unknown model \"" + name_or_path + "\"; expected " + known +
                                        " or the path of an HF config.json" +
                                        (resources.empty() ? " (no resources folder found: set LWB_RESOURCES)" : ""));
  }
  std::ifstream f(file, std::ios::binary);
  if (!f) throw FormatError(file.string(), "cannot read");
  std::ostringstream text;
  text << f.rdbuf();
  ModelConfig c = model_config_from_json(text.str(), file.string());
  c.name = file.stem().string();
  return c;
}

PlanProfile default_plan_profile(const std::string& model_name) {
  const auto presets = model_preset_names();
  return std::find(presets.begin(), presets.end(), model_name) != presets.end() ? PlanProfile::Workbench
                                                                                 : PlanProfile::PytorchEager;
}

std::string default_plan_precision(PlanProfile p) { return p == PlanProfile::Workbench ? "fp32" : "bf16"; }

std::int64_t default_plan_seq(const ModelConfig& model) { return std::min(512, model.max_seq); }

int default_plan_threads() { return omp_get_max_threads(); }

}  // namespace lwb
