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

// ReLoRA's schedule (Guitaricet/relora, get_cosine_schedule_with_multiple_
// warmups): linear warm-up from 0 over first_warmup steps, one cosine decay to
// min_lr_ratio * max_lr over the whole run, except that after every reset
// (each multiple of restart_every) the rate drops to 0 and re-warms linearly
// over restart_warmup steps to where the cosine would be at the end of it.
double jagged_cosine_lr(double max_lr, std::int64_t step, std::int64_t total_steps,
                        std::int64_t first_warmup, std::int64_t restart_every,
                        std::int64_t restart_warmup, double min_lr_ratio);

}  // namespace lwb
