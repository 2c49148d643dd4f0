#include "core/model/weights_init.h"

#include <cmath>
#include <stdexcept>

#include "core/common/half.h"
#include "core/tensor/rng.h"

namespace lwb {

void upload_values(Backend& backend, const Tensor& t, const std::vector<double>& values) {
  if (static_cast<std::int64_t>(values.size()) != t.numel())
    throw std::invalid_argument("upload_values: " + std::to_string(values.size()) +
                                " values for a tensor of " + std::to_string(t.numel()));
  switch (t.dtype) {
    case DType::F64:
      backend.upload(t, values.data(), values.size() * sizeof(double));
      return;
    case DType::F32: {
      std::vector<float> f(values.begin(), values.end());
      backend.upload(t, f.data(), f.size() * sizeof(float));
      return;
    }
    case DType::BF16: {  // rounded through fp32, as torch's .to(bfloat16) of an fp32 weight
      std::vector<std::uint16_t> h(values.size());
      for (std::size_t i = 0; i < h.size(); ++i) h[i] = f32_to_bf16(static_cast<float>(values[i]));
      backend.upload(t, h.data(), h.size() * sizeof(std::uint16_t));
      return;
    }
    default:
      throw std::invalid_argument(std::string("upload_values: unsupported dtype ") +
                                  dtype_name(t.dtype));
  }
}

void upload_floats(Backend& backend, const Tensor& t, const std::vector<float>& values) {
  if (t.dtype == DType::F32 && static_cast<std::int64_t>(values.size()) == t.numel()) {
    backend.upload(t, values.data(), values.size() * sizeof(float));
    return;
  }
  upload_values(backend, t, std::vector<double>(values.begin(), values.end()));
}

std::vector<double> download_values(Backend& backend, const Tensor& t) {
  std::vector<double> out(static_cast<std::size_t>(t.numel()));
  switch (t.dtype) {
    case DType::F64:
      backend.download(out.data(), t, out.size() * sizeof(double));
      return out;
    case DType::F32: {
      std::vector<float> f(out.size());
      backend.download(f.data(), t, f.size() * sizeof(float));
      out.assign(f.begin(), f.end());
      return out;
    }
    case DType::BF16: {
      std::vector<std::uint16_t> h(out.size());
      backend.download(h.data(), t, h.size() * sizeof(std::uint16_t));
      for (std::size_t i = 0; i < h.size(); ++i) out[i] = bf16_to_f32(h[i]);
      return out;
    }
    default:
      throw std::invalid_argument(std::string("download_values: unsupported dtype ") +
                                  dtype_name(t.dtype));
  }
}

std::vector<double> normal_values(std::int64_t n, double stddev, std::uint64_t seed) {
  // Box-Muller on counter-based uniforms; u1 is shifted off zero for the log.
  std::vector<double> out(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; i += 2) {
    const double u1 = (counter_uniform(seed, static_cast<std::uint64_t>(i)) * 16777216.0 + 0.5) /
                      16777216.0;
    const double u2 = counter_uniform(seed, static_cast<std::uint64_t>(i + 1));
    const double r = std::sqrt(-2.0 * std::log(u1)) * stddev;
    out[static_cast<std::size_t>(i)] = r * std::cos(2 * M_PI * u2);
    if (i + 1 < n) out[static_cast<std::size_t>(i + 1)] = r * std::sin(2 * M_PI * u2);
  }
  return out;
}

std::vector<double> uniform_values(std::int64_t n, double bound, std::uint64_t seed) {
  std::vector<double> out(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i)
    out[static_cast<std::size_t>(i)] =
        (2.0 * counter_uniform(seed, static_cast<std::uint64_t>(i)) - 1.0) * bound;
  return out;
}

std::vector<double> rope_table(const ModelConfig& c, std::int64_t max_seq) {
  const int hd = c.head_dim(), half = hd / 2;
  std::vector<double> table(static_cast<std::size_t>(max_seq * hd));
  for (std::int64_t pos = 0; pos < max_seq; ++pos)
    for (int j = 0; j < half; ++j) {
      const double angle = static_cast<double>(pos) * rope_inv_freq(c, j);
      table[static_cast<std::size_t>(pos * hd + j)] = std::cos(angle);
      table[static_cast<std::size_t>(pos * hd + half + j)] = std::sin(angle);
    }
  return table;
}

}  // namespace lwb
