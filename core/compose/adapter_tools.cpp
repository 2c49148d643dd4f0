#include "core/compose/adapter_tools.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "core/adapters/numerical_rank.h"
#include "core/common/errors.h"
#include "core/model/weights_init.h"
#include "core/tensor/ledger.h"

namespace lwb::compose {

namespace {

// The spectra of `deltas`, then their factors at `rank` (lora_from_delta).
Refactored refactor(const std::map<std::string, HostTensor>& deltas, int rank, const ModelConfig& model,
                    const std::string& base_model, const std::string& base_fingerprint, const char* field,
                    const ToolProgress& progress) {
  if (rank < 1) throw ConfigError(field, "the rank must be at least 1, got " + std::to_string(rank));
  Refactored out;
  out.rank = rank;
  const int total = static_cast<int>(deltas.size()) + 1;
  double kept = 0, all = 0;
  int done = 0;
  for (const auto& [name, d] : deltas) {
    const int rows = static_cast<int>(d.shape.at(0)), cols = static_cast<int>(d.shape.at(1));
    if (rank > std::min(rows, cols))
      throw ConfigError(field, "rank " + std::to_string(rank) + " exceeds min(in, out) = " +
                                   std::to_string(std::min(rows, cols)) + " of " + name);
    ModuleSpectrum m{name, singular_values(std::vector<double>(d.values.begin(), d.values.end()), rows, cols), 1};
    m.retained = retained_energy(m.singular, rank);
    for (std::size_t i = 0; i < m.singular.size(); ++i) {
      const double e = m.singular[i] * m.singular[i];
      all += e;
      if (static_cast<int>(i) < rank) kept += e;
    }
    out.min_retained = std::min(out.min_retained, m.retained);
    out.modules.push_back(std::move(m));
    if (progress) progress(++done, total);
  }
  out.retained = all > 0 ? kept / all : 1;
  out.state = lora_from_delta(deltas, rank, model, base_model, base_fingerprint).state;
  if (progress) progress(total, total);
  return out;
}

double frobenius(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x * x;
  return std::sqrt(s);
}

}  // namespace

double retained_energy(std::span<const double> singular, int rank) {
  double kept = 0, all = 0;
  for (std::size_t i = 0; i < singular.size(); ++i) {
    all += singular[i] * singular[i];
    if (static_cast<int>(i) < rank) kept += singular[i] * singular[i];
  }
  return all > 0 ? kept / all : 1;
}

Refactored resize_adapter(const AdapterState& adapter, int rank, const ToolProgress& progress) {
  // The concatenation's rules are the resize's: any LoRA-form adapter, no DoRA.
  check_members(std::vector<Member>{{"adapter", adapter}}, MergeMode::Cat);
  if (!adapter.model_known())
    throw ConfigError("resize.adapter", "the adapter does not record its base model's shape (a PEFT folder written "
                                        "elsewhere); import it against its base first");
  std::map<std::string, HostTensor> deltas;
  for (int l = 0; l < adapter.model.layers; ++l)
    for (Target t : adapter.config.targets) {
      const std::string name = module_hf_name(l, t);
      const std::vector<double> d = dense_delta(adapter, name);
      const LinearShape s = linear_shape(adapter.model, t);
      deltas.emplace(name, HostTensor{{s.out, s.in}, std::vector<float>(d.begin(), d.end())});
    }
  return refactor(deltas, rank, adapter.model, adapter.base_model, adapter.base_fingerprint, "resize.rank", progress);
}

Refactored extract_lora(const Model& fine_tuned, const std::filesystem::path& base_checkpoint,
                        const std::vector<Target>& targets, int rank, const std::string& base_model,
                        const std::string& base_fingerprint, const ToolProgress& progress) {
  if (targets.empty()) throw ConfigError("extract.targets", "choose at least one projection to extract");
  return refactor(module_deltas(fine_tuned, base_checkpoint, targets), rank, fine_tuned.config(), base_model,
                  base_fingerprint, "extract.rank", progress);
}

void merge_into_base(const Model& base, std::span<const Member> adapters, std::span<const double> ratios,
                     Model& merged) {
  if (adapters.empty()) throw ConfigError("merge.ratios", "choose at least one adapter to merge");
  if (adapters.size() != ratios.size())
    throw ConfigError("merge.ratios", std::to_string(ratios.size()) + " ratios for " +
                                          std::to_string(adapters.size()) + " adapters");
  for (const Member& m : adapters) check_adapter_fits(m.state, base.config(), "adapter \"" + m.name + "\"");
  if (adapters.size() == 1 && ratios[0] == 1) return merge_adapter_into_base(base, adapters[0].state, merged);
  Composer composer(std::vector<Member>(adapters.begin(), adapters.end()), MergeMode::Cat);
  merge_adapter_into_base(base, composer.compose(ratios), merged);
}

Verification verify_adapter(const AdapterState& adapter, const Model& base, const std::string& base_fingerprint) {
  Verification v;
  v.problems = adapter_mismatches(adapter, base.config());
  if (!adapter.base_fingerprint.empty() && adapter.base_fingerprint != base_fingerprint)
    v.problems.push_back("it was trained on another base (fingerprint " + adapter.base_fingerprint +
                         ", this base is " + base_fingerprint + ")");
  if (const std::string bad = non_finite_tensors(adapter); !bad.empty()) v.problems.push_back(bad);
  if (!v.ok()) return v;

  MemoryLedger ledger;
  Model merged(base.config(), Model::Mode::Frozen);
  merged.materialize(base.backend(), ledger, 1, 1);
  merge_adapter_into_base(base, adapter, merged);
  std::vector<double> ratios;
  for (int l = 0; l < base.config().layers; ++l)
    for (Target t : adapter.config.targets) {
      const std::vector<double> w = download_values(base.backend(), base.linear(l, t).weight);
      std::vector<double> d = download_values(base.backend(), merged.linear(l, t).weight);
      for (std::size_t i = 0; i < d.size(); ++i) d[i] -= w[i];
      const double ratio = frobenius(d) / std::max(frobenius(w), 1e-30);
      const std::string name = module_hf_name(l, t);
      if (!std::isfinite(ratio)) v.problems.push_back(name + " merges into non-finite weights");
      v.update_ratio.emplace_back(name, ratio);
      ratios.push_back(ratio);
    }
  std::sort(ratios.begin(), ratios.end());
  if (!ratios.empty()) {
    char buf[200];
    std::snprintf(buf, sizeof buf, "%zu modules; update / weight (Frobenius) from %.3g to %.3g, median %.3g",
                  ratios.size(), ratios.front(), ratios.back(), ratios[ratios.size() / 2]);
    v.notes.emplace_back(buf);
    if (ratios.back() > 1)
      v.notes.emplace_back("some updates are larger than the weights they change: the adapter may have diverged");
    if (ratios.back() == 0) v.notes.emplace_back("the adapter changes nothing (every update is zero)");
  }
  return v;
}

}  // namespace lwb::compose
