#pragma once
// Runs one Trainer on a background QThread (PlotJuggler's fetch_worker
// pattern): events reach the GUI thread as queued signals; stop and pause are
// atomics the GUI thread sets directly, because a slot would wait behind the
// busy worker.
#include <QObject>
#include <QString>
#include <QThread>
#include <atomic>
#include <memory>

#include "core/train/events.h"
#include "core/train/experiment_config.h"

namespace lwb::ui {

class TrainingWorker : public QObject {
  Q_OBJECT
 public:
  explicit TrainingWorker(ExperimentConfig config, QObject* parent = nullptr);
  ~TrainingWorker() override;

  // Starts the thread; the worker deletes nothing itself, the owner does.
  void start();
  void request_stop() { stop_ = true; }
  void set_paused(bool paused) { pause_ = paused; }
  bool running() const { return thread_.isRunning(); }
  // Waits for the thread (after request_stop) — used when the window closes.
  void wait() { thread_.wait(); }

 signals:
  void started(lwb::RunInfo info);
  void step(lwb::StepEvent event);
  void notice(QString text);
  void finished(lwb::RunResult result);
  void failed(QString message);  // the run could not even start

 private:
  void run();
  ExperimentConfig config_;
  QThread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> pause_{false};
};

}  // namespace lwb::ui

Q_DECLARE_METATYPE(lwb::RunInfo)
Q_DECLARE_METATYPE(lwb::StepEvent)
Q_DECLARE_METATYPE(lwb::RunResult)
