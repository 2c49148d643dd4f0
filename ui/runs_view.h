#pragma once
// The run history, compared as TensorBoard and W&B users expect: a filtered
// run list where each run has its colour and a check box that shows it in
// the charts; charts of any logged metric (train and held-out loss, exact
// match, gradient norm, learning rate, tokens/s, memory) with smoothing and
// log scale, against step, relative or wall time; a table of the
// hyperparameters that differ between the shown runs; CSV/JSON/PNG
// downloads; the command that reproduces a run. Beside the charts, the one
// selected run's samples during training and Evaluate & Predict. Actions (config, clone,
// resume, delete) act on the selected runs, and the selection follows run
// ids, not row positions, across refreshes: a destructive action names what
// it deletes.
#include <QWidget>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <vector>

#include "core/train/experiment_config.h"
#include "ui/run_compare.h"

class QCheckBox;
class QComboBox;
class QCustomPlot;
class QLabel;
class QLineEdit;
class QPushButton;
class QSlider;
class QTabWidget;
class QTableWidget;

namespace lwb {
struct RunDetail;
}

namespace lwb::ui {

class RunChart;
class SamplesView;
class PredictView;

class RunsView : public QWidget {
  Q_OBJECT
 public:
  static constexpr int kCharts = 2;

  explicit RunsView(std::filesystem::path db, QWidget* parent = nullptr);
  ~RunsView() override;

  // Reads the store again; selection, checks and filter stay with their runs.
  void refresh();
  // Shows exactly these runs in the charts and the hyperparameter table.
  void overlay(const std::vector<std::int64_t>& run_ids);
  std::vector<std::int64_t> selected_runs() const;
  std::vector<std::int64_t> shown_runs() const;
  void select_runs(const std::vector<std::int64_t>& run_ids);
  void set_filter(const QString& text);
  void set_x_axis(XAxis axis);
  void set_smoothing(double beta);
  // Asks (naming the runs) and deletes the selected runs; returns whether it did.
  bool delete_selected();
  // The command that reproduces the selected run, also put on the clipboard.
  QString copy_command();
  bool export_run_csv(std::int64_t run_id, const QString& file);
  bool export_run_json(std::int64_t run_id, const QString& file);

  QTableWidget* table() const { return table_; }
  QTableWidget* hparam_table() const { return hparams_; }
  RunChart* chart(int i) const { return charts_[i]; }
  QCustomPlot* plot() const;  // the first chart's
  QLabel* status_label() const { return status_; }
  // Charts, Samples, Evaluate & Predict.
  QTabWidget* pages() const { return pages_; }
  SamplesView* samples_view() const { return samples_; }
  PredictView* predict_view() const { return predict_; }
  int visible_rows() const;

 signals:
  // The user asked to start a new experiment from run `run_id`'s config.
  void clone_requested(const lwb::ExperimentConfig& config, qint64 run_id);
  // Continue a stopped run from its saved state, as a new run that names
  // `parent_run_id` as the run it continues.
  void resume_requested(const lwb::ExperimentConfig& config, const QString& state_file, qint64 parent_run_id);
  void error(const QString& message);

 private:
  // Runs `action` on the one selected run, or says `hint` when the selection
  // is not exactly one run; store errors go to error().
  void with_selected_run(const QString& hint,
                         const std::function<void(std::int64_t, const lwb::RunDetail&)>& action);
  void show_config();
  void clone_selected();
  void resume_selected();
  void download_selected(bool json);
  void apply_filter();
  // The samples and Evaluate & Predict follow the selection when it is one run.
  void show_selected_run();
  void redraw();
  void fill_hparams(const std::vector<const RunData*>& runs);
  const RunData* data_of(std::int64_t run_id);
  std::int64_t id_at(int row) const;

  std::filesystem::path db_;
  QLineEdit* filter_;
  QTableWidget* table_;
  QTableWidget* hparams_;
  QComboBox* x_axis_;
  QSlider* smoothing_;
  QLabel* smoothing_label_;
  RunChart* charts_[kCharts];
  QLabel* status_;
  QTabWidget* pages_;
  SamplesView* samples_;
  PredictView* predict_;
  std::int64_t shown_run_ = -1;  // whose samples and predictions are shown (0: none)
  std::map<std::int64_t, RunData> cache_;  // read once per refresh
  std::set<std::int64_t> known_;           // ids listed before: new ones are shown at once
  std::set<std::int64_t> shown_;           // checked
  bool filling_ = false;
};

}  // namespace lwb::ui
