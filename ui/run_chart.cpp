#include "ui/run_chart.h"

#include <qcustomplot.h>

#include <QCheckBox>
#include <QComboBox>
#include <QFile>
#include <QFileDialog>
#include <QHBoxLayout>
#include <QPushButton>
#include <QTextStream>
#include <QVBoxLayout>
#include <cmath>

#include "ui/plot_style.h"

namespace lwb::ui {

RunChart::RunChart(RunMetric metric, QWidget* parent) : QWidget(parent) {
  metric_box_ = new QComboBox;
  metric_box_->setObjectName("chart_metric");
  for (int m = 0; m < static_cast<int>(RunMetric::kCount); ++m)
    metric_box_->addItem(run_metric_name(static_cast<RunMetric>(m)), m);
  metric_box_->setCurrentIndex(static_cast<int>(metric));
  log_box_ = new QCheckBox(tr("log scale"));
  plot_ = new QCustomPlot;
  plot_->setMinimumHeight(160);
  plot_->setInteractions(QCP::iRangeDrag | QCP::iRangeZoom);
  // On screen the run list's swatches say which colour is which run (as in
  // TensorBoard); an exported PNG carries its own legend, below the axes.
  plot_->legend->setFont(QFont(font().family(), 8));
  plot_->legend->setVisible(false);
  auto* png = new QPushButton(tr("PNG..."));
  auto* csv = new QPushButton(tr("CSV..."));
  png->setObjectName("chart_png");
  csv->setObjectName("chart_csv");
  png->setToolTip(tr("Save this chart as a PNG (its legend below the axes)"));
  csv->setToolTip(tr("Save the points of this chart (raw and smoothed) as CSV"));
  connect(png, &QPushButton::clicked, this, [this] {
    const QString f = QFileDialog::getSaveFileName(this, tr("Save chart"), metric_box_->currentText() + ".png",
                                                   "PNG (*.png)");
    if (!f.isEmpty()) save_png(f);
  });
  connect(csv, &QPushButton::clicked, this, [this] {
    const QString f = QFileDialog::getSaveFileName(this, tr("Save chart data"), metric_box_->currentText() + ".csv",
                                                   "CSV (*.csv)");
    if (!f.isEmpty()) save_csv(f);
  });
  connect(metric_box_, &QComboBox::currentIndexChanged, this, &RunChart::changed);
  connect(log_box_, &QCheckBox::toggled, this, [this](bool on) {
    set_log_axis(plot_->yAxis, on);
    emit changed();
  });
  auto* top = new QHBoxLayout;
  top->addWidget(metric_box_, 1);
  top->addWidget(log_box_);
  top->addWidget(png);
  top->addWidget(csv);
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(0, 0, 0, 0);
  layout->addLayout(top);
  layout->addWidget(plot_, 1);
}

void RunChart::set_metric(RunMetric m) { metric_box_->setCurrentIndex(static_cast<int>(m)); }
RunMetric RunChart::metric() const { return static_cast<RunMetric>(metric_box_->currentData().toInt()); }
void RunChart::set_log_scale(bool on) { log_box_->setChecked(on); }

void RunChart::show_runs(const std::vector<const RunData*>& runs, XAxis axis, double smoothing) {
  plot_->clearGraphs();
  shown_.clear();
  const RunMetric m = metric();
  const bool log = log_box_->isChecked();
  plot_->yAxis->setLabel(run_metric_name(m));
  plot_->xAxis->setLabel(x_axis_name(axis));
  if (axis == XAxis::WallTime) {
    auto ticker = QSharedPointer<QCPAxisTickerDateTime>(new QCPAxisTickerDateTime);
    ticker->setDateTimeFormat("MM-dd\nhh:mm");
    plot_->xAxis->setTicker(ticker);
  } else if (axis == XAxis::Step) {
    plot_->xAxis->setTicker(step_ticker());
  } else {
    plot_->xAxis->setTicker(QSharedPointer<QCPAxisTicker>(new QCPAxisTicker));
  }
  double lo = INFINITY, hi = -INFINITY, x_lo = INFINITY, x_hi = -INFINITY;
  for (const RunData* run : runs) {
    Shown s{run->row.id, QString("#%1 %2").arg(run->row.id).arg(QString::fromStdString(run->row.experiment)), nullptr,
            nullptr, run_series(*run, m, axis), {}};
    if (s.series.x.empty()) continue;
    s.smoothed = smoothing > 0 ? smoothed(s.series.y, smoothing) : s.series.y;
    const QColor color = run_color(run->row.id);
    s.raw = plot_->addGraph();
    s.raw->setPen(QPen(QColor(color.red(), color.green(), color.blue(), smoothing > 0 ? 60 : 255), 1));
    s.raw->removeFromLegend();
    s.smooth = plot_->addGraph();
    s.smooth->setName(s.label);
    s.smooth->setPen(QPen(color, 2));
    if (s.series.x.size() < 30) s.smooth->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCircle, 4));
    s.raw->setVisible(smoothing > 0);
    QVector<double> x(s.series.x.begin(), s.series.x.end()), y(s.series.y.begin(), s.series.y.end()),
        ys(s.smoothed.begin(), s.smoothed.end());
    s.raw->setData(x, y, true);
    s.smooth->setData(x, ys, true);
    // The steps a resumed run inherited from the runs it continues, dashed.
    if (axis == XAxis::Step && run->own_from_step > 0) {
      QCPGraph* inherited = plot_->addGraph();
      inherited->removeFromLegend();
      inherited->setPen(QPen(QColor(255, 255, 255, 200), 2, Qt::DashLine));
      QVector<double> ix, iy;
      for (std::size_t i = 0; i < s.series.x.size() && s.series.x[i] < run->own_from_step; ++i) {
        ix.push_back(s.series.x[i]);
        iy.push_back(s.smoothed[i]);
      }
      inherited->setData(ix, iy, true);
      s.smooth->setName(s.label + tr(" (resumed at step %1)").arg(run->own_from_step));
    }
    for (std::size_t i = 0; i < s.series.y.size(); ++i) {
      if (log && !(s.series.y[i] > 0)) continue;
      lo = std::min(lo, s.series.y[i]);
      hi = std::max(hi, s.series.y[i]);
    }
    x_lo = std::min(x_lo, s.series.x.front());
    x_hi = std::max(x_hi, s.series.x.back());
    shown_.push_back(std::move(s));
  }
  if (std::isfinite(lo)) plot_->yAxis->setRange(padded_range(lo, hi, log));
  if (std::isfinite(x_lo)) plot_->xAxis->setRange(x_lo, std::max(x_hi, x_lo + (axis == XAxis::Step ? 1 : 1e-3)));
  plot_->replot(QCustomPlot::rpQueuedReplot);
}

