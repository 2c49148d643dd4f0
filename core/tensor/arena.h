#pragma once
// TensorArena: llm.c's "one size table per group and one allocation". Tensors
// are declared (owner pointer, layer, module, shape), then materialize() makes a
// single zero-filled allocation, points every owner at its offset, and registers
// each tensor in the MemoryLedger. Mirrors (gradients, AdamW moments) have the
// same slots at the same offsets, so the optimiser walks flat arrays in lockstep.
#include <string>
#include <vector>

#include "core/tensor/ledger.h"
#include "core/tensor/tensor.h"

namespace lwb {

class TensorArena {
 public:
  // Every slot starts at a multiple of this many bytes (coalesced GPU access,
  // whole cache lines on the CPU). Padding is zero and stays zero.
  static constexpr std::size_t kAlignment = 256;

  struct Slot {
    Tensor* owner = nullptr;  // may be null for mirrors nobody addresses directly
    int layer = kModelLevel;
    std::string module;
    Shape shape;
    std::size_t offset = 0;      // bytes
    std::size_t span_bytes = 0;  // tensor bytes + padding up to the next slot
  };

  TensorArena(MemCategory category, DType dtype) : category_(category), dtype_(dtype) {}
  ~TensorArena();
  TensorArena(const TensorArena&) = delete;
  TensorArena& operator=(const TensorArena&) = delete;

  void add(Tensor* owner, int layer, std::string module, Shape shape);
  // Same slots as `other` (which must use the same dtype size), module names suffixed.
  void mirror(const TensorArena& other, const std::string& module_suffix);
  void materialize(Backend& backend, MemoryLedger& ledger);
  // Frees the allocation (owners keep views that must no longer be used) and
  // removes the ledger entries.
  void release();

  MemCategory category() const { return category_; }
  DType dtype() const { return dtype_; }
  const std::vector<Slot>& entries() const { return slots_; }
  Tensor slot_tensor(std::size_t i) const;
  // The whole allocation as one 1-D tensor (padding included).
  const Tensor& flat() const { return flat_; }
  std::size_t bytes() const { return bytes_; }
  std::int64_t numel_without_padding() const;
  bool materialized() const { return flat_.defined(); }

 private:
  MemCategory category_;
  DType dtype_;
  std::vector<Slot> slots_;
  std::size_t bytes_ = 0;
  Tensor flat_;
  MemoryLedger* ledger_ = nullptr;
  std::vector<MemoryLedger::Id> ledger_ids_;
};

// Trainable parameters with their gradients. Decayed tensors are laid out
// first, so AdamW is two flat calls (decay / no decay) however many tensors
// there are.
class ParameterSet {
 public:
  ParameterSet(DType dtype = DType::F32)
      : params_(MemCategory::TrainableWeights, dtype), grads_(MemCategory::Gradients, dtype) {}

  void add(Tensor* param, Tensor* grad, int layer, std::string module, Shape shape,
           bool weight_decay);
  // Lays the tensors added so far into the two arenas (decayed first);
  // materialize() does it too. After it the arenas' slots are the size table.
  void layout();
  void materialize(Backend& backend, MemoryLedger& ledger);
  void release();

  TensorArena& params() { return params_; }
  TensorArena& grads() { return grads_; }
  const TensorArena& params() const { return params_; }
  const TensorArena& grads() const { return grads_; }
  // Elements (padding included) in the weight-decayed prefix of the flat arrays.
  std::int64_t decay_prefix_numel() const { return decay_prefix_numel_; }
  std::int64_t count() const { return params_.numel_without_padding(); }
  // The slice of a mirror arena (gradients, AdamW moments, importance EMAs)
  // that belongs to `param`, a tensor of this set.
  Tensor mirror_of(const Tensor& param, const TensorArena& mirror) const;
  bool empty() const { return pending_.empty() && params_.entries().empty(); }

 private:
  struct Pending {
    Tensor* param;
    Tensor* grad;
    int layer;
    std::string module;
    Shape shape;
    bool decay;
  };
  std::vector<Pending> pending_;
  TensorArena params_;
  TensorArena grads_;
  std::int64_t decay_prefix_numel_ = 0;
};

}  // namespace lwb
