#pragma once
// Evaluate & Predict for one stored run (the Runs view's selected run): the
// adapter it kept answers its held-out split or a JSONL file, in a worker
// thread with progress and cancel, through core's predict_run (the same
// loss, greedy answer, exact match and ROUGE-L as `lora-workbench predict`).
// The per-example table (prompt, reference, prediction, loss, exact match,
// ROUGE-L) sorts by any column, the means are above it, and CSV export
// writes the rows in the data's order. Each result is stored against the
// run; showing a run shows its newest stored predictions.
#include <QWidget>
#include <cstdint>
#include <filesystem>

#include "core/store/store.h"

class QLabel;
class QLineEdit;
class QProgressBar;
class QPushButton;
class QSpinBox;
class QTableWidget;

namespace lwb::ui {

class JobRunner;

class PredictView : public QWidget {
  Q_OBJECT
 public:
  explicit PredictView(std::filesystem::path db, QWidget* parent = nullptr);
  ~PredictView() override;

  // The run to evaluate (0: none), with its newest stored predictions.
  void set_run(std::int64_t run_id);
  std::int64_t run() const { return run_id_; }
  // The data: a JSONL file, or empty for the run's held-out split.
  void set_data_file(const QString& path);
  // Starts predicting in the worker; false (and a message) without a run or
  // while a prediction runs.
  bool start();
  void cancel();
  bool busy() const;
  // The shown predictions as CSV (core's predictions_csv); false and a
  // message when there are none or the file cannot be written.
  bool export_csv(const QString& file);
  const PredictionSet& predictions() const { return shown_; }

  QTableWidget* table() const { return table_; }
  QLabel* means_label() const { return means_; }
  QLabel* status_label() const { return status_; }
  QProgressBar* progress() const { return progress_; }
  QPushButton* run_button() const { return run_; }
  QPushButton* cancel_button() const { return cancel_; }
  QPushButton* export_button() const { return export_; }
  QSpinBox* count_box() const { return count_; }

  // Table columns.
  enum Column { kIndex, kPrompt, kReference, kPrediction, kLoss, kExact, kRouge, kColumns };

 signals:
  // Predictions were stored (their id) and shown.
  void predicted(qint64 prediction_id);

 private:
  void show_predictions(const PredictionSet& set);
  void show_status(const QString& text, bool error = false);
  void update_buttons();

  std::filesystem::path db_;
  std::int64_t run_id_ = 0;
  PredictionSet shown_;
  QLabel* title_;
  QLineEdit* data_;
  QSpinBox* count_;
  QPushButton* run_;
  QPushButton* cancel_;
  QPushButton* export_;
  QProgressBar* progress_;
  QLabel* means_;
  QLabel* status_;
  QTableWidget* table_;
  JobRunner* runner_;
};

}  // namespace lwb::ui
