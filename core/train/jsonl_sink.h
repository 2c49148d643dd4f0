#pragma once
// Writes one JSON line per step (and per evaluation) to a metrics file, flushed
// at least once a second so an interrupted run keeps nearly all of its curve.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>

#include "core/train/events.h"

namespace lwb {

class JsonlMetricsSink : public TrainerSink {
 public:
  explicit JsonlMetricsSink(const std::filesystem::path& file);
  ~JsonlMetricsSink() override;
  void on_step(const StepEvent& e) override;
  void on_finish(const RunResult& r) override;

  static std::string step_json(const StepEvent& e);

 private:
  std::FILE* file_;
  std::chrono::steady_clock::time_point last_flush_;
};

std::string run_result_json(const RunResult& r);
std::string ledger_snapshot_json(const LedgerSnapshot& s);

}  // namespace lwb
