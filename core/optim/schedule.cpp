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

double jagged_cosine_lr(double max_lr, std::int64_t step, std::int64_t total_steps,
                        std::int64_t first_warmup, std::int64_t restart_every,
                        std::int64_t restart_warmup, double min_lr_ratio) {
  if (step < first_warmup)
    return max_lr * static_cast<double>(step) / static_cast<double>(std::max<std::int64_t>(1, first_warmup));
  const double span = static_cast<double>(std::max<std::int64_t>(1, total_steps - first_warmup));
  auto cosine = [&](double progress) {
    return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + std::cos(M_PI * progress));
  };
  const std::int64_t restart_step = step % restart_every, restart_number = step / restart_every;
  if (restart_step < restart_warmup && step >= restart_every) {
    const double end_of_warmup =
        static_cast<double>(restart_number * restart_every + restart_warmup - first_warmup) / span;
    return max_lr * static_cast<double>(restart_step) / static_cast<double>(std::max<std::int64_t>(1, restart_warmup)) *
           cosine(end_of_warmup);
  }
  return max_lr * cosine(static_cast<double>(step - first_warmup) / span);
}

}  // namespace lwb
