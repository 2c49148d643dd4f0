#pragma once
// Runs one Trainer on a background QThread (PlotJuggler's fetch_worker
// pattern): events reach the GUI thread as queued signals; stop and pause are
// atomics the GUI thread sets directly, because a slot would wait behind the
// busy worker. The worker records the run in the store through its own
// connection (SQLite connections are per thread), keeps the adapter in the
// library when the run ends (marked when it diverged) and its resumable state
// beside the store while it trains (Store::state_file). A full fine-tuning
// run keeps its trained weights there too (Store::model_file, for the
// library's extract tool); a finished pretraining of a preset's base becomes
// the cached base (save_pretrained_base).
#include <QObject>
#include <QString>
#include <QThread>
#include <atomic>
#include <filesystem>

#include "core/train/events.h"
#include "core/train/experiment_config.h"

namespace lwb {
class Store;
class Trainer;
}  // namespace lwb

namespace lwb::ui {

class TrainingWorker : public QObject {
  Q_OBJECT
 public:
  // resume_state: a saved state of a stopped or killed run to continue from
  // (a new run record that names parent_run_id; runs are immutable), or empty.
  TrainingWorker(ExperimentConfig config, std::filesystem::path db, std::filesystem::path resume_state = {},
                 qint64 parent_run_id = 0, QObject* parent = nullptr);
  ~TrainingWorker() override;

  void start();
  void request_stop() { stop_ = true; }
  void set_paused(bool paused) { pause_ = paused; }
  bool paused() const { return pause_; }
  bool running() const { return thread_.isRunning(); }
  // Blocks until the thread ends (after request_stop) — used when closing.
  void wait() { thread_.wait(); }
  const ExperimentConfig& config() const { return config_; }

 signals:
  void started(lwb::RunInfo info, qint64 run_id);
  void step(lwb::StepEvent event);
  void notice(QString text);
  // The run was recorded (queued) under this id, before anything can fail.
  void queued(qint64 run_id);
  void pretrain_progress(qint64 step, qint64 total);
  // adapter: the name it was stored under ("" for full fine-tuning or failure).
  void finished(lwb::RunResult result, qint64 run_id, QString adapter);

 private:
  void run();
  // A full fine-tuning's weights beside the store; a finished pretraining as the cached base.
  void keep_weights(Trainer& trainer, Store& store, std::int64_t run_id, const RunResult& result);
  ExperimentConfig config_;
  std::filesystem::path db_;
  std::filesystem::path resume_state_;
  qint64 parent_run_id_ = 0;
  QThread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> pause_{false};
};

}  // namespace lwb::ui

Q_DECLARE_METATYPE(lwb::RunInfo)
Q_DECLARE_METATYPE(lwb::StepEvent)
Q_DECLARE_METATYPE(lwb::RunResult)
