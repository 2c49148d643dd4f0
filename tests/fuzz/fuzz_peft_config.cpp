// libFuzzer target for adapter_config.json (PEFT's adapter config): the input
// is the file's text, parsed as read_peft_folder and the store's blobs parse
// it, once without lwb.method metadata and once for each variant's name in
// it (ReLoRA is reached only so). Whatever the text, parsing either throws an
// lwb::Error or gives a config of a known variant with a rank and targets.
// Anything else (a crash, a sanitizer report, a std:: or nlohmann exception)
// is a bug.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/adapters/descriptor.h"
#include "core/common/errors.h"
#include "core/io/peft.h"

namespace {

void parse(const std::string& text, const std::string& lwb_method) {
  lwb::PeftAdapterFields p;
  try {
    p = lwb::io::parse_peft_config(text, "adapter_config.json", lwb_method);
  } catch (const lwb::Error&) {
    return;
  }
  if (!lwb::find_variant(p.config.method) || p.config.r < 1 || p.config.targets.empty()) __builtin_trap();
  for (const auto& [module, keep] : p.rank_pattern)
    if (keep.size() != static_cast<std::size_t>(p.config.r)) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  parse(text, "");
  for (const lwb::VariantDescriptor* v : lwb::variants()) parse(text, v->name);
  return 0;
}
