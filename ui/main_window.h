#pragma once
// The workbench window: experiment setup, the live monitor (loss, variant
// view), the memory breakdown, the run history, comparisons over seeds and
// the built-in studies (ComparisonView), LoRAHub compositions (ComposeView)
// and the memory planner (PlannerView). Thin views over core;
// the training itself runs in a TrainingWorker thread.
#include <QMainWindow>
#include <filesystem>
#include <memory>
#include <vector>

#include "core/train/events.h"
#include "ui/training_worker.h"

class QTabWidget;
class QPushButton;
class QProgressBar;
class QLabel;
class QComboBox;
class QPlainTextEdit;

namespace lwb::ui {

class ExperimentForm;
class LossPlot;
class MemoryView;
class VariantView;
class RunsView;
class ComposeView;
class PlannerView;
class ComparisonView;

class MainWindow : public QMainWindow {
  Q_OBJECT
 public:
  // db: the store file (default Store::default_path()).
  explicit MainWindow(std::filesystem::path db = {}, QWidget* parent = nullptr);
  ~MainWindow() override;

  ExperimentForm* form() const { return form_; }
  LossPlot* loss_plot() const { return loss_; }
  MemoryView* memory_view() const { return memory_; }
  VariantView* variant_view() const { return variant_; }
  RunsView* runs_view() const { return runs_; }
  ComposeView* compose_view() const { return compose_; }
  ComparisonView* compare_view() const { return compare_; }
  ComparisonView* studies_view() const { return studies_; }
  PlannerView* planner_view() const { return planner_; }
  QTabWidget* tabs() const { return tabs_; }
  QPushButton* start_button() const { return start_; }
  QPushButton* pause_button() const { return pause_; }
  QPushButton* stop_button() const { return stop_; }
  QLabel* start_reason() const { return start_reason_; }
  QLabel* status_label() const { return status_; }
  bool training() const { return worker_ && worker_->running(); }
  qint64 last_run_id() const { return run_id_; }
  const RunResult& last_result() const { return last_result_; }

  bool export_plots(const QString& base_path);  // base.png/.pdf for loss, memory, variant views
  bool export_csv(const QString& file);

 signals:
  void run_finished(qint64 run_id);

 protected:
  void closeEvent(QCloseEvent* event) override;

 private:
  void build_toolbar();
  void start_run(const std::filesystem::path& resume_state = {});
  void update_start_enabled();
  void on_started(const lwb::RunInfo& info, qint64 run_id);
  void on_step(const lwb::StepEvent& e);
  void on_finished(const lwb::RunResult& r, qint64 run_id, const QString& adapter);
  void log(const QString& line);
  void load_preset(const QString& name);
  void save_config();
  void open_config();
  void refresh_presets();

  std::filesystem::path db_;
  QTabWidget* tabs_;
  ExperimentForm* form_;
  LossPlot* loss_;
  MemoryView* memory_;
  VariantView* variant_;
  RunsView* runs_;
  ComposeView* compose_;
  ComparisonView* compare_;
  ComparisonView* studies_;
  PlannerView* planner_;
  QComboBox* presets_;
  QPushButton* start_;
  QPushButton* pause_;
  QPushButton* stop_;
  QLabel* start_reason_;
  QProgressBar* progress_;
  QLabel* status_;
  QLabel* speed_;
  QPlainTextEdit* log_;
  std::unique_ptr<TrainingWorker> worker_;
  qint64 run_id_ = 0;
  RunResult last_result_;
  std::vector<StepEvent> history_;  // the current run's steps, for CSV export
};

}  // namespace lwb::ui
