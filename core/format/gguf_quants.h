#pragma once
// ggml's tensor types as GGUF files store them (ggml-common.h): rows are cut
// into blocks of block_size elements, each packed into type_size bytes.
// Dequantisation follows ggml-quants.c's dequantize_row_* operation for
// operation in float, so its results are bit-identical to ggml's and to the
// gguf Python package's `dequantize`.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace lwb::format {

// The codes GGUF files use; the gaps are types ggml has removed.
enum class GgmlType : std::uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
  Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15,
  IQ2_XXS = 16, IQ2_XS = 17, IQ3_XXS = 18, IQ1_S = 19, IQ4_NL = 20, IQ3_S = 21, IQ2_S = 22, IQ4_XS = 23,
  I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28, IQ1_M = 29, BF16 = 30,
  TQ1_0 = 34, TQ2_0 = 35, MXFP4 = 39, NVFP4 = 40, Q1_0 = 41,
};

struct GgmlTypeInfo {
  GgmlType type;
  const char* name;  // as ggml and gguf-py spell it: "Q4_K", "BF16"
  std::uint32_t block_size;
  std::uint32_t type_size;  // bytes per block
};

// nullptr for a code that is not a ggml type.
const GgmlTypeInfo* ggml_type_info(std::uint32_t code);
const GgmlTypeInfo& ggml_type_info(GgmlType type);
const char* ggml_type_name(GgmlType type);

// F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K.
bool can_dequantize(GgmlType type);
// Their names, "F32, F16, ...", for messages.
std::string dequantizable_type_names();

// Converts whole blocks: `bytes` must hold exactly out.size() / block_size
// blocks of `type` (std::invalid_argument otherwise, and for a type
// can_dequantize refuses: callers name the file and tensor first).
void dequantize(GgmlType type, std::span<const std::byte> bytes, std::span<float> out);

// For export: F32, F16 and Q8_0, rounding exactly as ggml's
// quantize_row_q8_0_ref and the gguf Python package do, so the same floats
// give the same file. values.size() must be a multiple of the block size.
bool can_quantize(GgmlType type);
std::vector<std::uint8_t> quantize(GgmlType type, std::span<const float> values);

}  // namespace lwb::format
