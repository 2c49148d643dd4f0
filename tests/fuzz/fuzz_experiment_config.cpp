// libFuzzer target for an experiment config file (what `train --config`, the
// window and the store read): the input is the file's text, parsed as
// ExperimentConfig::load parses it (from_json). Parsing throws an lwb::Error
// or gives a config that the check the program runs next (validate) accepts
// or refuses with a ConfigError, and that is saved and read back unchanged
// (to_json, from_json). Anything else (a crash, a sanitizer report, a std::
// or nlohmann exception) is a bug.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/common/errors.h"
#include "core/train/experiment_config.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  lwb::ExperimentConfig c;
  try {
    c = lwb::ExperimentConfig::from_json(text, "experiment.json");
  } catch (const lwb::Error&) {
    return 0;
  }
  try {
    c.validate();
  } catch (const lwb::ConfigError&) {
  }
  const std::string saved = c.to_json();
  if (lwb::ExperimentConfig::from_json(saved, "saved").to_json() != saved) __builtin_trap();
  return 0;
}
