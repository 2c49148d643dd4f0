#pragma once
// The workbench window: experiment setup, the live monitor (loss, the
// variant's view, per-layer gradient norms and weight histograms, samples
// during training), the memory breakdown, the run history compared as in
// TensorBoard, the run queue, the adapter library with its tools,
// comparisons over seeds and the built-in studies (ComparisonView), LoRAHub
// compositions, a chat with the base and adapters side by side (ChatView)
// and the memory planner. A menu bar with the usual shortcuts (Ctrl+O,
// Ctrl+S, Ctrl+Q, F5 start, Esc stop). Thin views over core; training runs
// in a TrainingWorker thread, one run after another from the RunQueue. A
// base that is not cached yet is pretrained first, as a run like any other
// (plotted, timed, stoppable, resumable), and the Setup tab says so before
// Start.
#include <QMainWindow>
#include <filesystem>
#include <memory>
#include <vector>

#include "core/train/events.h"
#include "ui/training_worker.h"

class QAction;
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
class TrainingStatsView;
class RunsView;
class RunQueue;
class QueueView;
class LibraryView;
class ComposeView;
class ChatView;
class PlannerView;
class ComparisonView;
class SamplesView;

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
  TrainingStatsView* stats_view() const { return stats_; }
  SamplesView* samples_view() const { return samples_; }
  RunsView* runs_view() const { return runs_; }
  RunQueue* queue() const { return queue_; }
  QueueView* queue_view() const { return queue_view_; }
  LibraryView* library_view() const { return library_; }
  ComposeView* compose_view() const { return compose_; }
  ChatView* chat_view() const { return chat_; }
  ComparisonView* compare_view() const { return compare_; }
  ComparisonView* studies_view() const { return studies_; }
  PlannerView* planner_view() const { return planner_; }
  QTabWidget* tabs() const { return tabs_; }
  QPushButton* start_button() const { return start_; }
  QPushButton* pause_button() const { return pause_; }
  QPushButton* stop_button() const { return stop_; }
  QLabel* start_reason() const { return start_reason_; }
  // The toolbar's preset box: the preset, file or run the form came from
  // ("run 12", "run 12 (resume)"), with "(edited)" once the form differs
  // from it.
  QComboBox* presets_box() const { return presets_; }
  // Save as / Open without their dialogs; false (and a message) on failure.
  bool save_config_to(const QString& file);
  bool open_config_from(const QString& file);
  QLabel* status_label() const { return status_; }
  QLabel* speed_label() const { return speed_; }
  QAction* start_action() const { return start_action_; }
  QAction* stop_action() const { return stop_action_; }
  bool training() const { return worker_ && worker_->running(); }
  qint64 last_run_id() const { return run_id_; }
  const RunResult& last_result() const { return last_result_; }

  // Whether starting `config` pretrains its base first (not cached yet).
  static bool needs_pretraining(const ExperimentConfig& config);
  // Runs the waiting experiments one after another / stops after the current one.
  void run_queue();
  void pause_queue();
  bool queue_running() const { return queue_running_; }

  bool export_plots(const QString& base_path);  // base.png/.pdf for loss, memory, variant views
  bool export_csv(const QString& file);

 signals:
  void run_finished(qint64 run_id);

 protected:
  void closeEvent(QCloseEvent* event) override;

 private:
  void build_toolbar();
  void build_menus();
  // Queues the form's experiment (or a resumption) first and starts it.
  void start_run(const ExperimentConfig& config, const QString& resume_state = {}, qint64 parent_run = 0);
  // Starts a queue item, after the pretraining its base needs.
  void start_item(qint64 key);
  void start_next_if_any();
  void stop_run();
  void update_start_enabled();
  void load_parent_history(qint64 parent_run);
  void on_started(const lwb::RunInfo& info, qint64 run_id);
  void on_step(const lwb::StepEvent& e);
  void on_finished(const lwb::RunResult& r, qint64 run_id, const QString& adapter);
  void log(const QString& line);
  void load_preset(int index);
  void save_config();
  void open_config();
  void refresh_presets();
  // Selects (adding when missing) the preset `name`, or the file, as what the
  // form now holds.
  void set_preset(const QString& name, const QString& file);
  // The form now holds the settings of a run, `name` ("run 12"; cloned, or
  // with `note` "resume"): the box names it, and choosing it again restores
  // them.
  void set_run_source(const QString& name, const QString& note);
  void update_preset_label();

  std::filesystem::path db_;
  QTabWidget* tabs_;
  ExperimentForm* form_;
  LossPlot* loss_;
  MemoryView* memory_;
  VariantView* variant_;
  TrainingStatsView* stats_;
  SamplesView* samples_;  // samples during training, beside the method view
  QTabWidget* below_;  // the method view and the layer statistics, under the loss plot
  RunsView* runs_;
  RunQueue* queue_;
  QueueView* queue_view_;
  LibraryView* library_;
  ComposeView* compose_;
  ChatView* chat_;
  ComparisonView* compare_;
  ComparisonView* studies_;
  PlannerView* planner_;
  QComboBox* presets_;
  QString preset_name_;      // of the form's config as loaded, saved or opened
  QString preset_note_;      // how it came, while unedited ("resume")
  std::string preset_json_;  // that config, to see edits
  QPushButton* start_;
  QPushButton* pause_;
  QPushButton* stop_;
  QAction* start_action_;
  QAction* pause_action_;
  QAction* stop_action_;
  QLabel* start_reason_;
  QProgressBar* progress_;
  QLabel* status_;
  QLabel* speed_;
  QPlainTextEdit* log_;
  std::unique_ptr<TrainingWorker> worker_;
  qint64 run_id_ = 0;
  qint64 current_item_ = 0;    // the queue item running
  qint64 after_pretrain_ = 0;  // the queue item waiting for the base being pretrained
  bool queue_running_ = false;
  bool stopping_ = false;
  bool method_view_shown_ = false;  // the method view was brought forward for this run  // Stop was asked: the status says so until the run ends
  QString run_label_;      // what the running item is, for the status lines
  RunResult last_result_;
  std::vector<StepEvent> history_;  // the current run's steps, for CSV export
};

}  // namespace lwb::ui
