#pragma once
// An adapter ready to run beside a Decoder's base weights, unmerged: the
// adapter modules of the training model (each variant's, made by
// make_adapter_linear from its descriptor) with their own parameters and
// activations, their base weight being a view of the model's. Several sets
// can be loaded over one base and chosen per generate call (base, adapter
// A, adapter B, a LoRAHub composition) without touching or reloading the
// base; each costs its parameters and a few rows of activations.
//
// Every adapter state the library holds loads this way: LoRA and rsLoRA,
// DoRA (its magnitude scaling computed once here, see
// AdapterLinear::fix_for_inference), AdaLoRA with its masked ranks (pruned
// triplets hold E = 0), a ReLoRA result (exported as one LoRA of its whole
// update) and a composition's result (compose::Composer gives a LoRA).
// For speed on one adapter, merged_model() below folds it into a copy of
// the base instead.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/adapters/adapter_state.h"
#include "core/adapters/adapter_linear.h"
#include "core/model/model.h"
#include "core/tensor/arena.h"
#include "core/tensor/ledger.h"

namespace lwb::infer {

class Decoder;

class AdapterSet {
 public:
  // Checks that `state` fits the decoder's model (check_adapter_fits: every
  // key and shape, naming `name`) and that it was trained on this base when
  // both fingerprints are known (`base_fingerprint` empty: not checked),
  // then uploads it. FormatError naming the adapter otherwise.
  AdapterSet(const Decoder& decoder, const AdapterState& state, std::string name,
             const std::string& base_fingerprint = "");
  AdapterSet(const AdapterSet&) = delete;
  AdapterSet& operator=(const AdapterSet&) = delete;

  const std::string& name() const { return name_; }
  const AdapterConfig& config() const { return config_; }
  const Decoder& decoder() const { return decoder_; }
  // Distinct for every set made in this process: a cache filled with one
  // set is never reused for another.
  std::uint64_t id() const { return id_; }

  // The adapted module of (layer, target), or nullptr where the adapter has none.
  Linear* module(int layer, Target t) const;
  // Scratch for the modules' forward (ForwardContext::scratch).
  const Tensor& scratch() const { return scratch_; }

  // Makes the set follow `live`, the decoder's own model while it trains
  // with this adapter attached (the set made from its extract_adapter()):
  // refresh() then copies the live adapter tensors in on the backend and
  // redoes the inference fixing, allocating nothing, so that generation
  // between training steps answers with the weights as they are at that
  // step. std::logic_error when a live module or tensor does not match.
  void follow(const Model& live);
  void refresh();

 private:
  const Decoder& decoder_;
  std::string name_;
  AdapterConfig config_;
  std::uint64_t id_;
  SharedTensors shared_;  // the modules' shared tensors (VeRA's projections), once
  std::vector<std::unique_ptr<AdapterLinear>> modules_;  // [layer * kTargetCount + target], null if none
  Tensor scratch_;
  // follow(): (set tensor, live tensor) pairs and the fixing's scratch.
  std::vector<std::pair<Tensor, Tensor>> live_;
  Tensor fix_scratch_;
  // Declared after the modules and tensors they point into: released first.
  TensorArena frozen_, activations_, workspace_;
  ParameterSet parameters_;
};

// A copy of `base` (same backend, materialised for batch 1 x 1: the decoder
// brings its own buffers) with `adapter` merged into its weights by the
// modules' own merge (merge_adapter_into_base): no adapter path per token,
// at the cost of a second copy of the base. FormatError when the adapter
// does not fit the base.
std::unique_ptr<Model> merged_model(const Model& base, const AdapterState& adapter, MemoryLedger& ledger);

}  // namespace lwb::infer
