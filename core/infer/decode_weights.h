#pragma once
// The decoder's base weights as cpu::small_gemm reads them, for its calls
// with few rows (a decode step: one row per sequence). BLAS packs the whole
// weight matrix on every call, which at one row costs more than the
// product; and a decode step is bound by the bytes of weights it reads
// (SmolLM2-135M: 540 MB a token in fp32), so when the base came from a GGUF
// file whose matrices are Q4_0, Q4_1 or Q8_0, those blocks are used as the
// file has them (about 85 MB for SmolLM2-135M Q4_1), dequantised in
// registers to exactly the fp32 copy's values.
//
// Where the bytes live: read from the file once, when the caller that
// decodes makes these weights with the file as their source, into one
// buffer owned here (counted in the ledger as frozen weights), Q and K rows
// put in HF order; the decoders of one model share them (shared_ptr).
// Nothing is kept at load: training and prefill use the model's fp32
// weights, which stay.
// Matrices of other types (F16, K-quants, ...) and models not from a file
// use the small-batch kernel over the fp32 weights in place.
//
// The blocks must stand for the model's weights exactly: the constructor
// compares every block's values with the fp32 weight (a merged, trained or
// otherwise changed model is refused), and a module whose weight is not
// the model's (a merged copy) is left to the gemm.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "core/cpu/small_gemm.h"
#include "core/model/linear.h"
#include "core/model/model.h"
#include "core/tensor/ledger.h"

namespace lwb::format {
class GgufFile;
}

namespace lwb::infer {

class DecodeWeights final : public BaseProducts {
 public:
  // nullptr when the kernel does not apply: a model off the CPU (the CUDA
  // decoder keeps its dense gemm) or not fp32 throughout (fp64 checks, bf16
  // frozen linears). `source`: the GGUF file the model's weights were
  // imported from (io::import_gguf_weights), or nullptr. std::invalid_argument
  // naming the tensor and file when a matrix of `source` does not hold the
  // model's weight.
  static std::shared_ptr<const DecodeWeights> make(const Model& model, const format::GgufFile* source,
                                             MemoryLedger& ledger);
  ~DecodeWeights() override;
  DecodeWeights(const DecodeWeights&) = delete;
  DecodeWeights& operator=(const DecodeWeights&) = delete;

  bool forward(const Linear& module, std::int64_t rows, const Tensor& x, const Tensor& y) const override;
  // logits[rows, vocab] = x[rows, hidden] lm_head^T; false (nothing done) for more rows than the kernel takes.
  bool lm_head(std::int64_t rows, const Tensor& x, const Tensor& logits) const;

  const Model& model() const { return model_; }

  // Bytes of GGUF blocks held (0 when every matrix is read in fp32).
  std::size_t quantized_bytes() const { return blocks_.size(); }
  // How many of the matrices (7 per layer and the classifier) read blocks.
  int quantized_matrices() const { return quantized_matrices_; }

 private:
  struct Matrix {
    cpu::SmallGemmWeights weights;
    const void* fp32 = nullptr;  // the model's weight the matrix stands for
  };
  DecodeWeights(const Model& model, const format::GgufFile* source, MemoryLedger& ledger);

  const Model& model_;
  std::vector<Matrix> linears_;  // [layer * kTargetCount + target]
  Matrix lm_head_;
  std::vector<std::byte> blocks_;  // every quantised matrix, one allocation
  int quantized_matrices_ = 0;
  MemoryLedger& ledger_;
  std::optional<MemoryLedger::Id> ledger_entry_;
};

}  // namespace lwb::infer
