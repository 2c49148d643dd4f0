#include "ui/objective_plot.h"

#include <qcustomplot.h>

#include <QTimer>
#include <QVBoxLayout>

#include "ui/plot_style.h"

namespace lwb::ui {

ObjectivePlot::ObjectivePlot(QWidget* parent) : QWidget(parent) {
  plot_ = new QCustomPlot(this);
  plot_->setMinimumSize(320, 180);
  plot_->xAxis->setLabel(tr("evaluation"));
  plot_->yAxis->setLabel(tr("few-shot objective"));
  points_ = plot_->addGraph();
  points_->setName(tr("evaluated"));
  points_->setLineStyle(QCPGraph::lsNone);
  points_->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCircle, QColor(31, 119, 180), 5));
  best_line_ = plot_->addGraph();
  best_line_->setName(tr("best so far"));
  best_line_->setLineStyle(QCPGraph::lsStepLeft);
  best_line_->setPen(QPen(QColor(214, 39, 40), 2));
  plot_->legend->setVisible(true);
  plot_->legend->setFont(QFont(font().family(), 8));
  put_legend_below(plot_, 2);
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(0, 0, 0, 0);
  layout->addWidget(plot_);

  timer_ = new QTimer(this);
  timer_->setInterval(33);
  connect(timer_, &QTimer::timeout, this, &ObjectivePlot::refresh);
  timer_->start();
}

void ObjectivePlot::clear() {
  points_->data()->clear();
  best_line_->data()->clear();
  best_ = NAN;
  dirty_ = true;
}

void ObjectivePlot::add_point(int evaluation, double objective) {
  points_->addData(evaluation, objective);
  // A non-finite objective counts as worse than any finite one, as in the search.
  if (std::isfinite(objective) && (std::isnan(best_) || objective < best_)) best_ = objective;
  if (std::isfinite(best_)) best_line_->addData(evaluation, best_);
  dirty_ = true;
}

void ObjectivePlot::refresh() {
  if (!dirty_) return;
  dirty_ = false;
  plot_->rescaleAxes();
  const QCPRange y = plot_->yAxis->range();
  plot_->yAxis->setRange(y.lower - 0.05 * y.size() - 1e-9, y.upper + 0.05 * y.size() + 1e-9);
  plot_->xAxis->setRange(0, std::max(1.0, plot_->xAxis->range().upper + 1));
  plot_->replot(QCustomPlot::rpQueuedReplot);
}

int ObjectivePlot::points() const { return points_->data()->size(); }

}  // namespace lwb::ui
