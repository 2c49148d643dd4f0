#pragma once
// Comparisons and studies on a background QThread, one at a time
// (BackgroundWorker): the run itself is core's (core/study), recorded in the
// store by the worker's own connection; progress comes back as queued
// signals and Stop is an atomic the GUI thread sets. A study's plots are
// QWidgets, so the worker hands the study back and the view draws and stores
// them on the GUI thread.
#include <QString>
#include <filesystem>
#include <memory>

#include "core/study/study.h"
#include "ui/background_worker.h"

namespace lwb::ui {

class ComparisonWorker : public BackgroundWorker {
  Q_OBJECT
 public:
  explicit ComparisonWorker(std::filesystem::path db, QObject* parent = nullptr);
  ~ComparisonWorker() override { stop_and_wait(); }

  // Each starts one job; false (and nothing started) while another runs.
  bool compare(ComparisonDesign design);
  bool study(std::string name, StudyOptions options);

 signals:
  // A run of the comparison started ("dora seed 2 (lr 0.002) [5/18]").
  void run_started(QString label, int index, int total);
  void step(qint64 step, qint64 total);
  void notice(QString line);
  void compared(qint64 comparison_id);
  // The study ran; its report still needs its plots drawn and stored (finish_study).
  void studied(std::shared_ptr<lwb::StudyResult> result);

 private:
  TrainerEnvironment environment();

  std::filesystem::path db_;
};

}  // namespace lwb::ui

Q_DECLARE_METATYPE(std::shared_ptr<lwb::StudyResult>)
