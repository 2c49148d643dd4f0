#pragma once
// A decoder-only transformer in the LLaMA layout with HF parameter names, run
// through a Backend with explicit forward and backward passes (llm.c style:
// every activation the backward needs is a named buffer allocated once).
#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor/ledger.h"
#include "core/model/config.h"
#include "core/model/linear.h"
#include "core/tensor/arena.h"
#include "core/tensor/backend.h"

namespace lwb {

class Model {
 public:
  // Full: every base weight trains. Frozen: base weights are frozen and hold
  // no gradient or optimiser buffers; only adapter parameters train.
  enum class Mode { Full, Frozen };

  // frozen_linear_dtype: the dtype of the seven frozen projections of every
  // layer (q k v o gate up down); nullopt keeps the model dtype. BF16 (with an
  // F32 model, Mode::Frozen) halves the bulk of the base as PEFT users load it
  // (torch_dtype=bfloat16) while adapters, activations and gradients stay fp32.
  // Embeddings, lm_head and the norms stay in the model dtype: the embedding
  // gather and the norm kernels are fp32-only, they are a few percent of a
  // 7B model, the logits' precision sets the loss, and a tied lm_head is the
  // embedding itself. Weights given in fp32 (checkpoints, init) are rounded
  // to nearest even on upload (weights_init.h).
  Model(ModelConfig config, Mode mode, DType dtype = DType::F32,
        std::optional<DType> frozen_linear_dtype = std::nullopt);
  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const ModelConfig& config() const { return config_; }
  Mode mode() const { return mode_; }
  DType dtype() const { return dtype_; }
  DType frozen_linear_dtype() const { return frozen_linear_dtype_; }

  Linear& linear(int layer, Target t) { return *layers_[layer].linears[static_cast<int>(t)]; }
  const Linear& linear(int layer, Target t) const {
    return *layers_[layer].linears[static_cast<int>(t)];
  }
  // Swaps in an adapted module for (layer, target); only before materialize().
  void replace_linear(std::unique_ptr<Linear> module);

  // Rows per chunk of the fused classifier and loss (linear_cross_entropy.h);
  // 0 (the default) picks linear_cross_entropy_chunk_rows. Only before
  // declare(); a chunk of max_batch * max_seq rows is the unfused classifier.
  void set_classifier_chunk_rows(std::int64_t rows);
  std::int64_t classifier_chunk_rows() const { return chunk_rows_; }

  // Allocates all buffers for batches of up to max_batch rows of max_seq tokens.
  void materialize(Backend& backend, MemoryLedger& ledger, std::int64_t max_batch,
                   std::int64_t max_seq);
  // Declares every buffer of such a run (the modules' too) without
  // allocating anything; materialize() does this first. attention_bytes is
  // the backend's attention workspace. The arenas' slots are then the run's
  // size table (llm.c's one table per group): the planner counts them.
  void declare(std::int64_t max_batch, std::int64_t max_seq, std::size_t attention_bytes);
  // frozen weights (model dtype, then the frozen projections), trainable
  // parameters and their gradients, activations, workspace.
  std::vector<const TensorArena*> arenas() const;
  bool materialized() const { return backend_ != nullptr; }
  Backend& backend() const { return *backend_; }
  std::int64_t max_batch() const { return max_batch_; }
  std::int64_t max_seq() const { return max_seq_; }

  // Base weights under their HF names (lm_head omitted when tied).
  std::vector<std::pair<std::string, Tensor>> named_base_weights() const;
  // Normal(0, 0.02) for matrices, residual projections scaled by 1/sqrt(2L)
  // (GPT-2), ones for norms. Deterministic in the seed, identical on every backend.
  void init_base_weights(std::uint64_t seed);
  void init_adapters(std::uint64_t seed);

  ParameterSet& trainable() { return trainable_; }
  const ParameterSet& trainable() const { return trainable_; }
  std::int64_t trainable_count() const { return trainable_.count(); }

