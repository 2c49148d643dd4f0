#pragma once
// The run history from the store: a table of runs (config summary, status,
// final loss and accuracy, peak memory, time), loss curves of the selected
// runs overlaid with a legend, a run's config shown read-only (runs are
// immutable records), delete with confirmation, and clone into the form.
#include <QWidget>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <vector>

#include "core/train/experiment_config.h"

class QTableWidget;
class QCustomPlot;
class QPushButton;
class QLabel;

namespace lwb {
struct RunDetail;
}

namespace lwb::ui {

class RunsView : public QWidget {
  Q_OBJECT
 public:
  explicit RunsView(std::filesystem::path db, QWidget* parent = nullptr);

  void refresh();
  // Overlays the loss curves of these runs (ids) in the plot.
  void overlay(const std::vector<std::int64_t>& run_ids);
  std::vector<std::int64_t> selected_runs() const;
  QTableWidget* table() const { return table_; }
  QCustomPlot* plot() const { return plot_; }

 signals:
  // The user asked to start a new experiment from a stored run's config.
  void clone_requested(const lwb::ExperimentConfig& config);
  // Continue a stopped run from its saved state (as a new run record).
  void resume_requested(const lwb::ExperimentConfig& config, const QString& state_file);
  void error(const QString& message);

 private:
  // Runs `action` on the one selected run, or says `hint` when the selection
  // is not exactly one run; store errors go to error().
  void with_selected_run(const QString& hint,
                         const std::function<void(std::int64_t, const lwb::RunDetail&)>& action);
  void show_config();
  void delete_selected();
  void clone_selected();
  void resume_selected();

  std::filesystem::path db_;
  QTableWidget* table_;
  QCustomPlot* plot_;
  QLabel* status_;
};

}  // namespace lwb::ui
