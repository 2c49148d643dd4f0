#include "core/format/gguf_quants.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

#include "core/common/half.h"

// Every product below is exact in float: an f16 scale (11 significant bits)
// times integer scales and levels of at most 12 bits together. So whether
// the compiler fuses a multiply-add or not, each result is ggml's and
// numpy's to the last bit.

namespace lwb::format {

static_assert(std::endian::native == std::endian::little, "GGUF blocks are read as little-endian");

namespace {

constexpr std::uint32_t QK_K = 256;  // elements in a K-quant super-block

// Sizes from ggml-common.h (and gguf-py's GGML_QUANT_SIZES).
constexpr std::array<GgmlTypeInfo, 34> kTypes{{
    {GgmlType::F32, "F32", 1, 4},
    {GgmlType::F16, "F16", 1, 2},
    {GgmlType::Q4_0, "Q4_0", 32, 2 + 16},
    {GgmlType::Q4_1, "Q4_1", 32, 2 + 2 + 16},
    {GgmlType::Q5_0, "Q5_0", 32, 2 + 4 + 16},
    {GgmlType::Q5_1, "Q5_1", 32, 2 + 2 + 4 + 16},
    {GgmlType::Q8_0, "Q8_0", 32, 2 + 32},
    {GgmlType::Q8_1, "Q8_1", 32, 4 + 4 + 32},
    {GgmlType::Q2_K, "Q2_K", QK_K, 2 + 2 + QK_K / 16 + QK_K / 4},
    {GgmlType::Q3_K, "Q3_K", QK_K, 2 + QK_K / 4 + QK_K / 8 + 12},
    {GgmlType::Q4_K, "Q4_K", QK_K, 2 + 2 + QK_K / 2 + 12},
    {GgmlType::Q5_K, "Q5_K", QK_K, 2 + 2 + QK_K / 2 + QK_K / 8 + 12},
    {GgmlType::Q6_K, "Q6_K", QK_K, 2 + QK_K / 2 + QK_K / 4 + QK_K / 16},
    {GgmlType::Q8_K, "Q8_K", QK_K, 4 + QK_K + QK_K / 8},
    {GgmlType::IQ2_XXS, "IQ2_XXS", QK_K, 2 + QK_K / 4},
    {GgmlType::IQ2_XS, "IQ2_XS", QK_K, 2 + QK_K / 4 + QK_K / 32},
    {GgmlType::IQ3_XXS, "IQ3_XXS", QK_K, 2 + QK_K / 4 + QK_K / 8},
    {GgmlType::IQ1_S, "IQ1_S", QK_K, 2 + QK_K / 8 + QK_K / 16},
    {GgmlType::IQ4_NL, "IQ4_NL", 32, 2 + 16},
    {GgmlType::IQ3_S, "IQ3_S", QK_K, 2 + QK_K / 4 + QK_K / 8 + QK_K / 32 + 4},
    {GgmlType::IQ2_S, "IQ2_S", QK_K, 2 + QK_K / 4 + QK_K / 16},
    {GgmlType::IQ4_XS, "IQ4_XS", QK_K, 2 + 2 + QK_K / 2 + QK_K / 64},
    {GgmlType::I8, "I8", 1, 1},
    {GgmlType::I16, "I16", 1, 2},
    {GgmlType::I32, "I32", 1, 4},
    {GgmlType::I64, "I64", 1, 8},
    {GgmlType::F64, "F64", 1, 8},
    {GgmlType::IQ1_M, "IQ1_M", QK_K, QK_K / 8 + QK_K / 16 + QK_K / 32},
    {GgmlType::BF16, "BF16", 1, 2},
    {GgmlType::TQ1_0, "TQ1_0", QK_K, 2 + 4 * 13},
    {GgmlType::TQ2_0, "TQ2_0", QK_K, 2 + 64},
    {GgmlType::MXFP4, "MXFP4", 32, 1 + 16},
    {GgmlType::NVFP4, "NVFP4", 64, 4 + 32},
    {GgmlType::Q1_0, "Q1_0", 128, 2 + 16},
}};

using u8 = std::uint8_t;

const u8* as_u8(const std::byte* p) { return reinterpret_cast<const u8*>(p); }

float load_f16(const std::byte* p) {
  std::uint16_t h;
  std::memcpy(&h, p, 2);
  return f16_to_f32(h);
}

// Block layouts (ggml-common.h) in the comment of each function; q is the
// integer level of an element, d and m the block's scale and offset.

// {f16 d; u8 qs[16]}: the low nibbles are elements 0..15, the high 16..31.
void block_q4_0(const std::byte* b, float* y) {
  const float d = load_f16(b);
  const u8* qs = as_u8(b + 2);
  for (int j = 0; j < 16; ++j) {
    y[j] = static_cast<float>((qs[j] & 0x0F) - 8) * d;
    y[j + 16] = static_cast<float>((qs[j] >> 4) - 8) * d;
  }
}

// {f16 d; f16 m; u8 qs[16]}
void block_q4_1(const std::byte* b, float* y) {
  const float d = load_f16(b), m = load_f16(b + 2);
  const u8* qs = as_u8(b + 4);
  for (int j = 0; j < 16; ++j) {
    y[j] = static_cast<float>(qs[j] & 0x0F) * d + m;
    y[j + 16] = static_cast<float>(qs[j] >> 4) * d + m;
  }
}

// {f16 d; u8 qh[4]; u8 qs[16]}: bit j of the little-endian qh is the fifth
// bit of element j.
void block_q5_0(const std::byte* b, float* y) {
  const float d = load_f16(b);
  std::uint32_t qh;
  std::memcpy(&qh, b + 2, 4);
  const u8* qs = as_u8(b + 6);
  for (int j = 0; j < 16; ++j) {
    const int hi0 = static_cast<int>((qh >> j) << 4 & 0x10);
    const int hi1 = static_cast<int>((qh >> (j + 12)) & 0x10);
    y[j] = static_cast<float>(((qs[j] & 0x0F) | hi0) - 16) * d;
    y[j + 16] = static_cast<float>(((qs[j] >> 4) | hi1) - 16) * d;
  }
}

// {f16 d; f16 m; u8 qh[4]; u8 qs[16]}
void block_q5_1(const std::byte* b, float* y) {
  const float d = load_f16(b), m = load_f16(b + 2);
  std::uint32_t qh;
  std::memcpy(&qh, b + 4, 4);
  const u8* qs = as_u8(b + 8);
  for (int j = 0; j < 16; ++j) {
    const int hi0 = static_cast<int>((qh >> j) << 4 & 0x10);
    const int hi1 = static_cast<int>((qh >> (j + 12)) & 0x10);
    y[j] = static_cast<float>((qs[j] & 0x0F) | hi0) * d + m;
    y[j + 16] = static_cast<float>((qs[j] >> 4) | hi1) * d + m;
  }
}

// {f16 d; i8 qs[32]}
void block_q8_0(const std::byte* b, float* y) {
  const float d = load_f16(b);
  for (int j = 0; j < 32; ++j) y[j] = static_cast<float>(static_cast<std::int8_t>(as_u8(b + 2)[j])) * d;
}

// The eight 6-bit scales and mins of a Q4_K/Q5_K super-block, packed in 12
// bytes (ggml's get_scale_min_k4): sub-blocks 0..3 in the low six bits of
// bytes 0..3 (scales) and 4..7 (mins); sub-blocks 4..7 in the nibbles of
// bytes 8..11 plus the top two bits of bytes 0..7.
void scale_min_k4(int j, const u8* q, int& scale, int& min) {
  if (j < 4) {
    scale = q[j] & 63;
    min = q[j + 4] & 63;
  } else {
    scale = (q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4);
    min = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

// {f16 d; f16 dmin; u8 scales[12]; u8 qs[128]}: eight sub-blocks of 32, each
// y = d·scale·q − dmin·min; sub-blocks 2i and 2i+1 share qs[32i..32i+32)
// (low and high nibbles).
void block_q4_k(const std::byte* b, float* y) {
  const float d = load_f16(b), dmin = load_f16(b + 2);
  const u8* scales = as_u8(b + 4);
  const u8* q = as_u8(b + 16);
  for (int is = 0; is < 8; is += 2, q += 32) {
    int sc = 0, m = 0;
    scale_min_k4(is, scales, sc, m);
    const float d1 = d * static_cast<float>(sc), m1 = dmin * static_cast<float>(m);
    scale_min_k4(is + 1, scales, sc, m);
    const float d2 = d * static_cast<float>(sc), m2 = dmin * static_cast<float>(m);
    for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>(q[l] & 0x0F) - m1;
    for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>(q[l] >> 4) - m2;
  }
}

// {f16 d; f16 dmin; u8 scales[12]; u8 qh[32]; u8 qs[128]}: Q4_K plus a fifth
// bit per element, bit i of qh[l] for sub-block i.
void block_q5_k(const std::byte* b, float* y) {
  const float d = load_f16(b), dmin = load_f16(b + 2);
  const u8* scales = as_u8(b + 4);
  const u8* qh = as_u8(b + 16);
  const u8* ql = as_u8(b + 48);
  unsigned u1 = 1, u2 = 2;
  for (int is = 0; is < 8; is += 2, ql += 32, u1 <<= 2, u2 <<= 2) {
    int sc = 0, m = 0;
    scale_min_k4(is, scales, sc, m);
    const float d1 = d * static_cast<float>(sc), m1 = dmin * static_cast<float>(m);
    scale_min_k4(is + 1, scales, sc, m);
    const float d2 = d * static_cast<float>(sc), m2 = dmin * static_cast<float>(m);
    for (int l = 0; l < 32; ++l)
      *y++ = d1 * static_cast<float>((ql[l] & 0x0F) + (qh[l] & u1 ? 16 : 0)) - m1;
    for (int l = 0; l < 32; ++l)
      *y++ = d2 * static_cast<float>((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
  }
}

// {u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d}: 6-bit levels minus 32 in
// sixteen sub-blocks of 16, y = d·scale·q; each half of 128 elements takes
// its low four bits from ql and the top two from one qh byte per l.
void block_q6_k(const std::byte* b, float* y) {
  const u8* ql = as_u8(b);
  const u8* qh = as_u8(b + 128);
  const auto* sc = reinterpret_cast<const std::int8_t*>(b + 192);
  const float d = load_f16(b + 208);
  for (int half = 0; half < 2; ++half, y += 128, ql += 64, qh += 32, sc += 8) {
    for (int l = 0; l < 32; ++l) {
      const int is = l / 16;
      const int q1 = ((ql[l] & 0x0F) | ((qh[l] >> 0 & 3) << 4)) - 32;
      const int q2 = ((ql[l + 32] & 0x0F) | ((qh[l] >> 2 & 3) << 4)) - 32;
      const int q3 = ((ql[l] >> 4) | ((qh[l] >> 4 & 3) << 4)) - 32;
      const int q4 = ((ql[l + 32] >> 4) | ((qh[l] >> 6 & 3) << 4)) - 32;
      y[l] = d * static_cast<float>(sc[is]) * static_cast<float>(q1);
      y[l + 32] = d * static_cast<float>(sc[is + 2]) * static_cast<float>(q2);
      y[l + 64] = d * static_cast<float>(sc[is + 4]) * static_cast<float>(q3);
      y[l + 96] = d * static_cast<float>(sc[is + 6]) * static_cast<float>(q4);
    }
  }
}

void element_f32(const std::byte* b, float* y) { std::memcpy(y, b, 4); }
void element_f16(const std::byte* b, float* y) { *y = load_f16(b); }
void element_bf16(const std::byte* b, float* y) {
  std::uint16_t h;
  std::memcpy(&h, b, 2);
  *y = bf16_to_f32(h);
}

using BlockFn = void (*)(const std::byte*, float*);

BlockFn block_fn(GgmlType type) {
  switch (type) {
    case GgmlType::F32: return element_f32;
    case GgmlType::F16: return element_f16;
    case GgmlType::BF16: return element_bf16;
    case GgmlType::Q4_0: return block_q4_0;
    case GgmlType::Q4_1: return block_q4_1;
    case GgmlType::Q5_0: return block_q5_0;
    case GgmlType::Q5_1: return block_q5_1;
    case GgmlType::Q8_0: return block_q8_0;
    case GgmlType::Q4_K: return block_q4_k;
    case GgmlType::Q5_K: return block_q5_k;
    case GgmlType::Q6_K: return block_q6_k;
    default: return nullptr;
  }
}

}  // namespace

const GgmlTypeInfo* ggml_type_info(std::uint32_t code) {
  for (const GgmlTypeInfo& t : kTypes)
    if (static_cast<std::uint32_t>(t.type) == code) return &t;
  return nullptr;
}

const GgmlTypeInfo& ggml_type_info(GgmlType type) {
  if (const GgmlTypeInfo* t = ggml_type_info(static_cast<std::uint32_t>(type))) return *t;
  throw std::invalid_argument("invalid GgmlType value " + std::to_string(static_cast<std::uint32_t>(type)));
}

const char* ggml_type_name(GgmlType type) { return ggml_type_info(type).name; }

bool can_dequantize(GgmlType type) { return block_fn(type) != nullptr; }

std::string dequantizable_type_names() {
  std::string names;
  for (const GgmlTypeInfo& t : kTypes)
    if (can_dequantize(t.type)) names += (names.empty() ? "" : ", ") + std::string(t.name);
  return names;
}

void dequantize(GgmlType type, std::span<const std::byte> bytes, std::span<float> out) {
  const BlockFn fn = block_fn(type);
  if (!fn) throw std::invalid_argument(std::string("dequantize: type ") + ggml_type_name(type) + " is not supported");
  const GgmlTypeInfo& t = ggml_type_info(type);
  const std::size_t blocks = out.size() / t.block_size;
  if (out.size() % t.block_size != 0 || bytes.size() != blocks * t.type_size)
    throw std::invalid_argument("dequantize: " + std::to_string(bytes.size()) + " bytes of " + t.name +
                                " do not hold " + std::to_string(out.size()) + " elements");
  for (std::size_t i = 0; i < blocks; ++i) fn(bytes.data() + i * t.type_size, out.data() + i * t.block_size);
}

bool can_quantize(GgmlType type) {
  return type == GgmlType::F32 || type == GgmlType::F16 || type == GgmlType::Q8_0;
}

std::vector<std::uint8_t> quantize(GgmlType type, std::span<const float> values) {
  if (!can_quantize(type))
    throw std::invalid_argument(std::string("quantize: type ") + ggml_type_name(type) + " is not supported");
  const GgmlTypeInfo& t = ggml_type_info(type);
  if (values.size() % t.block_size != 0)
    throw std::invalid_argument("quantize: " + std::to_string(values.size()) + " values are not whole blocks of " +
                                std::to_string(t.block_size));
  std::vector<std::uint8_t> out(values.size() / t.block_size * t.type_size);
  if (type == GgmlType::F32) {
    if (!values.empty()) std::memcpy(out.data(), values.data(), out.size());
  } else if (type == GgmlType::F16) {
    for (std::size_t i = 0; i < values.size(); ++i) {
      const std::uint16_t h = f32_to_f16(values[i]);
      std::memcpy(out.data() + 2 * i, &h, 2);
    }
  } else {
    // ggml's quantize_row_q8_0_ref: d = max|x| / 127 stored as f16, levels
    // round(x / d) computed as x · (1/d) in float, halves away from zero.
    for (std::size_t blk = 0; blk < values.size() / 32; ++blk) {
      const float* x = values.data() + 32 * blk;
      std::uint8_t* q = out.data() + 34 * blk;
      float amax = 0.0f;
      for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
      const float d = amax / 127.0f;
      const float id = d != 0.0f ? 1.0f / d : 0.0f;
      const std::uint16_t h = f32_to_f16(d);
      std::memcpy(q, &h, 2);
      for (int j = 0; j < 32; ++j)
        q[2 + j] = static_cast<std::uint8_t>(static_cast<int>(std::round(x[j] * id)));
    }
  }
  return out;
}

}  // namespace lwb::format
