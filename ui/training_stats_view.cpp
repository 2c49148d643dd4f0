#include "ui/training_stats_view.h"

#include <qcustomplot.h>

#include <QComboBox>
#include <QHBoxLayout>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QLabel>
#include <QSignalBlocker>
#include <QSplitter>
#include <QVBoxLayout>

#include "core/train/step_stats.h"
#include "ui/heat_map.h"
#include "ui/plot_style.h"

namespace lwb::ui {

TrainingStatsView::TrainingStatsView(QWidget* parent) : QWidget(parent) {
  note_ = new QLabel(tr("Gradient norms per layer and weight histograms appear as the run reports them."));
  note_->setWordWrap(true);
  norms_plot_ = new QCustomPlot;
  norms_plot_->setMinimumHeight(140);
  norms_plot_->yAxis->setLabel(tr("layer"));
  norms_map_ = std::make_unique<HeatMap>(norms_plot_, tr("gradient L2 norm"));

  histogram_plot_ = new QCustomPlot;
  histogram_plot_->setMinimumHeight(140);
  histogram_plot_->xAxis->setLabel(tr("weight value"));
  histogram_plot_->yAxis->setLabel(tr("count"));
  histogram_plot_->legend->setFont(QFont(font().family(), 8));
  put_legend_below(histogram_plot_);
  step_box_ = new QComboBox;
  step_box_->setObjectName("histogram_step");
  group_box_ = new QComboBox;
  group_box_->setObjectName("histogram_group");
  group_box_->setSizeAdjustPolicy(QComboBox::AdjustToContents);  // module names, not clipped
  connect(step_box_, &QComboBox::currentIndexChanged, this, &TrainingStatsView::redraw_histogram);
  connect(group_box_, &QComboBox::currentIndexChanged, this, &TrainingStatsView::redraw_histogram);

  auto* histogram_panel = new QWidget;
  auto* hl = new QVBoxLayout(histogram_panel);
  hl->setContentsMargins(0, 0, 0, 0);
  auto* pick = new QHBoxLayout;
  pick->addWidget(new QLabel(tr("Weights")));
  pick->addWidget(group_box_);
  pick->addWidget(new QLabel(tr("at step")));
  pick->addWidget(step_box_);
  pick->addStretch(1);
  hl->addLayout(pick);
  hl->addWidget(histogram_plot_, 1);

  auto* split = new QSplitter(Qt::Horizontal);
  split->addWidget(norms_plot_);
  split->addWidget(histogram_panel);
  split->setStretchFactor(0, 3);
  split->setStretchFactor(1, 2);
  auto* layout = new QVBoxLayout(this);
  layout->addWidget(note_);
  layout->addWidget(split, 1);
}

TrainingStatsView::~TrainingStatsView() = default;

void TrainingStatsView::clear() {
  norm_steps_.clear();
  norms_.clear();
  histograms_.clear();
  norms_map_->clear();
  {
    const QSignalBlocker a(step_box_), b(group_box_);
    step_box_->clear();
    group_box_->clear();
  }
  histogram_plot_->clearPlottables();
  histogram_plot_->replot(QCustomPlot::rpQueuedReplot);
}

void TrainingStatsView::set_step_range(const QCPRange& range) { norms_map_->set_step_range(range); }

void TrainingStatsView::add_layer_norms(double step, const std::vector<double>& norms) {
  if (norms.empty()) return;
  norm_steps_.push_back(step);
  norms_.push_back(norms);
  redraw_norms();
}

void TrainingStatsView::redraw_norms() {
  QStringList labels;
  for (std::size_t l = 0; l < norms_.back().size(); ++l) labels << tr("layer %1").arg(l);
  norms_map_->set(norm_steps_, norms_, labels, true);
  note_->setText(tr("Gradient norm of each layer's trainable tensors, sampled every 10 steps (log colour scale); "
                    "weight histograms at the evaluation steps."));
}

void TrainingStatsView::add_event(const VariantEvent& e) {
  if (e.kind != kWeightHistogramKind) return;
  const QJsonObject j = QJsonDocument::fromJson(QByteArray::fromStdString(e.payload_json)).object();
  const double step = j.value("step").toDouble();
  auto& at = histograms_[step];
  for (const QJsonValue& g : j.value("groups").toArray()) {
    const QJsonObject o = g.toObject();
    Histogram h{o.value("lo").toDouble(), o.value("hi").toDouble(), o.value("mean").toDouble(),
                o.value("std").toDouble(), {}};
    for (const QJsonValue& c : o.value("counts").toArray()) h.counts.push_back(c.toDouble());
    at[o.value("name").toString()] = std::move(h);
  }
  const QSignalBlocker a(step_box_), b(group_box_);
  const bool at_latest = step_box_->currentIndex() == step_box_->count() - 1;
  step_box_->addItem(QString::number(step), step);
  if (at_latest) step_box_->setCurrentIndex(step_box_->count() - 1);
  for (const auto& [name, h] : at)
    if (group_box_->findText(name) < 0) group_box_->addItem(name);
  redraw_histogram();
}

void TrainingStatsView::redraw_histogram() {
  histogram_plot_->clearPlottables();
  const QString group = group_box_->currentText();
  const auto chosen = histograms_.find(step_box_->currentData().toDouble());
  if (chosen == histograms_.end() || group.isEmpty()) return histogram_plot_->replot(QCustomPlot::rpQueuedReplot);
  auto draw = [&](double step, const Histogram& h, const QColor& color, bool fill) {
    QCPGraph* g = histogram_plot_->addGraph();
    g->setName(tr("step %1 (mean %2, std %3)").arg(step).arg(h.mean, 0, 'g', 3).arg(h.std, 0, 'g', 3));
    g->setLineStyle(QCPGraph::lsStepCenter);
    g->setPen(QPen(color, 1.5));
    if (fill) g->setBrush(QColor(color.red(), color.green(), color.blue(), 70));
    const double width = h.hi > h.lo ? (h.hi - h.lo) / static_cast<double>(h.counts.size()) : 1;
    for (std::size_t i = 0; i < h.counts.size(); ++i) g->addData(h.lo + (static_cast<double>(i) + 0.5) * width, h.counts[i]);
  };
  const auto& first = histograms_.begin()->second;
  if (histograms_.begin() != chosen && first.contains(group))
    draw(histograms_.begin()->first, first.at(group), QColor(127, 127, 127), false);
  if (chosen->second.contains(group)) draw(chosen->first, chosen->second.at(group), QColor(31, 119, 180), true);
  histogram_plot_->rescaleAxes();
  const QCPRange x = histogram_plot_->xAxis->range();
  histogram_plot_->xAxis->setRange(padded_range(x.lower, x.upper, false));
  histogram_plot_->yAxis->setRange(0, std::max(histogram_plot_->yAxis->range().upper * 1.1, 1.0));
  histogram_plot_->replot(QCustomPlot::rpQueuedReplot);
}

}  // namespace lwb::ui
