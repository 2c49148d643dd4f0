#include "core/compose/merge.h"

#include "core/adapters/lora.h"

#include <algorithm>
#include <cmath>
#include <set>

// LAPACK from OpenBLAS (as in core/adapters/numerical_rank.cpp).
extern "C" void dgesdd_(const char* jobz, const int* m, const int* n, double* a, const int* lda, double* s,
                        double* u, const int* ldu, double* vt, const int* ldvt, double* work,
                        const int* lwork, int* iwork, int* info);

namespace lwb::compose {

const char* merge_mode_name(MergeMode m) {
  switch (m) {
    case MergeMode::LoraHub: return "lorahub";
    case MergeMode::Linear: return "linear";
    case MergeMode::Cat: return "cat";
    case MergeMode::Svd: return "svd";
  }
  return "?";
}

MergeMode parse_merge_mode(const std::string& s) {
  if (s == "lorahub") return MergeMode::LoraHub;
  if (s == "linear") return MergeMode::Linear;
  if (s == "cat") return MergeMode::Cat;
  if (s == "svd") return MergeMode::Svd;
  throw ConfigError("compose.mode", "unknown merge mode \"" + s + "\"; expected lorahub, linear, cat or svd");
}

IncompatibleMemberError::IncompatibleMemberError(std::string adapter, std::string reason)
    : Error("adapter \"" + adapter + "\" cannot be composed: " + reason),
      adapter_(std::move(adapter)),
      reason_(std::move(reason)) {}

namespace {

std::string quoted(const std::string& s) { return "\"" + s + "\""; }

std::string module_name(int layer, Target t) {
  return "model.layers." + std::to_string(layer) + "." + target_hf_path(t);
}

std::set<Target> target_set(const AdapterConfig& c) { return {c.targets.begin(), c.targets.end()}; }

std::string target_list(const std::set<Target>& targets) {
  std::string s;
  for (Target t : targets) {
    if (!s.empty()) s += ',';
    s += target_short_name(t);
  }
  return s;
}

std::string shape_text(const ModelConfig& m) {
  if (m.layers == 0) return "an unknown base model shape";
  return m.name + " (hidden " + std::to_string(m.hidden) + ", " + std::to_string(m.layers) + " layers, vocab " +
         std::to_string(m.vocab) + ")";
}

bool same_rank_pattern(const AdapterState& a, const AdapterState& b) { return a.rank_pattern == b.rank_pattern; }

// Why `m` cannot join `ref` in `mode`, or "" when it can.
std::string incompatibility(const Member& ref, const Member& m, MergeMode mode) {
  const AdapterConfig& c = m.state.config;
  const AdapterConfig& rc = ref.state.config;
  const VariantDescriptor& v = c.variant();
  if (!v.caps.composable) return v.caps.not_composable_why;
  if (const std::string bad = non_finite_tensors(m.state); !bad.empty())
    return bad + " (an adapter of a diverged run); it would make every composition NaN";
  if (m.state.base_fingerprint != ref.state.base_fingerprint)
    return "it was trained on base model fingerprint " + m.state.base_fingerprint + ", but " + quoted(ref.name) +
           " on " + ref.state.base_fingerprint + "; members must share one base model";
  if (!(m.state.model == ref.state.model))
    return "its base model is " + shape_text(m.state.model) + ", but " + quoted(ref.name) + "'s is " +
           shape_text(ref.state.model);
  if (mode == MergeMode::Cat || mode == MergeMode::Svd) return "";

  const std::string how = std::string(merge_mode_name(mode)) + " mode";
  if (target_set(c) != target_set(rc))
    return "it adapts " + target_list(target_set(c)) + " but " + quoted(ref.name) + " adapts " +
           target_list(target_set(rc)) + "; " + how + " needs identical targets (cat and svd do not)";
  if (c.r != rc.r)
    return "its rank is " + std::to_string(c.r) + " but " + quoted(ref.name) + "'s is " + std::to_string(rc.r) + "; " +
           how + " needs identical ranks (cat and svd do not)";
  const VariantDescriptor& rv = rc.variant();
  if (v.factor_family != rv.factor_family)
    return "its variant is " + v.title + " but " + quoted(ref.name) + "'s is " + rv.title + "; " + how +
           " adds factors only within one family of adapters (use cat or svd)";
  if (!same_rank_pattern(m.state, ref.state))
    return "its rank pattern (the components it kept per module) differs from " + quoted(ref.name) + "'s; " + how +
           " needs identical rank patterns (use cat or svd)";
  if (mode == MergeMode::LoraHub && std::abs(c.scaling() - rc.scaling()) > 1e-12 * std::abs(rc.scaling()))
    return "its scaling is " + std::to_string(c.scaling()) + " but " + quoted(ref.name) + "'s is " +
           std::to_string(rc.scaling()) + "; lorahub mode sums the factors and needs one scaling (linear, cat and "
           "svd fold each member's scaling in)";
  return "";
}

std::vector<double> read_tensor(const AdapterState& s, const std::string& adapter, const std::string& key,
                                std::vector<std::int64_t> shape) {
  const auto it = s.tensors.find(key);
  if (it == s.tensors.end()) throw FormatError("adapter " + quoted(adapter), "tensor \"" + key + "\" is missing");
  if (it->second.shape != shape)
    throw FormatError("adapter " + quoted(adapter),
                      "tensor \"" + key + "\" does not have the shape its config implies");
  return {it->second.values.begin(), it->second.values.end()};
}

// out[o, i] += c Σ_k B[o, k] A[k, i]
void add_product(std::vector<double>& out, double c, const LoraFactors& f, int in, int outs) {
  for (int o = 0; o < outs; ++o)
    for (int k = 0; k < f.rank; ++k) {
      const double b = c * f.B[static_cast<std::size_t>(o) * f.rank + k];
      if (b == 0) continue;
      const double* a = f.A.data() + static_cast<std::size_t>(k) * in;
      double* row = out.data() + static_cast<std::size_t>(o) * in;
      for (int i = 0; i < in; ++i) row[i] += b * a[i];
    }
}

// Truncated SVD of a row-major [rows, cols] matrix: B = U_k S_k [rows, k],
// A = V_kᵀ [k, cols].
void truncated_svd(std::vector<double> m, int rows, int cols, int k, HostTensor& A, HostTensor& B) {
  // LAPACK is column-major and sees the buffer as Mᵀ [cols, rows] = U' S V'ᵀ,
  // so M = V' S U'ᵀ: M's left vectors are the rows of V'ᵀ, its right ones U'.
  const int lm = cols, ln = rows, p = std::min(rows, cols);
  std::vector<double> s(static_cast<std::size_t>(p)), u(static_cast<std::size_t>(lm) * p),
      vt(static_cast<std::size_t>(p) * ln);
  std::vector<int> iwork(static_cast<std::size_t>(8) * p);
  double query = 0;
  int lwork = -1, info = 0;
  dgesdd_("S", &lm, &ln, m.data(), &lm, s.data(), u.data(), &lm, vt.data(), &p, &query, &lwork, iwork.data(), &info);
  lwork = static_cast<int>(query);
  std::vector<double> work(static_cast<std::size_t>(std::max(lwork, 1)));
  dgesdd_("S", &lm, &ln, m.data(), &lm, s.data(), u.data(), &lm, vt.data(), &p, work.data(), &lwork, iwork.data(),
          &info);
  if (info != 0) throw Error("svd merge: LAPACK dgesdd did not converge (info " + std::to_string(info) + ")");
  for (int o = 0; o < rows; ++o)
    for (int j = 0; j < k; ++j)
      B.values[static_cast<std::size_t>(o) * k + j] =
          static_cast<float>(s[j] * vt[j + static_cast<std::size_t>(o) * p]);
  for (int j = 0; j < k; ++j)
    for (int i = 0; i < cols; ++i)
      A.values[static_cast<std::size_t>(j) * cols + i] = static_cast<float>(u[i + static_cast<std::size_t>(j) * lm]);
}

}  // namespace

LoraFactors lora_factors(const AdapterState& s, const std::string& adapter, int layer, Target t) {
  if (!s.config.targets_contain(t)) return {};
  const LinearShape shape = linear_shape(s.model, t);
  const std::string module = module_name(layer, t);
  const AdapterTensorReader read = [&](const std::string& suffix, bool model_level, std::vector<std::int64_t> dims) {
    return read_tensor(s, adapter, model_level ? model_level_key(suffix) : peft_key(module, suffix), std::move(dims));
  };
  return s.config.variant().lora_form(s.config, shape.in, shape.out, read);
}

void check_members(std::span<const Member> members, MergeMode mode) {
  if (members.empty()) throw ConfigError("compose.adapters", "choose at least one adapter to compose");
  for (const Member& m : members) {
    const std::string why = incompatibility(members.front(), m, mode);
    if (!why.empty()) throw IncompatibleMemberError(m.name, why);
  }
}

Composer::Composer(std::vector<Member> members, MergeMode mode, int svd_rank)
    : members_(std::move(members)), mode_(mode) {
  check_members(members_, mode_);
  const AdapterState& ref = members_.front().state;
  std::set<Target> targets;
  int max_rank = 0, rank_sum = 0;
  for (const Member& m : members_) {
    for (Target t : m.state.config.targets) targets.insert(t);
    max_rank = std::max(max_rank, m.state.config.r);
    rank_sum += m.state.config.r;
  }

  AdapterConfig& c = result_.config;
  c = ref.config;
  c.method = "lora";
  c.options.clear();
  c.targets.assign(targets.begin(), targets.end());
  switch (mode_) {
    case MergeMode::LoraHub:
      rank_ = ref.config.r;
      // The result is a plain LoRA: the members' alpha (and rsLoRA flag) where
      // LoRA scales them alike, else their scaling as a LoRA alpha with the
      // same s (AdaLoRA's alpha / (init_r + 1e-5)).
      if (lora_scaling(ref.config) != ref.config.scaling()) {
        c.alpha = ref.config.scaling() * rank_;
        c.use_rslora = false;
      }
      break;
    case MergeMode::Linear: rank_ = ref.config.r; break;
    case MergeMode::Cat: rank_ = rank_sum; break;
    case MergeMode::Svd:
      rank_ = svd_rank > 0 ? svd_rank : max_rank;
      for (Target t : targets) {
        const LinearShape s = linear_shape(ref.model, t);
        if (rank_ > std::min(s.in, s.out))
          throw ConfigError("compose.svd_rank", "rank " + std::to_string(rank_) + " exceeds min(in, out) = " +
                                                    std::to_string(std::min(s.in, s.out)) + " of " +
                                                    target_module_name(t));
      }
      break;
  }
  c.r = rank_;
  if (mode_ != MergeMode::LoraHub) {
    c.alpha = rank_;  // scaling 1: the members' scalings are folded into the factors
    c.use_rslora = false;
  }
  result_.base_model = ref.base_model;
  result_.base_fingerprint = ref.base_fingerprint;
  result_.model = ref.model;

  for (int l = 0; l < ref.model.layers; ++l)
    for (Target t : kAllTargets) {
      if (!targets.count(t)) continue;
      Module m;
      m.name = module_name(l, t);
      const LinearShape shape = linear_shape(ref.model, t);
      m.in = shape.in;
      m.out = shape.out;
      for (const Member& member : members_) {
        LoraFactors f = lora_factors(member.state, member.name, l, t);
        if (f.rank == 0) {
          // A member that does not adapt this module still fills its rank
          // with zeros, so that a cat merge has one rank in every module.
          f.rank = member.state.config.r;
          f.scaling = 1;
          f.A.assign(static_cast<std::size_t>(f.rank) * m.in, 0.0);
          f.B.assign(static_cast<std::size_t>(m.out) * f.rank, 0.0);
        }
        m.members.push_back(std::move(f));
      }
      m.key_A = peft_key(m.name, "lora_A.weight");
      m.key_B = peft_key(m.name, "lora_B.weight");
      result_.tensors[m.key_A] = {{rank_, m.in}, std::vector<float>(static_cast<std::size_t>(rank_) * m.in)};
      result_.tensors[m.key_B] = {{m.out, rank_}, std::vector<float>(static_cast<std::size_t>(m.out) * rank_)};
      modules_.push_back(std::move(m));
    }
}

const AdapterState& Composer::compose(std::span<const double> weights) {
  if (weights.size() != members_.size())
    throw ConfigError("compose.weights", std::to_string(weights.size()) + " weights for " +
                                             std::to_string(members_.size()) + " adapters");
  for (const Module& m : modules_) compose_module(m, weights);
  return result_;
}

void Composer::compose_module(const Module& m, std::span<const double> w) {
  HostTensor& At = result_.tensors.at(m.key_A);
  HostTensor& Bt = result_.tensors.at(m.key_B);
  std::vector<float>& A = At.values;
  std::vector<float>& B = Bt.values;
  const std::size_t n = members_.size();
  switch (mode_) {
    case MergeMode::LoraHub:
    case MergeMode::Linear: {
      // Both sum per element; only the coefficients differ.
      std::vector<double> ca(n), cb(n);
      for (std::size_t i = 0; i < n; ++i) {
        if (mode_ == MergeMode::LoraHub) {
          ca[i] = cb[i] = w[i];
        } else {
          const double ws = w[i] * m.members[i].scaling;
          cb[i] = std::sqrt(std::abs(ws));
          ca[i] = ws < 0 ? -cb[i] : cb[i];
        }
      }
      for (std::size_t e = 0; e < A.size(); ++e) {
        double v = 0;
        for (std::size_t i = 0; i < n; ++i) v += ca[i] * m.members[i].A[e];
        A[e] = static_cast<float>(v);
      }
      for (std::size_t e = 0; e < B.size(); ++e) {
        double v = 0;
        for (std::size_t i = 0; i < n; ++i) v += cb[i] * m.members[i].B[e];
        B[e] = static_cast<float>(v);
      }
      break;
    }
    case MergeMode::Cat: {
      int offset = 0;
      for (std::size_t i = 0; i < n; ++i) {
        const LoraFactors& f = m.members[i];
        const double c = w[i] * f.scaling;
        for (int k = 0; k < f.rank; ++k)
          for (int j = 0; j < m.in; ++j)
            A[static_cast<std::size_t>(offset + k) * m.in + j] =
                static_cast<float>(c * f.A[static_cast<std::size_t>(k) * m.in + j]);
        for (int o = 0; o < m.out; ++o)
          for (int k = 0; k < f.rank; ++k)
            B[static_cast<std::size_t>(o) * rank_ + offset + k] =
                static_cast<float>(f.B[static_cast<std::size_t>(o) * f.rank + k]);
        offset += f.rank;
      }
      break;
    }
    case MergeMode::Svd: {
      std::vector<double> delta(static_cast<std::size_t>(m.out) * m.in, 0.0);
      for (std::size_t i = 0; i < n; ++i) add_product(delta, w[i] * m.members[i].scaling, m.members[i], m.in, m.out);
      truncated_svd(std::move(delta), m.out, m.in, rank_, At, Bt);
      break;
    }
  }
}

namespace {

// (layer, target) of "model.layers.N.<path>"; ConfigError when there is none.
std::pair<int, Target> find_module(const ModelConfig& model, const std::string& module) {
  for (int l = 0; l < model.layers; ++l)
    for (Target t : kAllTargets)
      if (module_name(l, t) == module) return {l, t};
  throw ConfigError("compose.module", "no module \"" + module + "\" in a " + model.name + " model");
}

}  // namespace

std::vector<double> dense_delta(std::span<const Member> members, std::span<const double> weights,
                                const std::string& module) {
  if (members.empty()) throw ConfigError("compose.adapters", "choose at least one adapter to compose");
  if (weights.size() != members.size())
    throw ConfigError("compose.weights", std::to_string(weights.size()) + " weights for " +
                                             std::to_string(members.size()) + " adapters");
  const ModelConfig& model = members.front().state.model;
  const auto [layer, target] = find_module(model, module);
  const LinearShape s = linear_shape(model, target);
  std::vector<double> delta(static_cast<std::size_t>(s.out) * s.in, 0.0);
  for (std::size_t i = 0; i < members.size(); ++i) {
    const LoraFactors f = lora_factors(members[i].state, members[i].name, layer, target);
    add_product(delta, weights[i] * f.scaling, f, s.in, s.out);
  }
  return delta;
}

std::vector<double> dense_delta(const AdapterState& adapter, const std::string& module) {
  const auto [layer, target] = find_module(adapter.model, module);
  const LinearShape s = linear_shape(adapter.model, target);
  std::vector<double> delta(static_cast<std::size_t>(s.out) * s.in, 0.0);
  const LoraFactors f = lora_factors(adapter, "adapter", layer, target);
  add_product(delta, f.scaling, f, s.in, s.out);
  return delta;
}

}  // namespace lwb::compose