QCPGraph* RunChart::curve(qint64 run_id) const {
  for (const Shown& s : shown_)
    if (s.run_id == run_id) return s.smooth;
  return nullptr;
}

bool RunChart::save_png(const QString& file) {
  put_legend_below(plot_, 3);
  QCPLayoutElement* row = plot_->legend->layout();
  const bool ok = plot_->savePng(file, 0, 0, 2.0);
  // Back into the (hidden) inset, and the legend's row away again.
  plot_->axisRect()->insetLayout()->addElement(plot_->legend, Qt::AlignTop | Qt::AlignRight);
  plot_->legend->setVisible(false);
  plot_->plotLayout()->remove(row);
  plot_->plotLayout()->simplify();
  plot_->replot(QCustomPlot::rpQueuedReplot);
  return ok;
}

bool RunChart::save_csv(const QString& file) const {
  QFile f(file);
  if (!f.open(QIODevice::WriteOnly | QIODevice::Truncate)) return false;
  QTextStream out(&f);
  out << "run," << plot_->xAxis->label() << ',' << metric_box_->currentText() << ",smoothed\n";
  for (const Shown& s : shown_)
    for (std::size_t i = 0; i < s.series.x.size(); ++i)
      out << s.run_id << ',' << QString::number(s.series.x[i], 'g', 12) << ','
          << QString::number(s.series.y[i], 'g', 10) << ',' << QString::number(s.smoothed[i], 'g', 10) << '\n';
  return f.error() == QFile::NoError;
}

}  // namespace lwb::ui
