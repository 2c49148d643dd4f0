#include "core/adapters/adapter_state.h"

#include "core/common/errors.h"
#include "core/model/weights_init.h"

namespace lwb {

std::int64_t HostTensor::numel() const {
  std::int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

std::string peft_key(const std::string& module_hf_name, const std::string& suffix) {
  return "base_model.model." + module_hf_name + "." + suffix;
}

namespace {
template <class F>
void for_each_adapter_tensor(const Model& model, F&& f) {
  for (int l = 0; l < model.config().layers; ++l)
    for (Target t : kAllTargets) {
      const Linear& lin = model.linear(l, t);
      for (const auto& [suffix, tensor] : lin.adapter_tensors()) f(peft_key(lin.hf_name(), suffix), tensor);
    }
}
}  // namespace

AdapterState extract_adapter(const Model& model, const AdapterConfig& config,
                             const std::string& base_model, const std::string& base_fingerprint) {
  AdapterState s;
  s.config = config;
  s.base_model = base_model;
  s.base_fingerprint = base_fingerprint;
  s.model = model.config();
  for_each_adapter_tensor(model, [&](const std::string& key, const Tensor& t) {
    HostTensor h;
    h.shape.assign(t.shape.dims.begin(), t.shape.dims.begin() + t.shape.ndim);
    const std::vector<double> v = download_values(model.backend(), t);
    h.values.assign(v.begin(), v.end());
    s.tensors.emplace(key, std::move(h));
  });
  return s;
}

void load_adapter(Model& model, const AdapterState& state, const std::string& source) {
  std::size_t used = 0;
  for_each_adapter_tensor(model, [&](const std::string& key, const Tensor& t) {
    const auto it = state.tensors.find(key);
    if (it == state.tensors.end()) throw FormatError(source, "adapter tensor \"" + key + "\" is missing");
    const std::vector<std::int64_t> shape(t.shape.dims.begin(), t.shape.dims.begin() + t.shape.ndim);
    if (it->second.shape != shape)
      throw FormatError(source, "adapter tensor \"" + key + "\" has " + std::to_string(it->second.numel()) +
                                    " elements in a different shape than the model's " + t.shape.str());
    upload_floats(model.backend(), t, it->second.values);
    ++used;
  });
  if (used != state.tensors.size())
    throw FormatError(source, std::to_string(state.tensors.size() - used) +
                                  " adapter tensor(s) do not belong to any adapted module of this model");
}

}  // namespace lwb
