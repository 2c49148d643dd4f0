#include "ui/loss_plot.h"

#include <qcustomplot.h>

#include <QCheckBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QSlider>
#include <QTimer>
#include <QVBoxLayout>
#include <cmath>

#include "ui/plot_style.h"

namespace lwb::ui {

namespace {
constexpr double kFollowWindow = 500;  // steps shown when following
}

LossPlot::LossPlot(QWidget* parent) : QWidget(parent) {
  plot_ = new QCustomPlot(this);
  plot_->setMinimumSize(400, 220);
  plot_->setNoAntialiasingOnDrag(true);
  plot_->setPlottingHint(QCP::phFastPolylines, true);

  QCPAxisRect* main = plot_->axisRect();
  main->axis(QCPAxis::atLeft)->setLabel(tr("loss"));
  main->axis(QCPAxis::atRight)->setVisible(true);
  main->axis(QCPAxis::atRight)->setLabel(tr("exact match %"));
  main->axis(QCPAxis::atRight)->setRange(0, 100);
  raw_ = plot_->addGraph();
  raw_->setName(tr("train loss"));
  raw_->setPen(QPen(QColor(31, 119, 180, 70)));
  raw_->setAdaptiveSampling(true);
  smooth_ = plot_->addGraph();
  smooth_->setName(tr("train loss (smoothed)"));
  smooth_->setPen(QPen(QColor(31, 119, 180), 2));
  smooth_->setAdaptiveSampling(true);
  eval_ = plot_->addGraph();
  eval_->setName(tr("held-out loss"));
  eval_->setPen(QPen(QColor(214, 39, 40), 2));
  eval_->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCircle, 6));
  accuracy_ = plot_->addGraph(main->axis(QCPAxis::atBottom), main->axis(QCPAxis::atRight));
  accuracy_->setName(tr("exact match"));
  accuracy_->setPen(QPen(QColor(44, 160, 44), 2, Qt::DashLine));
  accuracy_->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssDiamond, 6));
  plot_->legend->setFont(QFont(font().family(), 8));

  // The learning rate in a small rect below, sharing the step axis range.
  lr_rect_ = new QCPAxisRect(plot_);
  plot_->plotLayout()->addElement(1, 0, lr_rect_);
  plot_->plotLayout()->setRowStretchFactor(1, 0.3);
  lr_rect_->axis(QCPAxis::atLeft)->setLabel(tr("lr"));
  lr_rect_->axis(QCPAxis::atBottom)->setLabel(tr("step"));
  // Three labels fit the short axis without touching; "0.003", not "3.000e-03".
  lr_rect_->axis(QCPAxis::atLeft)->ticker()->setTickCount(3);
  lr_rect_->axis(QCPAxis::atLeft)->setNumberFormat("g");
  lr_rect_->axis(QCPAxis::atLeft)->setNumberPrecision(2);
  for (QCPAxisRect* r : {main, lr_rect_}) r->axis(QCPAxis::atBottom)->setTicker(step_ticker());
  main->axis(QCPAxis::atBottom)->setTickLabels(false);  // the LR plot below carries them
  lr_ = plot_->addGraph(lr_rect_->axis(QCPAxis::atBottom), lr_rect_->axis(QCPAxis::atLeft));
  lr_->setPen(QPen(QColor(148, 103, 189)));
  connect(main->axis(QCPAxis::atBottom), QOverload<const QCPRange&>::of(&QCPAxis::rangeChanged),
          lr_rect_->axis(QCPAxis::atBottom), QOverload<const QCPRange&>::of(&QCPAxis::setRange));
  auto* margins = new QCPMarginGroup(plot_);
  for (QCPAxisRect* r : {main, lr_rect_}) r->setMarginGroup(QCP::msLeft | QCP::msRight, margins);
  lr_->removeFromLegend();
  put_legend_below(plot_);

  create_hover_items();
  connect(plot_, &QCustomPlot::mouseMove, this, &LossPlot::on_mouse_move);
  plot_->setInteractions(QCP::iRangeDrag | QCP::iRangeZoom);

  slider_ = new QSlider(Qt::Horizontal);
  slider_->setRange(0, 999);
  slider_->setValue(static_cast<int>(beta_ * 1000));
  slider_->setToolTip(tr("Smoothing: exponential moving average, debiased as in TensorBoard"));
  slider_label_ = new QLabel;
  log_box_ = new QCheckBox(tr("log scale"));
  follow_box_ = new QCheckBox(tr("follow latest"));
  follow_box_->setChecked(true);
  connect(slider_, &QSlider::valueChanged, this, [this](int v) { set_smoothing(v / 1000.0); });
  connect(log_box_, &QCheckBox::toggled, this, &LossPlot::set_log_scale);
  connect(follow_box_, &QCheckBox::toggled, this, &LossPlot::set_follow);

  auto* controls = new QHBoxLayout;
  controls->addWidget(new QLabel(tr("Smoothing")));
  controls->addWidget(slider_, 1);
  controls->addWidget(slider_label_);
  controls->addWidget(log_box_);
  controls->addWidget(follow_box_);
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(0, 0, 0, 0);
  layout->addLayout(controls);
  layout->addWidget(plot_, 1);
  set_smoothing(beta_);

  timer_ = new QTimer(this);
  timer_->setInterval(33);
  connect(timer_, &QTimer::timeout, this, &LossPlot::refresh);
  timer_->start();
}

