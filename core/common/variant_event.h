#pragma once
#include <string>

namespace lwb {

// A variant's own event: an AdaLoRA mask update, a ReLoRA reset, ...
struct VariantEvent {
  std::string kind;          // "adalora.ranks", "relora.reset", ...
  std::string payload_json;  // details, a JSON object
};

}  // namespace lwb
