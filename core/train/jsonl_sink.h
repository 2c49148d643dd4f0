#pragma once
// Writes one JSON line per step (and per evaluation) to a metrics file. Each
// line goes out in one write() as soon as its step ends, so a killed process
// leaves every finished step and never half a line. A failed write (a full
// disk) does not stop training: the line is counted as lost and `warning`
// says so once.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

#include "core/train/events.h"

namespace lwb {

class JsonlMetricsSink : public TrainerSink {
 public:
  // FormatError when the file cannot be created.
  explicit JsonlMetricsSink(const std::filesystem::path& file,
                            std::function<void(const std::string&)> warning = {});
  ~JsonlMetricsSink() override;
  JsonlMetricsSink(const JsonlMetricsSink&) = delete;
  JsonlMetricsSink& operator=(const JsonlMetricsSink&) = delete;
  void on_step(const StepEvent& e) override;

  // Lines that could not be written, and why the first one failed.
  std::int64_t lost_lines() const { return lost_lines_; }
  const std::string& write_error() const { return write_error_; }

  static std::string step_json(const StepEvent& e);

 private:
  std::filesystem::path path_;
  int fd_ = -1;
  std::function<void(const std::string&)> warning_;
  std::int64_t lost_lines_ = 0;
  std::string write_error_;
};

std::string run_result_json(const RunResult& r);
std::string ledger_snapshot_json(const LedgerSnapshot& s);

}  // namespace lwb
