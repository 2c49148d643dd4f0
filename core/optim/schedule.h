#pragma once
// Learning-rate schedules as functions of the 0-based step.
#include <cstdint>
#include <string>

namespace lwb {

enum class ScheduleKind : std::uint8_t { Constant, Cosine };
const char* schedule_name(ScheduleKind k);
ScheduleKind parse_schedule(const std::string& s);  // ConfigError("schedule.kind", ...)

struct ScheduleConfig {
  ScheduleKind kind = ScheduleKind::Cosine;
  std::int64_t warmup_steps = 0;
  double min_lr_ratio = 0.1;  // cosine decays to min_lr_ratio * max_lr
};

// Linear warm-up from 0 over warmup_steps (step 0 gets max_lr / warmup), then
// constant or a half cosine down to min_lr_ratio * max_lr at total_steps.
double learning_rate(const ScheduleConfig& c, double max_lr, std::int64_t step,
                     std::int64_t total_steps);

}  // namespace lwb
