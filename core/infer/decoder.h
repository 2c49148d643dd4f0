#pragma once
// The forward pass for generation: the model's weights (borrowed from a
// materialised Model, never copied), one set of activation buffers reused by
// every layer, and a per-layer K/V cache for `sequences` sequences of up to
// `context` positions, all allocated once in the constructor. A call runs
// any mix of rows: the packed prompts of a prefill (several sequences of
// different lengths, no padding tokens), one new token per sequence in a
// decode step, or the new turn of a conversation whose earlier turns are in
// the cache. Each row names its slot and position; its K and V go into the
// cache there and it attends to positions 0..its own of its slot, so the
// cache is "right-padded" (each slot fills from position 0, the unused
// positions are at its end) and needs no mask tensor: positions are the true
// ones (RoPE and the causal order need no offsets, unlike left padding) and
// sequences start, grow and stop independently.
//
// The ops are the training model's (core/model/model.cpp's forward, plus
// scatter_rows and attention_cached) through the Backend, so the CUDA
// backend runs the same code. Adapters come per call as an AdapterSet; the
// base projections run as plain Linear modules over the model's weights.
// On the CPU, calls with few rows (decode steps) take the base products
// and the classifier from DecodeWeights' small-batch kernel, over the GGUF
// blocks of the source file when one is given (decode_weights.h); the CUDA
// decoder keeps the backend's dense gemm.
#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "core/model/linear.h"
#include "core/model/model.h"
#include "core/tensor/arena.h"
#include "core/tensor/ledger.h"

namespace lwb::infer {

class AdapterSet;
class DecodeWeights;

struct DecoderLimits {
  std::int64_t sequences = 1;  // held in the cache at once (the batch), each in its slot
  std::int64_t context = 0;    // positions per slot; 0: the model's max_seq
  std::int64_t max_rows = 0;   // rows per forward call; 0: min(sequences * context, 512)
};

// Rows of one forward call, host arrays of equal length: each row's token,
// the slot of its sequence (< limits.sequences) and its position there
// (< context). A row's earlier positions must be in the slot already or come
// before it in the same call.
struct DecoderRows {
  std::span<const std::int32_t> tokens, sequences, positions;
  // Indices into the rows whose logits are wanted (at most limits.sequences).
  std::span<const std::int32_t> logit_rows;
};

class Decoder {
 public:
  // `model` must be materialised and outlive the decoder; its base weights
  // are read in place (any adapters attached to `model` itself are ignored).
  // Allocates the buffers and the cache on the model's backend, recorded in
  // `ledger`. ConfigError naming the limit when one is out of range.
  // `small_batch`: the weights of decode steps, made by DecodeWeights::make
  // for this model (with the GGUF file it came from, to read its quantised
  // blocks), shared by the decoders of one model; nullptr: the decoder makes
  // its own over the fp32 weights. std::invalid_argument when they were made
  // for another model.
  Decoder(const Model& model, DecoderLimits limits, MemoryLedger& ledger,
          std::shared_ptr<const DecodeWeights> small_batch = nullptr);
  ~Decoder();
  Decoder(const Decoder&) = delete;
  Decoder& operator=(const Decoder&) = delete;

  const Model& model() const { return model_; }
  const ModelConfig& config() const { return model_.config(); }
  Backend& backend() const { return model_.backend(); }
  MemoryLedger& ledger() const { return ledger_; }
  std::int64_t sequences() const { return limits_.sequences; }
  std::int64_t context() const { return limits_.context; }
  std::int64_t max_rows() const { return limits_.max_rows; }
  // The small-batch weights (nullptr off the CPU or for a non-fp32 model).
  const DecodeWeights* decode_weights() const { return decode_weights_.get(); }

  // Runs the rows through the model (with `adapter`'s modules where it has
  // them; nullptr for the base) and returns the logits of the logit rows,
  // [logit_rows.size(), vocab] on the backend, valid until the next call.
  // std::invalid_argument naming the row for an out-of-range entry.
  Tensor forward(const DecoderRows& rows, const AdapterSet* adapter = nullptr);

 private:
  struct LayerWeights {
    Tensor attn_norm, mlp_norm;
    std::array<std::unique_ptr<Linear>, kTargetCount> linears;  // plain, over the model's weights
  };

  void check_rows(const DecoderRows& rows, const AdapterSet* adapter) const;
  Linear& linear(const AdapterSet* adapter, int layer, Target t) const;

  const Model& model_;
  DecoderLimits limits_;
  MemoryLedger& ledger_;
  std::vector<LayerWeights> layers_;
  Tensor embed_, final_norm_, lm_head_;
  std::optional<MemoryLedger::Id> mixed_gemm_entry_;  // the backend's bf16 gemm scratch
  std::shared_ptr<const DecodeWeights> decode_weights_;

  std::vector<Tensor> keys_, values_;  // [sequences * context, kv_heads * head_dim] per layer
  Tensor x_, ln_, rstd_, q_, k_, v_, att_, proj_, gate_, up_, h_;  // [max_rows, ...]
  Tensor rope_table_, rope_rows_;  // [context, head_dim], [max_rows, head_dim]
  Tensor last_, last_ln_, last_rstd_, logits_;  // rows whose logits are wanted
  Tensor attention_workspace_, module_scratch_;
  Tensor indices_;  // I32: tokens, cache rows, sequences, positions [max_rows each], logit rows [sequences]
  std::vector<std::int32_t> staging_;  // host side of indices_
  // Declared after the tensors they point into, so they are released first.
  TensorArena cache_;    // K and V of every layer
  TensorArena buffers_;  // activations of one call, reused by every layer
};

}  // namespace lwb::infer
