#include "core/infer/decoder.h"

#include <algorithm>
#include <map>
#include <stdexcept>
#include <string>

#include "core/common/errors.h"
#include "core/infer/adapter_set.h"
#include "core/infer/decode_weights.h"
#include "core/model/weights_init.h"

namespace lwb::infer {

namespace {

constexpr std::int64_t kDefaultMaxRows = 512;

Tensor weight_named(const std::map<std::string, Tensor>& weights, const std::string& name) {
  const auto it = weights.find(name);
  if (it == weights.end()) throw std::logic_error("Decoder: the model has no weight " + name);
  return it->second;
}

}  // namespace

Decoder::Decoder(const Model& model, DecoderLimits limits, MemoryLedger& ledger,
                 std::shared_ptr<const DecodeWeights> small_batch)
    : model_(model),
      limits_(limits),
      ledger_(ledger),
      cache_(MemCategory::Activations, model.dtype()),
      buffers_(MemCategory::Workspace, model.dtype()) {
  if (!model.materialized()) throw std::logic_error("Decoder: the model is not materialised");
  const ModelConfig& c = model.config();
  if (limits_.context == 0) limits_.context = c.max_seq;
  if (limits_.sequences < 1 || limits_.sequences > 4096)
    throw ConfigError("generate.batch", "the number of sequences must be in 1..4096, not " +
                                            std::to_string(limits_.sequences));
  if (limits_.context < 1 || limits_.context > c.max_seq)
    throw ConfigError("generate.context", "the context must be in 1.." + std::to_string(c.max_seq) +
                                              " (the model's max_position_embeddings), not " +
                                              std::to_string(limits_.context));
  if (limits_.max_rows == 0) limits_.max_rows = std::min(limits_.sequences * limits_.context, kDefaultMaxRows);
  if (limits_.max_rows < limits_.sequences || limits_.max_rows > (std::int64_t{1} << 20))
    throw ConfigError("generate.max_rows", "rows per forward call must be in " + std::to_string(limits_.sequences) +
                                               "..2^20 (at least one per sequence), not " +
                                               std::to_string(limits_.max_rows));
  if (limits_.sequences * limits_.context > 0x7fffffff)
    throw ConfigError("generate.context", "sequences x context must stay below 2^31 cache rows");

  std::map<std::string, Tensor> weights;
  for (auto& [name, t] : model.named_base_weights()) weights.emplace(name, t);
  embed_ = weight_named(weights, "model.embed_tokens.weight");
  final_norm_ = weight_named(weights, "model.norm.weight");
  lm_head_ = c.tie_embeddings ? embed_ : weight_named(weights, "lm_head.weight");
  layers_.resize(static_cast<std::size_t>(c.layers));
  std::int64_t max_weight = 0, max_act = 0;
  bool bf16 = false;
  for (int l = 0; l < c.layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    layers_[l].attn_norm = weight_named(weights, p + "input_layernorm.weight");
    layers_[l].mlp_norm = weight_named(weights, p + "post_attention_layernorm.weight");
    for (Target t : kAllTargets) {
      auto lin = std::make_unique<Linear>(l, t, linear_shape(c, t));
      lin->weight = model.linear(l, t).weight;
      bf16 = bf16 || lin->weight.dtype == DType::BF16;
      max_weight = std::max(max_weight, std::int64_t{lin->out()} * lin->in());
      max_act = std::max(max_act, limits_.max_rows * std::max(lin->out(), lin->in()));
      layers_[l].linears[static_cast<int>(t)] = std::move(lin);
    }
  }

  const std::int64_t R = limits_.max_rows, S = limits_.sequences, C = c.hidden, I = c.intermediate;
  const std::int64_t hd = c.head_dim(), qd = c.heads * hd, kvd = c.kv_heads * hd;
  keys_.resize(layers_.size());
  values_.resize(layers_.size());
  for (int l = 0; l < c.layers; ++l) {
    cache_.add(&keys_[l], l, "kv_cache.k", Shape{S * limits_.context, kvd});
    cache_.add(&values_[l], l, "kv_cache.v", Shape{S * limits_.context, kvd});
  }
  buffers_.add(&x_, kModelLevel, "residual", Shape{R, C});
  buffers_.add(&ln_, kModelLevel, "norm", Shape{R, C});
  buffers_.add(&rstd_, kModelLevel, "norm", Shape{R});
  buffers_.add(&q_, kModelLevel, "q_proj", Shape{R, qd});
  buffers_.add(&k_, kModelLevel, "k_proj", Shape{R, kvd});
  buffers_.add(&v_, kModelLevel, "v_proj", Shape{R, kvd});
  buffers_.add(&att_, kModelLevel, "attention", Shape{R, qd});
  buffers_.add(&proj_, kModelLevel, "projection_out", Shape{R, C});
  buffers_.add(&gate_, kModelLevel, "gate_proj", Shape{R, I});
  buffers_.add(&up_, kModelLevel, "up_proj", Shape{R, I});
  buffers_.add(&h_, kModelLevel, "mlp_act", Shape{R, I});
  buffers_.add(&rope_table_, kModelLevel, "rope_table", Shape{limits_.context, hd});
  buffers_.add(&rope_rows_, kModelLevel, "rope_rows", Shape{R, hd});
  buffers_.add(&last_, kModelLevel, "residual_last", Shape{S, C});
  buffers_.add(&last_ln_, kModelLevel, "norm", Shape{S, C});
  buffers_.add(&last_rstd_, kModelLevel, "norm", Shape{S});
  buffers_.add(&logits_, kModelLevel, "logits", Shape{S, c.vocab});
  Backend& be = model.backend();
  const CachedAttentionShape att{R, c.heads, c.kv_heads, static_cast<int>(hd), S, limits_.context};
  const std::size_t att_bytes = be.attention_cached_workspace_bytes(att, model.dtype());
  const std::size_t es = dtype_size(model.dtype());
  buffers_.add(&attention_workspace_, kModelLevel, "attention",
               Shape{std::max<std::int64_t>(1, static_cast<std::int64_t>((att_bytes + es - 1) / es))});
  buffers_.add(&module_scratch_, kModelLevel, "adapter_scratch", Shape{1});
  // Token ids and cache rows share the float arena: I32 has the size of F32
  // (for F64 models the slots are twice as large as needed).
  buffers_.add(&indices_, kModelLevel, "indices", Shape{4 * R + S});
  cache_.materialize(be, ledger);
  buffers_.materialize(be, ledger);
  indices_.dtype = DType::I32;
  staging_.assign(static_cast<std::size_t>(4 * R + S), 0);
  upload_values(be, rope_table_, rope_table(c, limits_.context));
  if (bf16)
    mixed_gemm_entry_ = ledger.add(kModelLevel, "bf16_gemm_conversion", MemCategory::Workspace,
                                   be.reserve_mixed_gemm(max_weight, max_act));
  decode_weights_ = small_batch ? std::move(small_batch) : DecodeWeights::make(model, nullptr, ledger);
  if (decode_weights_ && &decode_weights_->model() != &model)
    throw std::invalid_argument("Decoder: the small-batch weights were made for another model");
}

Decoder::~Decoder() {
  if (mixed_gemm_entry_) ledger_.remove(*mixed_gemm_entry_);
}

void Decoder::check_rows(const DecoderRows& r, const AdapterSet* adapter) const {
  const auto n = static_cast<std::int64_t>(r.tokens.size());
  if (r.sequences.size() != r.tokens.size() || r.positions.size() != r.tokens.size())
    throw std::invalid_argument("Decoder::forward: tokens, sequences and positions differ in length");
  if (n < 1 || n > limits_.max_rows)
    throw std::invalid_argument("Decoder::forward: " + std::to_string(n) + " rows, expected 1.." +
                                std::to_string(limits_.max_rows));
  if (r.logit_rows.size() > static_cast<std::size_t>(limits_.sequences))
    throw std::invalid_argument("Decoder::forward: logits of " + std::to_string(r.logit_rows.size()) +
                                " rows asked, at most " + std::to_string(limits_.sequences));
  for (std::int64_t i = 0; i < n; ++i) {
    const auto at = static_cast<std::size_t>(i);
    if (r.tokens[at] < 0 || r.tokens[at] >= config().vocab)
      throw std::invalid_argument("Decoder::forward: row " + std::to_string(i) + ": token " +
                                  std::to_string(r.tokens[at]) + " outside the vocabulary of " +
                                  std::to_string(config().vocab));
    if (r.sequences[at] < 0 || r.sequences[at] >= limits_.sequences || r.positions[at] < 0 ||
        r.positions[at] >= limits_.context)
      throw std::invalid_argument("Decoder::forward: row " + std::to_string(i) + ": slot " +
                                  std::to_string(r.sequences[at]) + " position " + std::to_string(r.positions[at]) +
                                  " outside " + std::to_string(limits_.sequences) + " slots of " +
                                  std::to_string(limits_.context) + " positions");
  }
  for (std::int32_t row : r.logit_rows)
    if (row < 0 || row >= n)
      throw std::invalid_argument("Decoder::forward: logit row " + std::to_string(row) + " of " +
                                  std::to_string(n) + " rows");
  if (adapter && &adapter->decoder() != this)
    throw std::invalid_argument("Decoder::forward: adapter \"" + adapter->name() +
                                "\" was loaded for another decoder");
}

Linear& Decoder::linear(const AdapterSet* adapter, int layer, Target t) const {
  if (adapter)
    if (Linear* m = adapter->module(layer, t)) return *m;
  return *layers_[layer].linears[static_cast<int>(t)];
}

Tensor Decoder::forward(const DecoderRows& r, const AdapterSet* adapter) {
  check_rows(r, adapter);
  Backend& be = model_.backend();
  const ModelConfig& c = model_.config();
  const auto n = static_cast<std::int64_t>(r.tokens.size());
  const auto m = static_cast<std::int64_t>(r.logit_rows.size());
  const std::int64_t R = limits_.max_rows, C = c.hidden;
  const int H = c.heads, KVH = c.kv_heads, hd = c.head_dim();
  const std::int64_t kvd = static_cast<std::int64_t>(KVH) * hd;

  // One upload for every index of the call.
  std::int32_t* s = staging_.data();
  for (std::int64_t i = 0; i < n; ++i) {
    const auto at = static_cast<std::size_t>(i);
    s[i] = r.tokens[at];
    s[R + i] = static_cast<std::int32_t>(r.sequences[at] * limits_.context + r.positions[at]);
    s[2 * R + i] = r.sequences[at];
    s[3 * R + i] = r.positions[at];
  }
  std::copy(r.logit_rows.begin(), r.logit_rows.end(), s + 4 * R);
  be.upload(indices_, staging_.data(), staging_.size() * sizeof(std::int32_t));
  const Tensor tokens = indices_.view(0, Shape{n}), cache_rows = indices_.view(R, Shape{n}),
               sequences = indices_.view(2 * R, Shape{n}), positions = indices_.view(3 * R, Shape{n}),
               logit_rows = indices_.view(4 * R, Shape{m});

  const ForwardContext ctx{be, n, false, 0, adapter ? adapter->scratch() : module_scratch_, decode_weights_.get()};
  const Tensor x = x_.rows(0, n), ln = ln_.rows(0, n), q = q_.rows(0, n), k = k_.rows(0, n),
               v = v_.rows(0, n), att = att_.rows(0, n), proj = proj_.rows(0, n),
               gate = gate_.rows(0, n), up = up_.rows(0, n), h = h_.rows(0, n),
               rope = rope_rows_.rows(0, n);
  const CachedAttentionShape shape{n, H, KVH, hd, limits_.sequences, limits_.context};

  be.embedding_forward(x, tokens, embed_, n, C);
  // The rotary table's rows at the rows' positions, so rope_forward (which
  // takes row i at table row i % T) rotates each row by its own position.
  be.embedding_forward(rope, positions, rope_table_, n, hd);
  for (int l = 0; l < c.layers; ++l) {
    const LayerWeights& lw = layers_[l];
    be.rmsnorm_forward(ln, rstd_, x, lw.attn_norm, n, C, c.norm_eps);
    linear(adapter, l, Target::Q).forward(ctx, ln, q);
    linear(adapter, l, Target::K).forward(ctx, ln, k);
    linear(adapter, l, Target::V).forward(ctx, ln, v);
    be.rope_forward(q, rope, n, n, H, hd);
    be.rope_forward(k, rope, n, n, KVH, hd);
    be.scatter_rows(keys_[l], cache_rows, k, n, kvd);
    be.scatter_rows(values_[l], cache_rows, v, n, kvd);
    be.attention_cached(att, q, keys_[l], values_[l], sequences, positions, shape, attention_workspace_);
    linear(adapter, l, Target::O).forward(ctx, att, proj);
    be.add(x, x, proj);

    be.rmsnorm_forward(ln, rstd_, x, lw.mlp_norm, n, C, c.norm_eps);
    linear(adapter, l, Target::Gate).forward(ctx, ln, gate);
    linear(adapter, l, Target::Up).forward(ctx, ln, up);
    be.swiglu_forward(h, gate, up, h.numel());
    linear(adapter, l, Target::Down).forward(ctx, h, proj);
    be.add(x, x, proj);
  }
  if (m == 0) return logits_.rows(0, 0);
  // The final norm and the classifier only for the rows whose logits are wanted.
  const Tensor last = last_.rows(0, m), last_ln = last_ln_.rows(0, m), logits = logits_.rows(0, m);
  be.embedding_forward(last, logit_rows, x_, m, C);
  be.rmsnorm_forward(last_ln, last_rstd_, last, final_norm_, m, C, c.norm_eps);
  if (!decode_weights_ || !decode_weights_->lm_head(m, last_ln, logits))
    be.gemm(false, true, m, c.vocab, C, 1.0, last_ln, C, lm_head_, C, 0.0, logits, c.vocab);
  return logits;
}

}  // namespace lwb::infer
