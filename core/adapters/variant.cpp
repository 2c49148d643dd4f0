#include "core/adapters/variant.h"

#include "core/adapters/descriptor.h"

namespace lwb {

std::unique_ptr<VariantController> make_variant_controller(const AdapterConfig& adapter,
                                                           const ScheduleConfig& schedule, double max_lr,
                                                           std::int64_t total_steps, std::uint64_t seed) {
  const VariantDescriptor& v = adapter.variant();
  if (!v.controller) return nullptr;
  return v.controller(ControllerContext{adapter, schedule, max_lr, total_steps, seed});
}

}  // namespace lwb
