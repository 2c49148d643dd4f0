#include "core/infer/adapter_set.h"

#include <algorithm>
#include <atomic>
#include <map>

#include "core/adapters/attach.h"
#include "core/common/errors.h"
#include "core/infer/decoder.h"
#include "core/model/weights_init.h"

namespace lwb::infer {

namespace {
std::atomic<std::uint64_t> g_next_id{1};
}  // namespace

AdapterSet::AdapterSet(const Decoder& decoder, const AdapterState& state, std::string name,
                       const std::string& base_fingerprint)
    : decoder_(decoder),
      name_(std::move(name)),
      config_(state.config),
      id_(g_next_id++),
      frozen_(MemCategory::FrozenWeights, decoder.model().dtype()),
      activations_(MemCategory::Activations, decoder.model().dtype()),
      workspace_(MemCategory::Workspace, decoder.model().dtype()),
      parameters_(decoder.model().dtype()) {
  const Model& base = decoder.model();
  const ModelConfig& mc = base.config();
  const std::string label = "adapter \"" + name_ + "\"";
  check_adapter_fits(state, mc, label);
  if (!base_fingerprint.empty() && !state.base_fingerprint.empty() && state.base_fingerprint != base_fingerprint)
    throw FormatError(label, "it was trained on another base model (fingerprint " + state.base_fingerprint +
                                 ", this base is " + base_fingerprint + ")");

  ModelBuffers buffers{frozen_, parameters_, activations_, workspace_, decoder.max_rows(), shared_};
  std::int64_t scratch = 1;
  modules_.resize(static_cast<std::size_t>(mc.layers) * kTargetCount);
  for (int l = 0; l < mc.layers; ++l)
    for (Target t : config_.targets) {
      std::unique_ptr<AdapterLinear> m = make_adapter_linear(l, t, mc, config_);
      m->weight = base.linear(l, t).weight;
      m->declare(buffers);
      scratch = std::max(scratch, m->scratch_elems(decoder.max_rows()));
      modules_[static_cast<std::size_t>(l) * kTargetCount + static_cast<int>(t)] = std::move(m);
    }
  workspace_.add(&scratch_, kModelLevel, name_ + ".scratch", Shape{scratch});
  Backend& be = base.backend();
  MemoryLedger& ledger = decoder.ledger();
  frozen_.materialize(be, ledger);
  parameters_.materialize(be, ledger);
  parameters_.grads().release();  // nothing trains here
  activations_.materialize(be, ledger);
  workspace_.materialize(be, ledger);

  std::int64_t fix_scratch = 0;
  for (const auto& m : modules_) {
    if (!m) continue;
    for (const AdapterTensorRef& a : m->adapter_tensors())
      upload_floats(be, a.tensor,
                    state.tensors.at(a.model_level ? model_level_key(a.suffix) : peft_key(m->hf_name(), a.suffix)).values);
    fix_scratch = std::max(fix_scratch, m->inference_scratch_elems());
  }
  // Only for the fixing below (DoRA's W + sBA), then freed.
  const Tensor fix = fix_scratch > 0 ? make_tensor(be, Shape{fix_scratch}, base.dtype()) : Tensor();
  for (const auto& m : modules_)
    if (m) m->fix_for_inference(be, fix);
}

void AdapterSet::follow(const Model& live) {
  if (&live != &decoder_.model()) throw std::logic_error("AdapterSet::follow: not the decoder's model");
  // The live tensors by their PEFT keys (a model-level one, such as VeRA's
  // shared projections, is reported by one module, not necessarily ours).
  std::map<std::string, Tensor> from;
  const ModelConfig& mc = live.config();
  for (int l = 0; l < mc.layers; ++l)
    for (Target t : config_.targets) {
      const Linear& m = live.linear(l, t);
      for (const AdapterTensorRef& a : m.adapter_tensors())
        from.emplace(a.model_level ? model_level_key(a.suffix) : peft_key(m.hf_name(), a.suffix), a.tensor);
    }
  live_.clear();
  std::int64_t fix = 0;
  for (const auto& m : modules_) {
    if (!m) continue;
    for (const AdapterTensorRef& a : m->adapter_tensors()) {
      const std::string key = a.model_level ? model_level_key(a.suffix) : peft_key(m->hf_name(), a.suffix);
      const auto it = from.find(key);
      if (it == from.end() || it->second.shape != a.tensor.shape)
        throw std::logic_error("AdapterSet::follow: " + key + " is not in the live model with the same shape");
      live_.emplace_back(a.tensor, it->second);
    }
    fix = std::max(fix, m->inference_scratch_elems());
  }
  if (fix > 0) fix_scratch_ = make_tensor(live.backend(), Shape{fix}, live.dtype());
}

void AdapterSet::refresh() {
  Backend& be = decoder_.model().backend();
  for (const auto& [to, from] : live_) be.copy(to, from);
  for (const auto& m : modules_)
    if (m) m->fix_for_inference(be, fix_scratch_);
}

Linear* AdapterSet::module(int layer, Target t) const {
  return modules_[static_cast<std::size_t>(layer) * kTargetCount + static_cast<int>(t)].get();
}

std::unique_ptr<Model> merged_model(const Model& base, const AdapterState& adapter, MemoryLedger& ledger) {
  check_adapter_fits(adapter, base.config(), "adapter of " + adapter.base_model);
  auto merged = std::make_unique<Model>(base.config(), Model::Mode::Frozen, base.dtype());
  merged->materialize(base.backend(), ledger, 1, 1);
  merge_adapter_into_base(base, adapter, *merged);
  return merged;
}

}  // namespace lwb::infer
