#pragma once
// A linear module y = x W^T of the transformer. The base class is the plain
// (frozen or fully trained) linear; adapters (core/adapters) derive from it
// and add their own path, parameters and activations. The model only calls
// this interface, so it knows nothing of the adapters' bookkeeping.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/model/config.h"
#include "core/tensor/arena.h"
#include "core/tensor/backend.h"

namespace lwb {

// Frozen tensors that the adapted modules of one model share (VeRA's random
// projections): the first module asking for a name declares it once, at
// model level, and every later one gets the same tensor, so it is allocated,
// counted by the ledger and the planner, and saved once. Owned beside the
// arenas (by the model, by an inference adapter set): the modules keep
// pointers to its tensors.
class SharedTensors {
 public:
  // The tensor `name` of `shape`, declared into `frozen` by the first call;
  // `first` says whether this call declared it. std::logic_error when an
  // earlier call asked for another shape.
  const Tensor& frozen(TensorArena& frozen, const std::string& name, Shape shape, bool& first);

 private:
  std::map<std::string, std::unique_ptr<Tensor>> tensors_;  // stable addresses for the arena's owners
};

// The arenas a module declares its buffers into, before materialisation.
struct ModelBuffers {
  TensorArena& frozen;
  ParameterSet& trainable;
  TensorArena& activations;
  TensorArena& workspace;
  std::int64_t max_rows;  // B * T the run was sized for
  SharedTensors& shared;
};

// A tensor of an adapted module under its PEFT key suffix. A model-level one
// belongs to the whole adapter ("base_model." + suffix, e.g. VeRA's shared
// projections) and is reported by one module only.
struct AdapterTensorRef {
  std::string suffix;
  Tensor tensor;
  bool model_level = false;
};

class Linear;

// The products x W^T of the base weights computed otherwise than by the
// backend's gemm: the decoder's small-batch kernel over the same weights or
// their GGUF blocks (core/infer/decode_weights.h). forward() returns false
// to leave the product to the gemm (too many rows, a module over other
// weights). Adapters keep their own path on top: they reach the base
// product through Linear::forward.
class BaseProducts {
 public:
  virtual ~BaseProducts() = default;
  virtual bool forward(const Linear& module, std::int64_t rows, const Tensor& x, const Tensor& y) const = 0;
};

// Per-call facts the modules need.
struct ForwardContext {
  Backend& backend;
  std::int64_t rows;        // rows of x in this call (<= max_rows)
  bool training;            // dropout on, activations kept for backward
  std::uint64_t step_seed;  // distinct per optimiser step (dropout streams)
  const Tensor& scratch;    // shared scratch, at least scratch_elems() of every module
  const BaseProducts* base_products = nullptr;  // inference only; nullptr: the backend's gemm
};

class Linear {
 public:
  Linear(int layer, Target target, LinearShape shape)
      : layer_(layer), target_(target), shape_(shape) {}
  virtual ~Linear() = default;
  Linear(const Linear&) = delete;
  Linear& operator=(const Linear&) = delete;

  int layer() const { return layer_; }
  Target target() const { return target_; }
  int in() const { return shape_.in; }
  int out() const { return shape_.out; }
  // "model.layers.3.self_attn.q_proj"
  std::string hf_name() const;

  // The base weight [out, in]; the model declares it (frozen or trainable).
  Tensor weight;
  Tensor weight_grad;  // undefined when the base weight is frozen

  // Adapter parameters and activations; the plain linear has none.
  virtual void declare(ModelBuffers& buffers) {}
  // Elements of shared scratch the module's backward needs.
  virtual std::int64_t scratch_elems(std::int64_t max_rows) const { return 0; }
  // Sets adapter parameters to their initial values (after materialisation).
  virtual void initialize(Backend& backend, std::uint64_t seed) {}

  // The adapter's tensors under their PEFT suffixes ("lora_A.weight", ...),
  // for export, composition and the store. The plain linear has none.
  virtual std::vector<AdapterTensorRef> adapter_tensors() const { return {}; }

  // y[rows, out] = x[rows, in] W^T (+ adapter path).
  virtual void forward(const ForwardContext& ctx, const Tensor& x, const Tensor& y);
  // dx = dx_beta * dx + dL/dx; parameter gradients accumulate. dy is read-only.
  // An undefined dx asks for the parameter gradients alone: nothing upstream
  // needs dL/dx (the first layer's q, k and v when the embeddings and the
  // norm before them are frozen), so its products are skipped.
  virtual void backward(const ForwardContext& ctx, const Tensor& x, const Tensor& dy,
                        const Tensor& dx, double dx_beta);

 protected:
  // y = x W^T + beta y by the backend's gemm: beta = 1 for an adapter that
  // wrote its own term into y first.
  void base_product(const ForwardContext& ctx, const Tensor& x, const Tensor& y, double beta) const;
  std::uint64_t module_index() const {
    return static_cast<std::uint64_t>(layer_) * kTargetCount + static_cast<int>(target_);
  }

 private:
  int layer_;
  Target target_;
  LinearShape shape_;
};

}  // namespace lwb
