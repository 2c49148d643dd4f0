#include "core/adapters/dora_monitor.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "core/adapters/variant_events.h"
#include "core/model/weights_init.h"

namespace lwb {

void DoraMonitor::attach(Model& model, AdamW&, MemoryLedger&) {
  backend_ = &model.backend();
  for (int l = 0; l < model.config().layers; ++l)
    for (Target t : kAllTargets)
      if (auto* m = dynamic_cast<DoraLinear*>(&model.linear(l, t))) {
        modules_.push_back(m);
        start_.push_back(download_values(*backend_, m->magnitude));
      }
}

std::map<std::string, double> DoraMonitor::relative_change() const {
  std::map<std::string, double> out;
  for (std::size_t i = 0; i < modules_.size(); ++i) {
    const std::vector<double> now = download_values(*backend_, modules_[i]->magnitude);
    double d2 = 0, r2 = 0;
    for (std::size_t j = 0; j < now.size(); ++j) {
      d2 += (now[j] - start_[i][j]) * (now[j] - start_[i][j]);
      r2 += start_[i][j] * start_[i][j];
    }
    out[modules_[i]->hf_name()] = r2 > 0 ? std::sqrt(d2 / r2) : 0.0;
  }
  return out;
}

VariantEvent DoraMagnitudeEvent::encode() const {
  nlohmann::json j = {{"step", step}};
  for (const auto& [name, change] : magnitude_change) j["magnitude_change"][name] = change;
  return {kKind, j.dump()};
}

std::optional<DoraMagnitudeEvent> DoraMagnitudeEvent::decode(const VariantEvent& e) {
  const std::optional<nlohmann::json> j = event_payload(e, kKind);
  if (!j) return std::nullopt;
  DoraMagnitudeEvent d;
  d.step = j->value("step", std::int64_t{0});
  if (const auto it = j->find("magnitude_change"); it != j->end() && it->is_object())
    for (const auto& [name, change] : it->items()) d.magnitude_change[name] = change.is_number() ? change.get<double>() : 0.0;
  return d;
}

VariantEvent DoraMonitor::event(std::int64_t step) const { return DoraMagnitudeEvent{step, relative_change()}.encode(); }

void DoraMonitor::after_step(std::int64_t step, double, std::vector<VariantEvent>& events) {
  last_step_ = step;
  if ((step + 1) % kEvery == 0 || step + 1 == total_steps_) events.push_back(event(step));
}

std::vector<VariantEvent> DoraMonitor::summary() { return {event(last_step_)}; }

}  // namespace lwb
