#include "core/adapters/adapter_state.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <set>

#include "core/adapters/attach.h"
#include "core/adapters/descriptor.h"
#include "core/adapters/numerical_rank.h"
#include "core/common/errors.h"
#include "core/format/safetensors.h"
#include "core/tensor/ledger.h"
#include "core/model/checkpoint.h"
#include "core/model/weights_init.h"


namespace lwb {

std::int64_t HostTensor::numel() const {
  std::int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

std::string peft_key(const std::string& module_hf_name, const std::string& suffix) {
  return "base_model.model." + module_hf_name + "." + suffix;
}

std::string model_level_key(const std::string& suffix) { return "base_model." + suffix; }

std::string module_hf_name(int layer, Target target) {
  return "model.layers." + std::to_string(layer) + "." + target_hf_path(target);
}

std::optional<ModuleId> parse_module_hf_name(std::string_view name) {
  constexpr std::string_view prefix = "model.layers.";
  if (!name.starts_with(prefix)) return std::nullopt;
  name.remove_prefix(prefix.size());
  const std::size_t dot = name.find('.');
  if (dot == std::string_view::npos || dot == 0) return std::nullopt;
  ModuleId id;
  const auto [end, ec] = std::from_chars(name.data(), name.data() + dot, id.layer);
  if (ec != std::errc() || end != name.data() + dot || id.layer < 0) return std::nullopt;
  name.remove_prefix(dot + 1);
  for (Target t : kAllTargets)
    if (name == target_hf_path(t)) {
      id.target = t;
      return id;
    }
  return std::nullopt;
}

namespace {

using Shape64 = std::vector<std::int64_t>;

Shape64 tensor_shape(const Tensor& t) {
  return Shape64(t.shape.dims.begin(), t.shape.dims.begin() + t.shape.ndim);
}

// Every adapter tensor of the model under its PEFT key.
template <class F>
void for_each_adapter_tensor(const Model& model, F&& f) {
  for (int l = 0; l < model.config().layers; ++l)
    for (Target t : kAllTargets) {
      const Linear& lin = model.linear(l, t);
      for (const AdapterTensorRef& a : lin.adapter_tensors())
        f(a.model_level ? model_level_key(a.suffix) : peft_key(lin.hf_name(), a.suffix), a.tensor);
    }
}

// The tensors an adapter of this config has on a model of this shape, from
// its variant's table (model-level ones sized by the largest targeted in and out).
std::map<std::string, Shape64> expected_shapes(const AdapterConfig& c, const ModelConfig& model) {
  const VariantDescriptor& v = c.variant();
  std::map<std::string, Shape64> out;
  const LinearShape extent = adapted_extent(c, model);
  for (const AdapterTensorSpec& spec : v.tensors) {
    if (spec.model_level) {
      out[model_level_key(spec.suffix)] = tensor_shape(spec, extent.in, extent.out, c.r);
      continue;
    }
    for (int l = 0; l < model.layers; ++l)
      for (Target t : c.targets) {
        const LinearShape s = linear_shape(model, t);
        out[peft_key(module_hf_name(l, t), spec.suffix)] = tensor_shape(spec, s.in, s.out, c.r);
      }
  }
  return out;
}

// Why a rank pattern cannot belong to this adapter, or "".
std::string rank_pattern_problem(const AdapterConfig& c, const ModelConfig& model, const std::string& module,
                                 std::size_t flags) {
  const std::optional<ModuleId> id = parse_module_hf_name(module);
  if (!id || id->layer >= model.layers || !c.targets_contain(id->target))
    return "\"" + module + "\" is not an adapted module of the model";
  if (flags != static_cast<std::size_t>(c.r))
    return "\"" + module + "\" has " + std::to_string(flags) + " flags; expected init_r = " + std::to_string(c.r);
  return "";
}

std::string targets_str(const std::vector<Target>& targets) {
  std::string s;
  for (Target t : targets) s += (s.empty() ? "" : ", ") + std::string(target_module_name(t));
  return s;
}

struct Factors {
  std::vector<float> A, B;  // [rank, cols], [rows, rank]
  double relative_error = 0;
};

// Truncated SVD of a row-major [rows, cols] matrix: A = sqrt(S) Vt, B = U sqrt(S).
Factors truncated_factors(const std::vector<float>& m, int rows, int cols, int rank) {
  const SingularTriplets t = top_singular_triplets(std::vector<double>(m.begin(), m.end()), rows, cols, rank);
  Factors f;
  f.A.resize(static_cast<std::size_t>(rank) * cols);
  f.B.resize(static_cast<std::size_t>(rows) * rank);
  for (std::size_t j = 0; j < static_cast<std::size_t>(rank); ++j) {
    const double root = std::sqrt(t.S[j]);
    for (std::size_t c = 0; c < static_cast<std::size_t>(cols); ++c)
      f.A[j * cols + c] = static_cast<float>(root * t.Vt[j * cols + c]);
    for (std::size_t r = 0; r < static_cast<std::size_t>(rows); ++r)
      f.B[r * rank + j] = static_cast<float>(root * t.U[r * rank + j]);
  }
  f.relative_error = t.relative_error;
  return f;
}

}  // namespace

AdapterState extract_adapter(const Model& model, const AdapterConfig& config, const std::string& base_model,
                             const std::string& base_fingerprint,
                             const std::map<std::string, std::vector<bool>>& rank_pattern,
                             std::int64_t total_step) {
  AdapterState s;
  s.config = config;
  s.base_model = base_model;
  s.base_fingerprint = base_fingerprint;
  s.model = model.config();
  s.total_step = total_step;
  for_each_adapter_tensor(model, [&](const std::string& key, const Tensor& t) {
    HostTensor h;
    h.shape = tensor_shape(t);
    const std::vector<double> v = download_values(model.backend(), t);
    h.values.assign(v.begin(), v.end());
    s.tensors.emplace(key, std::move(h));
  });
  if (!rank_pattern.empty() && !config.variant().has_rank_pattern)
    throw ConfigError("rank_pattern", "a rank pattern belongs to a variant that masks ranks (AdaLoRA), not " +
                                          config.variant().title);
  for (const auto& [module, keep] : rank_pattern)
    if (const std::string why = rank_pattern_problem(config, model.config(), module, keep.size()); !why.empty())
      throw ConfigError("rank_pattern", why);
  s.rank_pattern = rank_pattern;
  return s;
}

void load_adapter(Model& model, const AdapterState& state, const std::string& source) {
  std::size_t used = 0;
  for_each_adapter_tensor(model, [&](const std::string& key, const Tensor& t) {
    const auto it = state.tensors.find(key);
    if (it == state.tensors.end()) throw FormatError(source, "adapter tensor \"" + key + "\" is missing");
    if (it->second.shape != tensor_shape(t))
      throw FormatError(source, "adapter tensor \"" + key + "\" has shape " + io::shape_str(it->second.shape) +
                                    " but the model expects " + io::shape_str(tensor_shape(t)));
    upload_floats(model.backend(), t, it->second.values);
    ++used;
  });
  if (used != state.tensors.size())
    throw FormatError(source, std::to_string(state.tensors.size() - used) +
                                  " adapter tensor(s) do not belong to any adapted module of this model");
}

std::vector<std::string> adapter_mismatches(const AdapterState& state, const ModelConfig& base) {
  const AdapterConfig& c = state.config;
  std::vector<std::string> problems;
  if (!c.is_adapter()) return {"the adapter's method is " + c.variant().title + ", which has no adapter tensors"};
  if (c.r <= 0) problems.push_back("rank r = " + std::to_string(c.r) + " must be positive");
  for (Target t : c.targets) {
    if (!c.variant().caps.rank_within_target_shape) break;
    const LinearShape s = linear_shape(base, t);
    if (c.r > std::min(s.in, s.out))
      problems.push_back(
          "rank " + std::to_string(c.r) + " exceeds min(in, out) = " + std::to_string(std::min(s.in, s.out)) +
          " of " + target_module_name(t) + " [" + std::to_string(s.out) + " x " + std::to_string(s.in) + "]");
  }

  const std::map<std::string, Shape64> expected = expected_shapes(c, base);
  for (const auto& [key, shape] : expected)
    if (!state.tensors.contains(key))
      problems.push_back("missing tensor \"" + key + "\" (expected shape " + io::shape_str(shape) + ")");
  for (const auto& [key, t] : state.tensors) {
    if (const auto it = expected.find(key); it != expected.end()) {
      if (t.shape != it->second)
        problems.push_back("tensor \"" + key + "\" has shape " + io::shape_str(t.shape) + " vs expected " +
                           io::shape_str(it->second));
      continue;
    }
    // A key of a module beyond the model says more than "unexpected".
    constexpr std::string_view prefix = "base_model.model.";
    std::optional<ModuleId> id;
    if (key.starts_with(prefix)) {
      std::string_view rest = std::string_view(key).substr(prefix.size());
      for (int dots = 0, i = 0; i < static_cast<int>(rest.size()); ++i)
        if (rest[i] == '.' && ++dots == 5) {
          id = parse_module_hf_name(rest.substr(0, i));
          break;
        }
    }
    if (id && id->layer >= base.layers)
      problems.push_back("tensor \"" + key + "\" is for layer " + std::to_string(id->layer) +
                         " but the model has " + std::to_string(base.layers) + " layers (0.." +
                         std::to_string(base.layers - 1) + ")");
    else
      problems.push_back("unexpected tensor \"" + key + "\": not part of a " + method_display_name(c) +
                         " adapter on " + targets_str(c.targets));
  }

  if (!state.rank_pattern.empty() && !c.variant().has_rank_pattern)
    problems.push_back("rank_pattern is given but only a variant that masks ranks (AdaLoRA) has one, not " +
                       c.variant().title);
  for (const auto& [module, keep] : state.rank_pattern)
    if (const std::string why = rank_pattern_problem(c, base, module, keep.size()); !why.empty())
      problems.push_back("rank_pattern entry " + why);
  return problems;
}

void check_adapter_fits(const AdapterState& state, const ModelConfig& base, const std::string& source) {
  if (state.needs_original_base)
    throw FormatError(source, "this " + state.config.variant().title +
                                  " adapter is in PEFT's unconverted form, relative to a base derived from the "
                                  "original (the residual W - s B0 A0), so it cannot be applied to a base as it "
                                  "is; import it into the library first (lora-workbench import adapter DIR --name "
                                  "NAME --base BASE), which rewrites it against the original base's weights");
  const std::vector<std::string> problems = adapter_mismatches(state, base);
  if (problems.empty()) return;
  std::string msg = "the adapter does not fit the base model \"" + base.name + "\" (" +
                    std::to_string(base.layers) + " layers, hidden " + std::to_string(base.hidden) +
                    ", intermediate " + std::to_string(base.intermediate) + "):";
  for (std::size_t i = 0; i < std::min(problems.size(), kMaxListedMismatches); ++i) msg += "\n  - " + problems[i];
  if (problems.size() > kMaxListedMismatches)
    msg += "\n  ... and " + std::to_string(problems.size() - kMaxListedMismatches) + " more";
  throw FormatError(source, msg);
}

std::string non_finite_tensors(const AdapterState& state) {
  std::string first;
  std::size_t others = 0;
  for (const auto& [key, t] : state.tensors) {
    const std::size_t bad = count_non_finite(t.values);
    if (bad == 0) continue;
    if (first.empty())
      first = "tensor \"" + key + "\" holds " + std::to_string(bad) + " NaN or infinite value(s) of " +
              std::to_string(t.values.size());
    else
      ++others;
  }
  if (others > 0) first += " (and " + std::to_string(others) + " more tensor(s) do too)";
  return first;
}

void to_kept_form(AdapterState& state, const Model& original, const std::string& source) {
  if (!state.needs_original_base) return;
  // Its tensors fit the original's shapes as they fit the derived base's.
  state.needs_original_base = false;
  check_adapter_fits(state, original.config(), source);
  state.config.variant().peft.to_kept_form(state, original, source);
}

namespace {

// The variant a kept adapter trained as, when that one has an own form.
const VariantDescriptor& variant_with_own_form(const AdapterState& kept, const std::string& label) {
  const VariantDescriptor* v = kept.trained_as ? &kept.trained_as->variant() : nullptr;
  if (!v || !v->peft.own_form)
    throw ConfigError("export.form", label + " is a " + method_display_name(kept.config) +
                                         " adapter kept in its own form; only an adapter trained with an "
                                         "initialisation that changes the base (PiSSA) has an unconverted form");
  return *v;
}

}  // namespace

AdapterState own_form_of(const AdapterState& kept, const std::string& label, bool on_derived_base) {
  return variant_with_own_form(kept, label).peft.own_form(kept, on_derived_base);
}

void derive_base_of(const Model& base, const AdapterState& kept, Model& derived) {
  const VariantDescriptor& v = variant_with_own_form(kept, "adapter of " + kept.base_model);
  copy_base_weights(base, derived);
  Backend& be = derived.backend();
  for (int l = 0; l < base.config().layers; ++l)
    for (Target t : kept.config.targets) {
      const Linear& lin = derived.linear(l, t);
      upload_values(be, lin.weight,
                    v.peft.residual(kept, lin.hf_name(), download_values(be, lin.weight), lin.in(), lin.out()));
    }
}

void merge_adapter_into_base(const Model& base, const AdapterState& adapter, Model& merged) {
  MemoryLedger ledger;  // declared first: the scratch model's arenas report to it until they are freed
  // The scratch model keeps its frozen weights in the model dtype even when
  // `base` holds them in bf16 (widened by the copy): the merged sum is formed
  // in fp32, where a small update is not rounded away.
  Model work(base.config(), model_mode_for(adapter.config), base.dtype());
  attach_adapters(work, adapter.config);
  work.materialize(base.backend(), ledger, 1, 1);
  copy_base_weights(base, work);
  work.init_adapters(0);
  load_adapter(work, adapter, "adapter of " + adapter.base_model);
  merge_adapters(work);
  copy_base_weights(work, merged);
}

std::map<std::string, HostTensor> module_deltas(const Model& now, const std::filesystem::path& start_checkpoint,
                                                const std::vector<Target>& targets) {
  const io::SafetensorsFile start = io::SafetensorsFile::open(start_checkpoint);
  std::map<std::string, HostTensor> out;
  for (int l = 0; l < now.config().layers; ++l)
    for (Target t : targets) {
      const Linear& lin = now.linear(l, t);
      const std::string name = lin.hf_name() + ".weight";
      const io::StTensorInfo* info = start.find(name);
      if (!info) throw FormatError(start_checkpoint.string(), "tensor \"" + name + "\" is missing");
      const Shape64 shape = tensor_shape(lin.weight);
      if (info->shape != shape)
        throw FormatError(start_checkpoint.string(), "tensor \"" + name + "\" has shape " +
                                                         io::shape_str(info->shape) + " but the model expects " +
                                                         io::shape_str(shape));
      const std::vector<float> w0 = start.read_f32(name);
      const std::vector<double> w = download_values(now.backend(), lin.weight);
      HostTensor d{shape, std::vector<float>(w.size())};
      for (std::size_t i = 0; i < w.size(); ++i) d.values[i] = static_cast<float>(w[i] - w0[i]);
      out.emplace(lin.hf_name(), std::move(d));
    }
  return out;
}

LoraFromDelta lora_from_delta(const std::map<std::string, HostTensor>& deltas, int rank, const ModelConfig& model,
                              const std::string& base_model, const std::string& base_fingerprint) {
  std::set<Target> targets;
  std::set<std::pair<int, Target>> present;
  for (const auto& [name, d] : deltas) {
    const std::optional<ModuleId> id = parse_module_hf_name(name);
    if (!id || id->layer >= model.layers)
      throw ConfigError("deltas",
                        "\"" + name + "\" is not a module of the model (e.g. model.layers.0.self_attn.q_proj)");
    const LinearShape s = linear_shape(model, id->target);
    if (d.shape != Shape64{s.out, s.in})
      throw ConfigError("deltas", "\"" + name + "\" has shape " + io::shape_str(d.shape) + "; expected [" +
                                      std::to_string(s.out) + ", " + std::to_string(s.in) + "]");
    targets.insert(id->target);
    present.insert({id->layer, id->target});
  }
  // PEFT applies target_modules to every layer, so each layer needs every target.
  for (int l = 0; l < model.layers; ++l)
    for (Target t : targets)
      if (!present.contains({l, t}))
        throw ConfigError("deltas", "no update for " + module_hf_name(l, t) + "; PEFT adapts " +
                                        target_module_name(t) + " in every layer");

  LoraFromDelta out;
  AdapterState& s = out.state;
  s.config.method = "lora";
  s.config.r = rank;
  s.config.alpha = rank;  // s = alpha / r = 1: the factors carry the whole update
  s.config.dropout = 0;
  s.config.targets.assign(targets.begin(), targets.end());
  s.config.validate(model);
  s.base_model = base_model;
  s.base_fingerprint = base_fingerprint;
  s.model = model;
  for (const auto& [name, d] : deltas) {
    const int rows = static_cast<int>(d.shape[0]), cols = static_cast<int>(d.shape[1]);
    Factors f = truncated_factors(d.values, rows, cols, rank);
    s.tensors[peft_key(name, "lora_A.weight")] = HostTensor{{rank, cols}, std::move(f.A)};
    s.tensors[peft_key(name, "lora_B.weight")] = HostTensor{{rows, rank}, std::move(f.B)};
    out.relative_error[name] = f.relative_error;
  }
  return out;
}

}  // namespace lwb
