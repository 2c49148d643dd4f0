#pragma once
// One chart of the Runs tab: any logged metric of the shown runs, each in its
// run's colour, raw faint and smoothed bold as TensorBoard draws them, on a
// step, relative-time or wall-time axis, log scale optional; a resumed run's
// inherited part dashed. Downloads as PNG (legend below the axes) or CSV.
#include <QWidget>
#include <vector>

#include "ui/run_compare.h"

class QCheckBox;
class QComboBox;
class QCustomPlot;
class QCPGraph;

namespace lwb::ui {

class RunChart : public QWidget {
  Q_OBJECT
 public:
  explicit RunChart(RunMetric metric, QWidget* parent = nullptr);

  void set_metric(RunMetric m);
  RunMetric metric() const;
  void set_log_scale(bool on);
  // Redraws for these runs.
  void show_runs(const std::vector<const RunData*>& runs, XAxis axis, double smoothing);
  bool save_png(const QString& file);
  // run,x,value,smoothed per point.
  bool save_csv(const QString& file) const;

  QCustomPlot* plot() const { return plot_; }
  QComboBox* metric_box() const { return metric_box_; }
  // The smoothed curve of a run (its own part), or nullptr when not shown.
  QCPGraph* curve(qint64 run_id) const;
  int shown_runs() const { return static_cast<int>(shown_.size()); }

 signals:
  void changed();  // the metric or scale was changed by the user

 private:
  struct Shown {
    qint64 run_id;
    QString label;
    QCPGraph* raw;
    QCPGraph* smooth;
    Series series;
    std::vector<double> smoothed;
  };
  QCustomPlot* plot_;
  QComboBox* metric_box_;
  QCheckBox* log_box_;
  std::vector<Shown> shown_;
};

}  // namespace lwb::ui
