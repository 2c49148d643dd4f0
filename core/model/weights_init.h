#pragma once
// Host-side helpers for putting values into device tensors: deterministic
// random initialisations (counter-based, so every backend gets the same
// numbers) and the rotary table.
#include <cstdint>
#include <vector>

#include "core/model/config.h"
#include "core/tensor/backend.h"

namespace lwb {

// Converts to the tensor's dtype (BF16: round to nearest even) and uploads;
// values.size() must equal numel.
void upload_values(Backend& backend, const Tensor& t, const std::vector<double>& values);
// The same for float32 host data (no conversion when the tensor is F32).
void upload_floats(Backend& backend, const Tensor& t, const std::vector<float>& values);
// Downloads any float tensor (F32, F64, BF16) as doubles.
std::vector<double> download_values(Backend& backend, const Tensor& t);

std::vector<double> normal_values(std::int64_t n, double stddev, std::uint64_t seed);
std::vector<double> uniform_values(std::int64_t n, double bound, std::uint64_t seed);

// [max_seq, head_dim]: cos(pos * f_j) then sin(pos * f_j), f_j = rope_inv_freq(c, j).
std::vector<double> rope_table(const ModelConfig& c, std::int64_t max_seq);

}  // namespace lwb
