#include "core/infer/decode_weights.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <span>
#include <stdexcept>
#include <string>

#include "core/format/gguf.h"
#include "core/format/gguf_quants.h"
#include "core/io/gguf_model.h"

namespace lwb::infer {

namespace {

// The GGUF types whose blocks the kernel dequantises itself.
std::optional<cpu::WeightLayout> kernel_layout(format::GgmlType type) {
  switch (type) {
    case format::GgmlType::Q4_0: return cpu::WeightLayout::Q4_0;
    case format::GgmlType::Q4_1: return cpu::WeightLayout::Q4_1;
    case format::GgmlType::Q8_0: return cpu::WeightLayout::Q8_0;
    default: return std::nullopt;
  }
}

bool fp32_on_cpu(const Tensor& t) { return t.dtype == DType::F32 && t.device().kind == DeviceKind::Cpu; }

}  // namespace

std::shared_ptr<const DecodeWeights> DecodeWeights::make(const Model& model, const format::GgufFile* source,
                                                   MemoryLedger& ledger) {
  if (model.dtype() != DType::F32 || model.backend().device().kind != DeviceKind::Cpu) return nullptr;
  for (int l = 0; l < model.config().layers; ++l)
    for (Target t : kAllTargets)
      if (!fp32_on_cpu(model.linear(l, t).weight)) return nullptr;
  return std::shared_ptr<const DecodeWeights>(new DecodeWeights(model, source, ledger));
}

DecodeWeights::DecodeWeights(const Model& model, const format::GgufFile* source, MemoryLedger& ledger)
    : model_(model), ledger_(ledger) {
  const ModelConfig& c = model.config();
  std::map<std::string, Tensor> named;
  for (auto& [name, t] : model.named_base_weights()) named.emplace(name, t);

  // Every matrix, its HF name and, for Q and K, its heads (their rows are in
  // llama.cpp's order in the file).
  struct Item {
    std::string hf;
    Tensor weight;
    Matrix* out;
    int qk_heads;
    const format::GgufTensorInfo* info = nullptr;
    std::size_t offset = 0;
  };
  std::vector<Item> items;
  linears_.resize(static_cast<std::size_t>(c.layers) * kTargetCount);
  for (int l = 0; l < c.layers; ++l)
    for (Target t : kAllTargets) {
      const Linear& lin = model.linear(l, t);
      const int heads = t == Target::Q ? c.heads : t == Target::K ? c.kv_heads : 0;
      items.push_back({lin.hf_name() + ".weight", lin.weight, &linears_[l * kTargetCount + static_cast<int>(t)], heads});
    }
  const std::string head = c.tie_embeddings ? "model.embed_tokens.weight" : "lm_head.weight";
  items.push_back({head, named.at(head), &lm_head_, 0});

  std::size_t total = 0;
  for (Item& it : items) {
    const std::int64_t rows = it.weight.shape[0], cols = it.weight.shape[1];
    it.out->weights = {cpu::WeightLayout::F32, it.weight.data<float>(), rows, cols, 4 * static_cast<std::size_t>(cols)};
    it.out->fp32 = it.weight.raw();
    if (!source) continue;
    const std::string name = io::gguf_tensor_name(it.hf);
    const format::GgufTensorInfo* info = source->find_tensor(name);
    if (!info || !kernel_layout(info->type)) continue;
    if (info->shape() != std::vector<std::int64_t>{rows, cols})
      throw std::invalid_argument("DecodeWeights: tensor \"" + name + "\" of " + source->source() +
                                  " is not shaped as the model's " + it.hf);
    it.info = info;
    it.offset = total;
    total += static_cast<std::size_t>(rows) * cpu::weight_row_bytes(*kernel_layout(info->type), cols);
  }
  blocks_.resize(total);

  std::vector<float> row_values(static_cast<std::size_t>(omp_get_max_threads()) *
                                static_cast<std::size_t>(std::max(c.hidden, c.intermediate)));
  for (Item& it : items) {
    if (!it.info) continue;
    const cpu::WeightLayout layout = *kernel_layout(it.info->type);
    const std::int64_t rows = it.weight.shape[0], cols = it.weight.shape[1];
    const std::size_t row_bytes = cpu::weight_row_bytes(layout, cols);
    const std::span<const std::byte> file = source->bytes(*it.info);
    std::byte* dst = blocks_.data() + it.offset;
    const float* fp32 = it.weight.data<float>();
    // Copy each row into HF order and check that it dequantises to the
    // model's weight to the bit: the blocks never stand for other weights.
    std::int64_t differing = -1;
#pragma omp parallel for schedule(static)
    for (std::int64_t r = 0; r < rows; ++r) {
      const std::int64_t from = it.qk_heads ? io::gguf_qk_row(r, rows / it.qk_heads) : r;
      std::byte* row = dst + r * row_bytes;
      std::memcpy(row, file.data() + from * row_bytes, row_bytes);
      const std::span<float> values(row_values.data() + omp_get_thread_num() * cols, static_cast<std::size_t>(cols));
      format::dequantize(it.info->type, std::span<const std::byte>(row, row_bytes), values);
      if (std::memcmp(values.data(), fp32 + r * cols, cols * sizeof(float)) != 0) {
#pragma omp critical
        differing = differing < 0 ? r : std::min(differing, r);
      }
    }
    if (differing >= 0)
      throw std::invalid_argument("DecodeWeights: row " + std::to_string(differing) + " of tensor \"" +
                                  it.info->name + "\" of " + source->source() + " differs from the model's " + it.hf +
                                  ": the model was changed after it was loaded from that file (merged, trained), "
                                  "so the file's blocks cannot stand for its weights");
    it.out->weights = {layout, dst, rows, cols, row_bytes};
    ++quantized_matrices_;
  }
  if (total > 0)
    ledger_entry_ = ledger.add(kModelLevel, "decode_weight_blocks", MemCategory::FrozenWeights, total);
}

DecodeWeights::~DecodeWeights() {
  if (ledger_entry_) ledger_.remove(*ledger_entry_);
}

bool DecodeWeights::forward(const Linear& module, std::int64_t rows, const Tensor& x, const Tensor& y) const {
  if (rows > cpu::kSmallGemmMaxRows) return false;
  const Matrix& m = linears_[module.layer() * kTargetCount + static_cast<int>(module.target())];
  // A module over other weights than the model's (a merged copy) is not ours.
  if (module.weight.raw() != m.fp32 || module.weight.dtype != DType::F32) return false;
  cpu::small_gemm(x.data<float>(), module.in(), rows, m.weights, y.data<float>(), module.out());
  return true;
}

bool DecodeWeights::lm_head(std::int64_t rows, const Tensor& x, const Tensor& logits) const {
  if (rows > cpu::kSmallGemmMaxRows) return false;
  cpu::small_gemm(x.data<float>(), lm_head_.weights.cols, rows, lm_head_.weights, logits.data<float>(),
                  lm_head_.weights.rows);
  return true;
}

}  // namespace lwb::infer
