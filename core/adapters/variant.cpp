#include "core/adapters/variant.h"

#include "core/adapters/adalora_allocator.h"
#include "core/adapters/dora_monitor.h"
#include "core/adapters/relora.h"

namespace lwb {

std::unique_ptr<VariantController> make_variant_controller(const AdapterConfig& adapter,
                                                           const ScheduleConfig& schedule, double max_lr,
                                                           std::int64_t total_steps, std::uint64_t seed) {
  switch (adapter.method) {
    case Method::AdaLora: return std::make_unique<AdaLoraController>(adapter, total_steps);
    case Method::Dora: return std::make_unique<DoraMonitor>(total_steps);
    case Method::ReLora: return std::make_unique<ReLoraController>(adapter, schedule, max_lr, total_steps, seed);
    default: return nullptr;
  }
}

}  // namespace lwb
