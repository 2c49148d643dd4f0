#include "ui/heat_map.h"

#include <qcustomplot.h>

#include <algorithm>
#include <cmath>

#include "ui/plot_style.h"

namespace lwb::ui {

namespace {
constexpr int kMaxColumns = 600;   // grid cells across; finer than any screen shows
constexpr int kLabelPixels = 13;   // a 9-pt label and a little air

QCPColorGradient viridis() {
  QCPColorGradient g;
  g.clearColorStops();
  g.setColorStopAt(0.0, QColor(68, 1, 84));
  g.setColorStopAt(0.25, QColor(59, 82, 139));
  g.setColorStopAt(0.5, QColor(33, 145, 140));
  g.setColorStopAt(0.75, QColor(94, 201, 98));
  g.setColorStopAt(1.0, QColor(253, 231, 37));
  g.setNanHandling(QCPColorGradient::nhTransparent);
  return g;
}
}  // namespace

HeatMap::HeatMap(QCustomPlot* plot, const QString& value_label) : plot_(plot) {
  plot_->xAxis->setLabel(QObject::tr("step"));
  plot_->xAxis->setTicker(step_ticker());
  plot_->yAxis->setTickLabelFont(QFont(plot_->font().family(), 9));
  plot_->yAxis->setRangeReversed(true);  // first row at the top
  map_ = new QCPColorMap(plot_->xAxis, plot_->yAxis);
  scale_ = new QCPColorScale(plot_);
  plot_->plotLayout()->addElement(0, 1, scale_);
  scale_->axis()->setLabel(value_label);
  map_->setColorScale(scale_);
  map_->setGradient(viridis());
  map_->setInterpolate(false);
  auto* margins = new QCPMarginGroup(plot_);
  plot_->axisRect()->setMarginGroup(QCP::msBottom | QCP::msTop, margins);
  scale_->setMarginGroup(QCP::msBottom | QCP::msTop, margins);
  QObject::connect(plot_, &QCustomPlot::beforeReplot, plot_, [this] { thin_labels(); });
}

void HeatMap::set(const std::vector<double>& steps, const std::vector<std::vector<double>>& values,
                  const QStringList& row_labels, bool log_scale) {
  labels_ = row_labels;
  shown_every_ = 0;
  const int ny = static_cast<int>(row_labels.size());
  if (steps.empty() || ny == 0) return clear();
  const double first = steps.front(), last = std::max(steps.back(), steps.front() + 1);
  const int nx = std::clamp(static_cast<int>(std::lround(last - first)) + 1, 2, kMaxColumns);
  map_->data()->setSize(nx, ny);
  map_->data()->setRange(QCPRange(first, last), QCPRange(0, ny - 1));
  std::size_t sample = 0;
  for (int x = 0; x < nx; ++x) {
    const double step = first + (last - first) * x / (nx - 1);
    while (sample + 1 < steps.size() && steps[sample + 1] <= step + 1e-9) ++sample;
    const std::vector<double>& column = values[sample];
    for (int y = 0; y < ny; ++y) {
      double v = y < static_cast<int>(column.size()) ? column[static_cast<std::size_t>(y)] : NAN;
      if (log_scale && !(v > 0)) v = NAN;
      map_->data()->setCell(x, y, v);
    }
  }
  scale_->setDataScaleType(log_scale ? QCPAxis::stLogarithmic : QCPAxis::stLinear);
  set_log_axis(scale_->axis(), log_scale);
  map_->rescaleDataRange(true);
  plot_->yAxis->setRange(-0.5, ny - 0.5);
  if (!linked_) plot_->xAxis->setRange(first, last);
  plot_->replot(QCustomPlot::rpQueuedReplot);
}

void HeatMap::clear() {
  map_->data()->clear();
  labels_.clear();
  plot_->replot(QCustomPlot::rpQueuedReplot);
}

void HeatMap::set_step_range(const QCPRange& range) {
  linked_ = true;
  plot_->xAxis->setRange(range);
  plot_->replot(QCustomPlot::rpQueuedReplot);
}

double HeatMap::value_at(double step, int row) const {
  int x = 0, y = 0;
  map_->data()->coordToCell(step, row, &x, &y);
  return map_->data()->cell(x, y);
}

void HeatMap::thin_labels() {
  const int height = std::max(plot_->axisRect()->height(), 1);
  const int every = std::max(1, (static_cast<int>(labels_.size()) * kLabelPixels + height - 1) / height);
  if (every == shown_every_) return;
  shown_every_ = every;
  auto ticker = QSharedPointer<QCPAxisTickerText>(new QCPAxisTickerText);
  for (int y = 0; y < labels_.size(); y += every) ticker->addTick(y, labels_[y]);
  plot_->yAxis->setTicker(ticker);
}

}  // namespace lwb::ui
