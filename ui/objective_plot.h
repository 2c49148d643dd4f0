#pragma once
// The weight search's objective per evaluation, as it arrives: every point
// evaluated and the best so far as a step line. Like LossPlot, points are
// appended and a ~30 Hz timer replots (queued) only when something changed.
#include <QWidget>
#include <cmath>

class QCustomPlot;
class QCPGraph;
class QTimer;

namespace lwb::ui {

class ObjectivePlot : public QWidget {
  Q_OBJECT
 public:
  explicit ObjectivePlot(QWidget* parent = nullptr);

  void clear();
  // evaluation: 1-based.
  void add_point(int evaluation, double objective);
  void refresh();

  int points() const;
  double best() const { return best_; }  // NaN before the first point
  QCustomPlot* plot() const { return plot_; }

 private:
  QCustomPlot* plot_;
  QCPGraph* points_;
  QCPGraph* best_line_;
  QTimer* timer_;
  double best_ = NAN;
  bool dirty_ = false;
};

}  // namespace lwb::ui
