#include "core/model/model.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "core/common/errors.h"
#include "core/model/linear_cross_entropy.h"
#include "core/model/weights_init.h"
#include "core/tensor/rng.h"

namespace lwb {

Model::Model(ModelConfig config, Mode mode, DType dtype, std::optional<DType> frozen_linear_dtype)
    : config_(std::move(config)),
      mode_(mode),
      dtype_(dtype),
      frozen_linear_dtype_(frozen_linear_dtype.value_or(dtype)),
      frozen_(MemCategory::FrozenWeights, dtype),
      frozen_linear_(MemCategory::FrozenWeights, frozen_linear_dtype_),
      trainable_(dtype),
      activations_(MemCategory::Activations, dtype),
      workspace_(MemCategory::Workspace, dtype),
      requested_logits_(MemCategory::Activations, dtype) {
  config_.validate();
  if (frozen_linear_dtype_ != dtype_) {
    if (frozen_linear_dtype_ != DType::BF16 || dtype_ != DType::F32)
      throw ConfigError("model.frozen_dtype", std::string("frozen weights in ") + dtype_name(frozen_linear_dtype_) +
                                                  " need an fp32 model with bf16 frozen weights, not " +
                                                  dtype_name(dtype_));
    if (mode_ == Mode::Full)
      throw ConfigError("model.frozen_dtype",
                        "full fine-tuning has no frozen weights: every base weight trains in fp32");
  }
  layers_.resize(static_cast<std::size_t>(config_.layers));
  for (int l = 0; l < config_.layers; ++l)
    for (Target t : kAllTargets)
      layers_[l].linears[static_cast<int>(t)] =
          std::make_unique<Linear>(l, t, linear_shape(config_, t));
}

Model::~Model() {
  if (mixed_gemm_entry_) ledger_->remove(*mixed_gemm_entry_);
}

void Model::replace_linear(std::unique_ptr<Linear> module) {
  if (materialized()) throw std::logic_error("Model::replace_linear after materialize");
  const int l = module->layer();
  layers_.at(static_cast<std::size_t>(l)).linears[static_cast<int>(module->target())] =
      std::move(module);
}

void Model::set_classifier_chunk_rows(std::int64_t rows) {
  if (declared_) throw std::logic_error("Model::set_classifier_chunk_rows after declare");
  if (rows < 0) throw std::invalid_argument("Model::set_classifier_chunk_rows: negative row count");
  chunk_rows_ = rows;
}

void Model::declare(std::int64_t max_batch, std::int64_t max_seq, std::size_t attention_bytes) {
  if (declared_) throw std::logic_error("Model::declare twice");
  declared_ = true;
  max_batch_ = max_batch;
  max_seq_ = max_seq;
  const std::int64_t N = max_batch_ * max_seq_;
  const std::int64_t C = config_.hidden, I = config_.intermediate, V = config_.vocab;
  const std::int64_t qd = static_cast<std::int64_t>(config_.heads) * config_.head_dim();
  const std::int64_t kvd = static_cast<std::int64_t>(config_.kv_heads) * config_.head_dim();

  // Base weights: trainable (with gradients) in full fine-tuning, frozen otherwise.
  // Norm weights are not weight-decayed, as in HF Trainer.
  auto weight = [&](Tensor* w, Tensor* g, int layer, const char* module, Shape shape, bool decay,
                    TensorArena& frozen) {
    if (mode_ == Mode::Full)
      trainable_.add(w, g, layer, module, shape, decay);
    else
      frozen.add(w, layer, module, shape);
  };
  weight(&embed_, &embed_grad_, kModelLevel, "embed_tokens", Shape{V, C}, true, frozen_);
  for (int l = 0; l < config_.layers; ++l) {
    LayerWeights& lw = layers_[l];
    weight(&lw.attn_norm, &lw.attn_norm_grad, l, "input_layernorm", Shape{C}, false, frozen_);
    weight(&lw.mlp_norm, &lw.mlp_norm_grad, l, "post_attention_layernorm", Shape{C}, false, frozen_);
    for (auto& lin : lw.linears)
      weight(&lin->weight, &lin->weight_grad, l, target_module_name(lin->target()),
             Shape{lin->out(), lin->in()}, true, frozen_linear_);
  }
  weight(&final_norm_, &final_norm_grad_, kModelLevel, "norm", Shape{C}, false, frozen_);
  if (!config_.tie_embeddings)
    weight(&lm_head_, &lm_head_grad_, kModelLevel, "lm_head", Shape{V, C}, true, frozen_);

  ModelBuffers buffers{frozen_, trainable_, activations_, workspace_, N, shared_};
  std::int64_t module_scratch = 1;
  for (auto& lw : layers_)
    for (auto& lin : lw.linears) {
      lin->declare(buffers);
      module_scratch = std::max(module_scratch, lin->scratch_elems(N));
    }

  // Activations kept for the backward pass.
  activations_.add(&tokens_, kModelLevel, "input_ids", Shape{N});
  activations_.add(&targets_, kModelLevel, "labels", Shape{N});
  acts_.resize(static_cast<std::size_t>(config_.layers));
  for (int l = 0; l < config_.layers; ++l) {
    LayerActs& a = acts_[l];
    activations_.add(&a.x_in, l, "residual", Shape{N, C});
    activations_.add(&a.ln1, l, "input_layernorm", Shape{N, C});
    activations_.add(&a.rstd1, l, "input_layernorm", Shape{N});
    activations_.add(&a.q, l, "q_proj", Shape{N, qd});
    activations_.add(&a.k, l, "k_proj", Shape{N, kvd});
    activations_.add(&a.v, l, "v_proj", Shape{N, kvd});
    activations_.add(&a.att, l, "attention", Shape{N, qd});
    activations_.add(&a.lse, l, "attention", Shape{max_batch_ * config_.heads * max_seq_});
    activations_.add(&a.x_mid, l, "residual", Shape{N, C});
    activations_.add(&a.ln2, l, "post_attention_layernorm", Shape{N, C});
    activations_.add(&a.rstd2, l, "post_attention_layernorm", Shape{N});
    activations_.add(&a.gate, l, "gate_proj", Shape{N, I});
    activations_.add(&a.up, l, "up_proj", Shape{N, I});
    activations_.add(&a.h, l, "mlp_act", Shape{N, I});
  }
  activations_.add(&x_final_, kModelLevel, "residual", Shape{N, C});
  activations_.add(&lnf_, kModelLevel, "norm", Shape{N, C});
  activations_.add(&rstdf_, kModelLevel, "norm", Shape{N});
  chunk_rows_ = chunk_rows_ > 0 ? std::min(chunk_rows_, N)
                                : linear_cross_entropy_chunk_rows(N, C, V);
  activations_.add(&logits_, kModelLevel, "logits", Shape{chunk_rows_, V});
  activations_.add(&losses_, kModelLevel, "loss", Shape{N});

  // Backward scratch: one layer's worth, reused from the top layer down.
  workspace_.add(&rope_table_, kModelLevel, "rope_table", Shape{max_seq_, config_.head_dim()});
  workspace_.add(&scratch_.dres, kModelLevel, "grad_residual", Shape{N, C});
  workspace_.add(&scratch_.dln, kModelLevel, "grad_norm_out", Shape{N, C});
  workspace_.add(&scratch_.dq, kModelLevel, "grad_q", Shape{N, qd});
  workspace_.add(&scratch_.dk, kModelLevel, "grad_k", Shape{N, kvd});
  workspace_.add(&scratch_.dv, kModelLevel, "grad_v", Shape{N, kvd});
  workspace_.add(&scratch_.datt, kModelLevel, "grad_attention", Shape{N, qd});
  workspace_.add(&scratch_.dgate, kModelLevel, "grad_gate", Shape{N, I});
  workspace_.add(&scratch_.dup, kModelLevel, "grad_up", Shape{N, I});
  workspace_.add(&scratch_.dh, kModelLevel, "grad_mlp_act", Shape{N, I});
  workspace_.add(&scratch_.proj, kModelLevel, "projection_out", Shape{N, C});
  workspace_.add(&scratch_.attention, kModelLevel, "attention",
                 Shape{static_cast<std::int64_t>((attention_bytes + dtype_size(dtype_) - 1) /
                                                 dtype_size(dtype_))});
  workspace_.add(&scratch_.modules, kModelLevel, "adapter_scratch", Shape{module_scratch});
  // Token ids share the float arena's allocation: I32 has the size of F32, and
  // for F64 runs the slot is simply twice as large as needed.
  workspace_.add(&scratch_.predictions, kModelLevel, "predictions", Shape{N});
}

void Model::materialize(Backend& backend, MemoryLedger& ledger, std::int64_t max_batch,
                        std::int64_t max_seq) {
  if (materialized()) throw std::logic_error("Model::materialize twice");
  if (max_seq > config_.max_seq)
    throw ConfigError("train.seq_len", "sequence length " + std::to_string(max_seq) +
                                           " exceeds the model's maximum of " +
                                           std::to_string(config_.max_seq));
  if (max_batch <= 0) throw ConfigError("train.batch", "must be positive");
  if (max_seq <= 0) throw ConfigError("train.seq_len", "must be positive");
  backend_ = &backend;
  ledger_ = &ledger;
  declare(max_batch, max_seq,
          backend.attention_workspace_bytes(
              AttentionShape{max_batch, max_seq, config_.heads, config_.kv_heads, config_.head_dim()}, dtype_));
  frozen_.materialize(backend, ledger);
  frozen_linear_.materialize(backend, ledger);
  if (frozen_linear_dtype_ == DType::BF16) {
    // Every gemm on a bf16 weight converts one operand: the weight (at most
    // out x in) or the activation it meets (x [N, in] forward, dy [N, out]
    // backward). Sized here once, so the step loop never allocates.
    std::int64_t max_weight = 0, max_act = 0;
    for (const auto& lw : layers_)
      for (const auto& lin : lw.linears) {
        max_weight = std::max(max_weight, std::int64_t{lin->out()} * lin->in());
        max_act = std::max(max_act, max_batch * max_seq * std::max(lin->out(), lin->in()));
      }
    mixed_gemm_entry_ = ledger.add(kModelLevel, "bf16_gemm_conversion", MemCategory::Workspace,
                                   backend.reserve_mixed_gemm(max_weight, max_act));
  }
  trainable_.materialize(backend, ledger);
  activations_.materialize(backend, ledger);
  workspace_.materialize(backend, ledger);
  if (config_.tie_embeddings) {
    lm_head_ = embed_;
    lm_head_grad_ = embed_grad_;
  }
  for (Tensor* t : {&tokens_, &targets_, &scratch_.predictions}) t->dtype = DType::I32;
  upload_values(backend, rope_table_, rope_table(config_, max_seq_));
}

std::vector<const TensorArena*> Model::arenas() const {
  return {&frozen_, &frozen_linear_, &trainable_.params(), &trainable_.grads(), &activations_, &workspace_};
}

std::vector<std::pair<std::string, Tensor>> Model::named_base_weights() const {
  std::vector<std::pair<std::string, Tensor>> out;
  out.emplace_back("model.embed_tokens.weight", embed_);
  for (int l = 0; l < config_.layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    const LayerWeights& lw = layers_[l];
    out.emplace_back(p + "input_layernorm.weight", lw.attn_norm);
    for (Target t : {Target::Q, Target::K, Target::V, Target::O})
      out.emplace_back(p + target_hf_path(t) + ".weight", lw.linears[static_cast<int>(t)]->weight);
    out.emplace_back(p + "post_attention_layernorm.weight", lw.mlp_norm);
    for (Target t : {Target::Gate, Target::Up, Target::Down})
      out.emplace_back(p + target_hf_path(t) + ".weight", lw.linears[static_cast<int>(t)]->weight);
  }
  out.emplace_back("model.norm.weight", final_norm_);
  if (!config_.tie_embeddings) out.emplace_back("lm_head.weight", lm_head_);
  return out;
}

void Model::init_base_weights(std::uint64_t seed) {
  const double residual_std = 0.02 / std::sqrt(2.0 * config_.layers);
  std::uint64_t index = 0;
  for (auto& [name, t] : named_base_weights()) {
    const std::uint64_t s = derive_seed(seed, index++);
    if (t.shape.ndim == 1) {
      upload_values(*backend_, t, std::vector<double>(static_cast<std::size_t>(t.numel()), 1.0));
      continue;
    }
    const bool residual = name.find("o_proj") != std::string::npos ||
                          name.find("down_proj") != std::string::npos;
    upload_values(*backend_, t, normal_values(t.numel(), residual ? residual_std : 0.02, s));
  }
}

void Model::init_adapters(std::uint64_t seed) {
  for (auto& lw : layers_)
    for (auto& lin : lw.linears) lin->initialize(*backend_, seed);
}

AttentionShape Model::attention_shape() const {
  return AttentionShape{B_, T_, config_.heads, config_.kv_heads, config_.head_dim()};
}

ForwardContext Model::context(bool training, std::uint64_t step_seed) const {
  return ForwardContext{*backend_, rows(), training, step_seed, scratch_.modules};
}

void Model::set_batch(const std::int32_t* inputs, const std::int32_t* targets, std::int64_t B,
                      std::int64_t T) {
  if (B > max_batch_ || T > max_seq_)
    throw std::invalid_argument("Model::set_batch: batch " + std::to_string(B) + "x" +
                                std::to_string(T) + " exceeds the materialised " +
                                std::to_string(max_batch_) + "x" + std::to_string(max_seq_));
  B_ = B;
  T_ = T;
  const std::size_t bytes = static_cast<std::size_t>(B * T) * sizeof(std::int32_t);
  backend_->upload(tokens_, inputs, bytes);
  backend_->upload(targets_, targets, bytes);
}

void Model::forward(bool training, std::uint64_t step_seed) {
  Backend& be = *backend_;
  const std::int64_t n = rows(), C = config_.hidden;
  const int H = config_.heads, KVH = config_.kv_heads, hd = config_.head_dim();
  const ForwardContext ctx = context(training, step_seed);
  const Tensor proj = rows_of(scratch_.proj);

  be.embedding_forward(acts_[0].x_in, tokens_, embed_, n, C);
  for (int l = 0; l < config_.layers; ++l) {
    const LayerActs& a = acts_[l];
    LayerWeights& lw = layers_[l];
    auto lin = [&](Target t) -> Linear& { return *lw.linears[static_cast<int>(t)]; };
    const Tensor x_in = rows_of(a.x_in), ln1 = rows_of(a.ln1), q = rows_of(a.q),
                 k = rows_of(a.k), v = rows_of(a.v), att = rows_of(a.att),
                 x_mid = rows_of(a.x_mid), ln2 = rows_of(a.ln2), gate = rows_of(a.gate),
                 up = rows_of(a.up), h = rows_of(a.h);
    const Tensor x_next = rows_of(l + 1 < config_.layers ? acts_[l + 1].x_in : x_final_);

    be.rmsnorm_forward(ln1, a.rstd1, x_in, lw.attn_norm, n, C, config_.norm_eps);
    lin(Target::Q).forward(ctx, ln1, q);
    lin(Target::K).forward(ctx, ln1, k);
    lin(Target::V).forward(ctx, ln1, v);
    be.rope_forward(q, rope_table_, n, T_, H, hd);
    be.rope_forward(k, rope_table_, n, T_, KVH, hd);
    be.attention_forward(att, a.lse, q, k, v, attention_shape(), scratch_.attention);
    lin(Target::O).forward(ctx, att, proj);
    be.add(x_mid, x_in, proj);

    be.rmsnorm_forward(ln2, a.rstd2, x_mid, lw.mlp_norm, n, C, config_.norm_eps);
    lin(Target::Gate).forward(ctx, ln2, gate);
    lin(Target::Up).forward(ctx, ln2, up);
    be.swiglu_forward(h, gate, up, h.numel());
    lin(Target::Down).forward(ctx, h, proj);
    be.add(x_next, x_mid, proj);
  }
  be.rmsnorm_forward(rows_of(lnf_), rstdf_, rows_of(x_final_), final_norm_, n, C,
                     config_.norm_eps);
}

double Model::loss(std::int64_t n_targets, bool for_backward,
                   std::vector<std::int32_t>* predictions) {
  if (n_targets <= 0) throw DataError("batch has no scored targets");
  const std::int64_t n = rows();
  const Tensor losses = losses_.view(0, Shape{n});
  const Tensor ids = predictions ? scratch_.predictions.view(0, Shape{n}) : Tensor{};
  const Tensor dlnf = for_backward ? rows_of(scratch_.dln) : Tensor{};
  const Tensor dW = for_backward ? lm_head_grad_ : Tensor{};
  linear_cross_entropy(*backend_, losses, ids, dlnf, dW, rows_of(lnf_), lm_head_, targets_,
                       logits_, n, config_.hidden, config_.vocab,
                       1.0 / static_cast<double>(n_targets));
  if (predictions) {
    predictions->resize(static_cast<std::size_t>(n));
    backend_->download(predictions->data(), ids, predictions->size() * sizeof(std::int32_t));
  }
  return backend_->sum(losses) / static_cast<double>(n_targets);
}

Tensor Model::logits() {
  const std::int64_t V = config_.vocab;
  if (!requested_logits_.materialized()) {
    requested_logits_.add(&full_logits_, kModelLevel, "logits (requested)",
                          Shape{max_batch_ * max_seq_, V});
    requested_logits_.materialize(*backend_, *ledger_);
  }
  const Tensor out = rows_of(full_logits_);
  backend_->gemm(false, true, rows(), V, config_.hidden, 1.0, lnf_, config_.hidden, lm_head_,
                 config_.hidden, 0.0, out, V);
  return out;
}

void Model::backward(std::uint64_t step_seed) {
  Backend& be = *backend_;
  const std::int64_t n = rows(), C = config_.hidden;
  const int H = config_.heads, KVH = config_.kv_heads, hd = config_.head_dim();
  const ForwardContext ctx = context(true, step_seed);
  const Tensor dres = rows_of(scratch_.dres), dln = rows_of(scratch_.dln);
  const Tensor dq = rows_of(scratch_.dq), dk = rows_of(scratch_.dk), dv = rows_of(scratch_.dv),
               datt = rows_of(scratch_.datt), dgate = rows_of(scratch_.dgate),
               dup = rows_of(scratch_.dup), dh = rows_of(scratch_.dh);

  // loss(..., true) left the classifier's input gradient in dln.
  be.fill(dres, 0.0);
  be.rmsnorm_backward(dres, final_norm_grad_, dln, rows_of(x_final_), final_norm_, rstdf_, n, C);

  for (int l = config_.layers - 1; l >= 0; --l) {
    const LayerActs& a = acts_[l];
    LayerWeights& lw = layers_[l];
    auto lin = [&](Target t) -> Linear& { return *lw.linears[static_cast<int>(t)]; };

    // MLP: dres is the gradient of the down projection's output.
    lin(Target::Down).backward(ctx, rows_of(a.h), dres, dh, 0.0);
    be.swiglu_backward(dgate, dup, dh, a.gate, a.up, dh.numel());
    lin(Target::Gate).backward(ctx, rows_of(a.ln2), dgate, dln, 0.0);
    lin(Target::Up).backward(ctx, rows_of(a.ln2), dup, dln, 1.0);
    be.rmsnorm_backward(dres, lw.mlp_norm_grad, dln, rows_of(a.x_mid), lw.mlp_norm, a.rstd2, n, C);

    // Attention: dres is now the gradient of the o projection's output.
    lin(Target::O).backward(ctx, rows_of(a.att), dres, datt, 0.0);
    be.attention_backward(dq, dk, dv, datt, a.q, a.k, a.v, a.att, a.lse, attention_shape(),
                          scratch_.attention);
    be.rope_backward(dq, rope_table_, n, T_, H, hd);
    be.rope_backward(dk, rope_table_, n, T_, KVH, hd);
    // Below the first layer's norm only the embeddings are left: when they
    // and that norm are frozen, q, k and v's input gradient has no reader.
    const bool input_grad_read = l > 0 || embed_grad_.defined() || lw.attn_norm_grad.defined();
    const Tensor dln_qkv = input_grad_read ? dln : Tensor{};
    lin(Target::Q).backward(ctx, rows_of(a.ln1), dq, dln_qkv, 0.0);
    lin(Target::K).backward(ctx, rows_of(a.ln1), dk, dln_qkv, 1.0);
    lin(Target::V).backward(ctx, rows_of(a.ln1), dv, dln_qkv, 1.0);
    if (input_grad_read)
      be.rmsnorm_backward(dres, lw.attn_norm_grad, dln, rows_of(a.x_in), lw.attn_norm, a.rstd1, n, C);
  }
  if (embed_grad_.defined()) be.embedding_backward(embed_grad_, tokens_, dres, n, C);
}

}  // namespace lwb