void LossPlot::create_hover_items() {
  // Attached to the smoothed graph on the first hover: a tracer on a graph
  // without data complains at every replot.
  tracer_ = new QCPItemTracer(plot_);
  tracer_->setStyle(QCPItemTracer::tsCircle);
  tracer_->setVisible(false);
  readout_ = new QCPItemText(plot_);
  readout_->setPositionAlignment(Qt::AlignLeft | Qt::AlignTop);
  readout_->position->setType(QCPItemPosition::ptAxisRectRatio);
  readout_->position->setCoords(0.01, 0.01);
  readout_->setPadding(QMargins(4, 2, 4, 2));
  readout_->setBrush(QBrush(QColor(255, 255, 255, 220)));
  readout_->setVisible(false);
}

void LossPlot::clear() {
  for (QCPGraph* g : {raw_, smooth_, eval_, accuracy_, lr_}) g->data()->clear();
  plot_->clearItems();  // the markers, and with them the hover items
  create_hover_items();
  ema_ = 0;
  count_ = 0;
  markers_ = 0;
  last_step_ = 0;
  dirty_ = true;
}

void LossPlot::add_train_point(double step, double loss, double lr) {
  raw_->addData(step, loss);
  lr_->addData(step, lr);
  ++count_;
  ema_ = beta_ * ema_ + (1 - beta_) * loss;
  smooth_->addData(step, ema_ / (1 - std::pow(beta_, static_cast<double>(count_))));
  last_step_ = step;
  dirty_ = true;
}

void LossPlot::add_eval_point(double step, double loss, double accuracy) {
  if (std::isfinite(loss)) eval_->addData(step, loss);
  if (std::isfinite(accuracy)) accuracy_->addData(step, 100 * accuracy);
  dirty_ = true;
}

void LossPlot::add_marker(double step, const QString& label) {
  auto* line = new QCPItemStraightLine(plot_);
  line->point1->setCoords(step, 0);
  line->point2->setCoords(step, 1);
  line->setPen(QPen(QColor(127, 127, 127), 1, Qt::DotLine));
  line->setObjectName(label);
  auto* text = new QCPItemText(plot_);
  text->position->setTypeX(QCPItemPosition::ptPlotCoords);
  text->position->setTypeY(QCPItemPosition::ptAxisRectRatio);
  text->position->setCoords(step, 0.0);
  text->setPositionAlignment(Qt::AlignLeft | Qt::AlignTop);
  text->setText(label);
  text->setColor(QColor(110, 110, 110));
  text->setFont(QFont(font().family(), 8));
  text->setClipToAxisRect(true);
  ++markers_;
  dirty_ = true;
}

// Debiased EMA over the whole history; the running state then continues it.
void LossPlot::rebuild_smoothed() {
  smooth_->data()->clear();
  QVector<double> keys, values;
  keys.reserve(raw_->data()->size());
  values.reserve(raw_->data()->size());
  ema_ = 0;
  count_ = 0;
  for (auto it = raw_->data()->constBegin(); it != raw_->data()->constEnd(); ++it) {
    ++count_;
    ema_ = beta_ * ema_ + (1 - beta_) * it->value;
    keys.push_back(it->key);
    values.push_back(ema_ / (1 - std::pow(beta_, static_cast<double>(count_))));
  }
  smooth_->setData(keys, values, true);
}

