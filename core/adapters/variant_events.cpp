#include "core/adapters/variant_events.h"

namespace lwb {

std::optional<nlohmann::json> event_payload(const VariantEvent& e, std::string_view kind) {
  if (e.kind != kind) return std::nullopt;
  nlohmann::json j = nlohmann::json::parse(e.payload_json, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  return j;
}

}  // namespace lwb
