#pragma once
// A heat-map over steps x rows on a QCustomPlot (AdaLoRA's kept ranks per
// module, gradient norms per layer): samples taken at irregular steps are
// drawn as a step function (each holds until the next), resampled on a
// uniform grid so the x axis is the step axis and lines up with the loss
// plot's. Viridis colours, whose top is yellow, not white (white reads as
// missing data); row labels at a readable size, thinned to fit the height.
#include <QString>
#include <QStringList>
#include <vector>

class QCustomPlot;
class QCPColorMap;
class QCPColorScale;
class QCPRange;

namespace lwb::ui {

class HeatMap {
 public:
  HeatMap(QCustomPlot* plot, const QString& value_label);

  // values[i][row] is the sample at steps[i] (ascending). Log colour scale
  // for values spanning decades (zeros are drawn as missing).
  void set(const std::vector<double>& steps, const std::vector<std::vector<double>>& values,
           const QStringList& row_labels, bool log_scale = false);
  void clear();
  // The x range shown, e.g. the loss plot's.
  void set_step_range(const QCPRange& range);
  QCPColorMap* map() const { return map_; }
  int rows() const { return labels_.size(); }
  // Value of the cell at (step, row): the sample in force at that step.
  double value_at(double step, int row) const;

 private:
  void thin_labels();

  QCustomPlot* plot_;
  QCPColorMap* map_;
  QCPColorScale* scale_;
  QStringList labels_;
  int shown_every_ = 0;  // the label stride last applied
  bool linked_ = false;  // the x range follows set_step_range, not the data
};

}  // namespace lwb::ui
