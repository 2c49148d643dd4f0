// libFuzzer target for a Hugging Face folder's config.json: the input is the
// file's text, parsed as read_hf_config parses it (parse_hf_config, which ends
// in ModelConfig::validate). Parsing throws an lwb::Error or gives a valid
// config, from which the model then sizes itself: its parameter count (in
// int64, where UBSan catches an overflow), each layer's linear shapes and the
// rotary frequencies, all positive and finite. Anything else (a crash, a
// sanitizer report, a std:: or nlohmann exception) is a bug.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/common/errors.h"
#include "core/io/hf_checkpoint.h"
#include "core/model/config.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  lwb::ModelConfig c;
  try {
    c = lwb::io::parse_hf_config(text, "config.json", "model");
  } catch (const lwb::Error&) {
    return 0;
  }
  c.validate();  // what Model's constructor runs again; it must hold
  if (c.param_count() <= 0) __builtin_trap();
  for (lwb::Target t : lwb::kAllTargets) {
    const lwb::LinearShape s = lwb::linear_shape(c, t);
    if (s.in <= 0 || s.out <= 0) __builtin_trap();
  }
  for (int j = 0; j < c.head_dim() / 2; ++j) {
    const double f = lwb::rope_inv_freq(c, j);
    if (!std::isfinite(f) || f < 0) __builtin_trap();
  }
  return 0;
}
