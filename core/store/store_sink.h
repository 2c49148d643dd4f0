#pragma once
// Records a training run into the store. Steps are buffered and committed in
// one transaction once at least a second has passed since the last commit, so
// a killed process loses at most about a second of its curve and training
// pays for one small commit a second, not one per step.
#include <chrono>
#include <cstdint>
#include <vector>

#include "core/store/store.h"
#include "core/train/events.h"

namespace lwb {

class StoreSink : public TrainerSink {
 public:
  // Records into a run made with Store::queue_run.
  StoreSink(Store& store, std::int64_t run_id);
  // Creates the experiment and its run from what on_start reports.
  explicit StoreSink(Store& store);
  // Commits what is buffered. A run that started but never reported its end
  // (an exception went past the trainer) is marked failed, not left running.
  ~StoreSink() override;
  StoreSink(const StoreSink&) = delete;
  StoreSink& operator=(const StoreSink&) = delete;

  void on_start(const RunInfo& info) override;
  void on_step(const StepEvent& e) override;
  void on_finish(const RunResult& r) override;

  // 0 until on_start when the sink creates the run.
  std::int64_t run_id() const { return run_id_; }

 private:
  void flush();

  Store& store_;
  std::int64_t run_id_ = 0;
  bool started_ = false;
  bool finished_ = false;
  std::int64_t last_step_ = 0;
  std::vector<StepEvent> pending_;
  std::chrono::steady_clock::time_point last_commit_;
};

}  // namespace lwb
