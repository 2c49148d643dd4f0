#pragma once
// The window's Compare and Studies views, one class: pick a comparison preset
// (or a built-in study), the number of training seeds, whether to pick each
// arm's learning rate on a validation split first, and run it; the stored
// comparisons and studies are listed, and the selected one shows its means
// with 95% intervals (a table and a plot with error bars), the paired
// differences with their verdicts, the learning-rate choices and what the
// numbers depend on. A study shows its stored report with its plots. Thin
// over core (core/study); the runs happen in a ComparisonWorker thread.
#include <QTextBrowser>
#include <QWidget>
#include <filesystem>
#include <map>

class QCheckBox;
class QComboBox;
class QCustomPlot;
class QLabel;
class QLineEdit;
class QListWidget;
class QProgressBar;
class QPushButton;
class QSpinBox;
class QTableWidget;

namespace lwb::ui {

class ComparisonWorker;

// Markdown with its images served from memory (a study's stored plots).
class ReportBrowser : public QTextBrowser {
 public:
  using QTextBrowser::QTextBrowser;
  void show_report(const QString& markdown, std::map<QString, QImage> images);
  QVariant loadResource(int type, const QUrl& name) override;

 private:
  std::map<QString, QImage> images_;
};

class ComparisonView : public QWidget {
  Q_OBJECT
 public:
  enum class Kind { Compare, Study };
  ComparisonView(std::filesystem::path db, Kind kind, QWidget* parent = nullptr);
  ~ComparisonView() override;

  // Reloads the list of stored comparisons (or studies).
  void refresh();
  // Shows a stored comparison or study by id.
  void show_stored(qint64 id);
  // Starts what the form says; false (with the reason in the status line) if it cannot.
  bool start();

  QComboBox* what() const { return what_; }
  QSpinBox* seeds() const { return seeds_; }
  QCheckBox* pick_lr() const { return pick_lr_; }
  QComboBox* base() const { return base_; }  // the study's base; nullptr for a comparison
  QPushButton* run_button() const { return run_; }
  QPushButton* stop_button() const { return stop_; }
  QListWidget* history() const { return history_; }
  QTableWidget* table() const { return table_; }
  QCustomPlot* plot() const { return plot_; }
  ReportBrowser* report() const { return report_; }
  QLabel* status() const { return status_; }
  bool busy() const;

 signals:
  // A comparison or study ended and is stored (id), or failed (0).
  void finished(qint64 id);

 private:
  void describe();
  void delete_selected();
  void set_busy(bool busy);

  std::filesystem::path db_;
  Kind kind_;
  ComparisonWorker* worker_;
  QComboBox* what_;
  QComboBox* base_ = nullptr;
  QSpinBox* seeds_;
  QCheckBox* pick_lr_;
  QLineEdit* grid_ = nullptr;
  QLabel* description_;
  QPushButton* run_;
  QPushButton* stop_;
  QProgressBar* progress_;
  QLabel* status_;
  QListWidget* history_;
  QTableWidget* table_ = nullptr;
  QCustomPlot* plot_ = nullptr;
  ReportBrowser* report_;
};

}  // namespace lwb::ui
