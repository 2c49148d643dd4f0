#pragma once
// The Queue tab: the experiments waiting to run one after another, what ran
// and how it ended; buttons to add the Setup form's experiment, a sweep over
// rank, alpha and method around it, or a comparison preset, to reorder and
// remove waiting ones, and to run or pause the queue. The main window does
// the running (MainWindow::run_queue).
#include <QWidget>
#include <functional>

#include "core/train/experiment_config.h"

class QComboBox;
class QLabel;
class QLineEdit;
class QPushButton;
class QTableWidget;

namespace lwb::ui {

class RunQueue;

class QueueView : public QWidget {
  Q_OBJECT
 public:
  // form_config: the Setup form's experiment, read when something is added;
  // methods: the methods the sweep offers (the form's list).
  QueueView(RunQueue* queue, std::function<ExperimentConfig()> form_config, QStringList methods,
            QWidget* parent = nullptr);

  // The sweep as the dialog takes it: "4, 8, 16", "8, 16", methods ticked.
  // Returns how many experiments were queued; refused ones are shown.
  int add_sweep(const QString& ranks, const QString& alphas, const QStringList& methods);
  void set_running(bool running);  // the main window says whether the queue runs

  QTableWidget* table() const { return table_; }
  QPushButton* run_button() const { return run_; }
  QPushButton* add_button() const { return add_; }
  QComboBox* comparison_box() const { return comparison_; }
  QPushButton* comparison_button() const { return add_comparison_; }
  QLabel* status_label() const { return status_; }

 signals:
  void run_requested();    // Run queue
  void pause_requested();  // Pause after the current run

 private:
  void rebuild();
  qint64 selected_key() const;
  void ask_sweep();

  RunQueue* queue_;
  std::function<ExperimentConfig()> form_config_;
  QStringList methods_;
  QTableWidget* table_;
  QPushButton* run_;
  QPushButton* add_;
  QComboBox* comparison_;
  QPushButton* add_comparison_;
  QLabel* status_;
  bool running_ = false;
};

}  // namespace lwb::ui