  // ---- one pass -------------------------------------------------------------
  // Copies a host batch (inputs and targets, [B*T] each) to the device.
  void set_batch(const std::int32_t* inputs, const std::int32_t* targets, std::int64_t B,
                 std::int64_t T);
  // Runs the layers and the final norm; the classifier runs in loss().
  void forward(bool training, std::uint64_t step_seed);
  // Mean cross-entropy over the scored targets of the last forward, through
  // the classifier chunk by chunk (no [B*T, V] logits). With for_backward it
  // also leaves the gradient of the final norm's output for backward() and
  // accumulates lm_head's gradient (the embedding's when tied) in full
  // fine-tuning. With predictions it fills them with the greedy next-token
  // id of every row, [B*T], from the same pass.
  double loss(std::int64_t n_targets, bool for_backward,
              std::vector<std::int32_t>* predictions = nullptr);
  void backward(std::uint64_t step_seed);
  std::int64_t rows() const { return B_ * T_; }
  // The full logits of the last forward, [B*T, V], for callers that compare
  // them with a reference. Training never asks for them: their buffer is
  // allocated on the first call (ledger module "logits (requested)").
  Tensor logits();

 private:
  struct LayerWeights {
    Tensor attn_norm, attn_norm_grad;
    Tensor mlp_norm, mlp_norm_grad;
    std::array<std::unique_ptr<Linear>, kTargetCount> linears;
  };
  struct LayerActs {
    Tensor x_in;             // residual stream entering the layer [N, C]
    Tensor ln1, rstd1;       // [N, C], [N]
    Tensor q, k, v;          // after rotary: [N, H*hd], [N, KVH*hd] x2
    Tensor att, lse;         // [N, H*hd], [B*H*T]
    Tensor x_mid;            // residual after attention [N, C]
    Tensor ln2, rstd2;       // [N, C], [N]
    Tensor gate, up, h;      // [N, I] x3
  };
  struct Scratch {           // backward buffers, reused by every layer
    Tensor dres, dln;        // [N, C]
    Tensor dq, dk, dv, datt; // like q, k, v, att
    Tensor dgate, dup, dh;   // [N, I]
    Tensor proj;             // forward: output of o_proj/down_proj before the residual add
    Tensor attention;        // backend's attention workspace
    Tensor modules;          // shared by adapters
    Tensor predictions;      // I32 [N]
  };

  Tensor rows_of(const Tensor& t) const { return t.rows(0, rows()); }
  AttentionShape attention_shape() const;
  ForwardContext context(bool training, std::uint64_t step_seed) const;

  ModelConfig config_;
  Mode mode_;
  DType dtype_;
  DType frozen_linear_dtype_;
  Backend* backend_ = nullptr;
  MemoryLedger* ledger_ = nullptr;
  std::optional<MemoryLedger::Id> mixed_gemm_entry_;  // the backend's bf16 gemm scratch
  std::int64_t max_batch_ = 0, max_seq_ = 0;
  bool declared_ = false;
  std::int64_t B_ = 0, T_ = 0;

  Tensor embed_, embed_grad_;
  Tensor final_norm_, final_norm_grad_;
  Tensor lm_head_, lm_head_grad_;  // alias embed_ when tied
  SharedTensors shared_;           // what the adapted modules share (in frozen_)
  std::vector<LayerWeights> layers_;

  std::vector<LayerActs> acts_;
  Tensor tokens_, targets_;        // I32 [N]
  Tensor x_final_, lnf_, rstdf_;   // [N, C], [N, C], [N]
  Tensor logits_, losses_;         // one classifier chunk [chunk, V], [N]
  Tensor full_logits_;             // [N, V], only once logits() is called
  std::int64_t chunk_rows_ = 0;
  Tensor rope_table_;              // [max_seq, hd]
  Scratch scratch_;

  TensorArena frozen_;         // embeddings, norms, lm_head (model dtype)
  TensorArena frozen_linear_;  // frozen projections (frozen_linear_dtype_)
  ParameterSet trainable_;
  TensorArena activations_;
  TensorArena workspace_;
  TensorArena requested_logits_;  // full_logits_, outside the run's plan
};

}  // namespace lwb