void LossPlot::set_smoothing(double beta) {
  beta_ = std::clamp(beta, 0.0, 0.999);
  slider_label_->setText(QString::number(beta_, 'f', 3));
  if (slider_->value() != static_cast<int>(std::lround(beta_ * 1000))) slider_->setValue(static_cast<int>(std::lround(beta_ * 1000)));
  rebuild_smoothed();
  dirty_ = true;
}

void LossPlot::set_log_scale(bool on) {
  set_log_axis(plot_->axisRect()->axis(QCPAxis::atLeft), on);
  if (log_box_->isChecked() != on) log_box_->setChecked(on);
  dirty_ = true;
}

void LossPlot::set_follow(bool on) {
  follow_ = on;
  if (follow_box_->isChecked() != on) follow_box_->setChecked(on);
  dirty_ = true;
}

void LossPlot::refresh() {
  if (!dirty_) return;
  dirty_ = false;
  QCPAxis* x = plot_->axisRect()->axis(QCPAxis::atBottom);
  if (follow_)
    x->setRange(std::max(0.0, last_step_ - kFollowWindow), std::max(1.0, last_step_));
  else
    x->setRange(0, std::max(1.0, last_step_));
  // Fit the loss axis to what is visible (both graphs, both kinds of loss).
  bool found = false;
  QCPRange range;
  for (QCPGraph* g : {raw_, eval_}) {
    bool ok = false;
    const QCPRange r = g->getValueRange(ok, QCP::sdBoth, x->range());
    if (!ok) continue;
    range = found ? QCPRange(std::min(range.lower, r.lower), std::max(range.upper, r.upper)) : r;
    found = true;
  }
  if (found) {
    QCPAxis* y = plot_->axisRect()->axis(QCPAxis::atLeft);
    y->setRange(padded_range(range.lower, range.upper, y->scaleType() == QCPAxis::stLogarithmic));
  }
  bool lr_found = false;
  const QCPRange lr = lr_->getValueRange(lr_found, QCP::sdBoth, x->range());
  if (lr_found) lr_rect_->axis(QCPAxis::atLeft)->setRange(0, lr.upper > 0 ? lr.upper * 1.1 : 1.0);
  plot_->replot(QCustomPlot::rpQueuedReplot);
}

void LossPlot::on_mouse_move(QMouseEvent* event) {
  if (smooth_->data()->isEmpty()) return;
  const double key = plot_->axisRect()->axis(QCPAxis::atBottom)->pixelToCoord(event->pos().x());
  auto it = smooth_->data()->findBegin(key);
  if (it == smooth_->data()->constEnd()) return;
  const double step = it->key;
  auto raw_it = raw_->data()->findBegin(step);
  auto lr_it = lr_->data()->findBegin(step);
  QString text = tr("step %1\nloss %2 (smoothed %3)").arg(step).arg(raw_it->value, 0, 'f', 4).arg(it->value, 0, 'f', 4);
  if (lr_it != lr_->data()->constEnd()) text += tr("\nlr %1").arg(lr_it->value, 0, 'e', 2);
  auto ev = eval_->data()->findBegin(step);
  if (ev != eval_->data()->constEnd() && ev->key == step) text += tr("\nheld-out %1").arg(ev->value, 0, 'f', 4);
  tracer_->setGraph(smooth_);
  tracer_->setGraphKey(step);
  tracer_->setVisible(true);
  readout_->setText(text);
  readout_->setVisible(true);
  plot_->replot(QCustomPlot::rpQueuedReplot);
}

int LossPlot::train_points() const { return raw_->data()->size(); }
int LossPlot::eval_points() const { return eval_->data()->size(); }

bool LossPlot::save_png(const QString& file) { return plot_->savePng(file, 0, 0, 2.0); }
bool LossPlot::save_pdf(const QString& file) { return plot_->savePdf(file); }

}  // namespace lwb::ui
