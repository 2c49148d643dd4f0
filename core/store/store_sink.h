#pragma once
// Records a training run into the store without ever holding training up.
// Steps are queued; a writer thread with its own connection commits them at
// least every half second whether or not steps keep coming (a long
// evaluation), so a killed process loses at most about a second of its curve,
// and renews the run's lease while it is queued or running. A store that is
// locked or full is retried; meanwhile the steps wait in memory (at most
// kMaxPendingSteps, the oldest are dropped beyond that) and `warning` says
// so. At the end the run's result and its adapter go into the store in one
// transaction, retried for up to StoreSinkOptions::finish_patience.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "core/store/store.h"
#include "core/train/events.h"

namespace lwb {

struct StoreSinkOptions {
  // Store trouble and its end, one line each (from the writer thread too).
  std::function<void(const std::string&)> warning;
  // The adapter to keep with the run's end; not asked for failed runs.
  std::function<std::optional<KeptAdapter>(std::int64_t run_id, const RunResult&)> adapter;
  // How long the start and the end wait for a locked or full store.
  std::chrono::seconds finish_patience{60};
};

class StoreSink : public TrainerSink {
 public:
  static constexpr std::size_t kMaxPendingSteps = 100000;

  using Options = StoreSinkOptions;

  // Records into a run made with Store::queue_run, whose lease it renews from
  // now on (a run waiting for its base to be pretrained is live too).
  StoreSink(Store& store, std::int64_t run_id, Options options = {});
  // Creates the experiment and its run from what on_start reports.
  explicit StoreSink(Store& store, Options options = {});
  // A run that started but never reported its end (an exception went past
  // the trainer) is marked failed, not left running.
  ~StoreSink() override;
  StoreSink(const StoreSink&) = delete;
  StoreSink& operator=(const StoreSink&) = delete;

  void on_start(const RunInfo& info) override;
  void on_step(const StepEvent& e) override;
  void on_finish(const RunResult& r) override;

  // 0 until on_start when the sink creates the run.
  std::int64_t run_id() const { return run_id_; }
  // After on_finish: the name the adapter was kept under ("" if none), and
  // why the run's end or its adapter could not be recorded ("" if they were).
  const std::string& adapter_name() const { return adapter_name_; }
  const std::string& finish_error() const { return finish_error_; }

 private:
  void start_writer();
  void stop_writer();
  void writer_loop();
  // Commits the waiting steps through `store`; on failure they stay waiting
  // and the error propagates.
  void commit_pending(Store& store);
  void warn(const std::string& line) const;

  Store& store_;
  Options options_;
  std::int64_t run_id_ = 0;
  bool started_ = false;
  bool finished_ = false;
  std::int64_t last_step_ = 0;
  std::string adapter_name_, finish_error_;

  std::mutex mutex_;  // guards everything below
  std::condition_variable wake_;
  bool stopping_ = false;
  std::deque<StepEvent> pending_;
  std::int64_t dropped_ = 0;  // steps that waited past kMaxPendingSteps
  std::string trouble_;       // the store's last error while it lasts
  bool lost_ = false;         // the run was deleted or ended elsewhere
  std::thread writer_;
};

}  // namespace lwb
