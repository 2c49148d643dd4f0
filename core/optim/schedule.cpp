#include "core/optim/schedule.h"

#include <algorithm>
#include <cmath>

#include "core/common/errors.h"

namespace lwb {

const char* schedule_name(ScheduleKind k) {
  return k == ScheduleKind::Constant ? "constant" : "cosine";
}

ScheduleKind parse_schedule(const std::string& s) {
  if (s == "constant") return ScheduleKind::Constant;
  if (s == "cosine") return ScheduleKind::Cosine;
  throw ConfigError("schedule.kind", "unknown schedule \"" + s + "\"; expected constant or cosine");
}

double learning_rate(const ScheduleConfig& c, double max_lr, std::int64_t step,
                     std::int64_t total_steps) {
  if (step < c.warmup_steps) return max_lr * static_cast<double>(step + 1) / c.warmup_steps;
  if (c.kind == ScheduleKind::Constant) return max_lr;
  const double span = static_cast<double>(std::max<std::int64_t>(1, total_steps - c.warmup_steps));
  const double progress = std::clamp((step - c.warmup_steps) / span, 0.0, 1.0);
  const double min_lr = c.min_lr_ratio * max_lr;
  return min_lr + 0.5 * (max_lr - min_lr) * (1.0 + std::cos(M_PI * progress));
}

}  // namespace lwb
