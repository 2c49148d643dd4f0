#pragma once
// The workbench window: pick a preset, start/stop a run, watch the loss.
#include <QMainWindow>
#include <memory>

#include "core/train/experiment_config.h"
#include "ui/training_worker.h"

class QComboBox;
class QPushButton;
class QProgressBar;
class QLabel;
class QPlainTextEdit;
class QCustomPlot;
class QTimer;

namespace lwb::ui {

class MainWindow : public QMainWindow {
  Q_OBJECT
 public:
  explicit MainWindow(QWidget* parent = nullptr);
  ~MainWindow() override;

  QCustomPlot* loss_plot() const { return plot_; }
  QPushButton* start_button() const { return start_; }
  QPushButton* stop_button() const { return stop_; }
  QComboBox* preset_box() const { return preset_; }

 protected:
  void closeEvent(QCloseEvent* event) override;

 private:
  void start_run();
  void on_started(const lwb::RunInfo& info);
  void on_step(const lwb::StepEvent& e);
  void on_finished(const lwb::RunResult& r);
  void log(const QString& line);

  QComboBox* preset_;
  QPushButton* start_;
  QPushButton* stop_;
  QProgressBar* progress_;
  QLabel* status_;
  QPlainTextEdit* log_;
  QCustomPlot* plot_;
  QTimer* replot_timer_;
  bool dirty_ = false;
  std::unique_ptr<TrainingWorker> worker_;
};

}  // namespace lwb::ui
