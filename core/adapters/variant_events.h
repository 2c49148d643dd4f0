#pragma once
// Reading a variant event's payload back (core/common/variant_event.h): the
// typed events of the variants (AdaLoRA's ranks, DoRA's magnitudes, ReLoRA's
// resets) decode through this, whether they come from a live run or from
// the store.
#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>

#include "core/common/variant_event.h"

namespace lwb {

// The payload as a JSON object when the event has this kind and its payload
// is an object; nullopt otherwise (another kind, or a damaged payload).
std::optional<nlohmann::json> event_payload(const VariantEvent& e, std::string_view kind);

}  // namespace lwb
