#include "ui/variant_view.h"

#include <qcustomplot.h>

#include <QLabel>
#include <QVBoxLayout>

#include "core/adapters/adalora_allocator.h"
#include "core/adapters/dora_monitor.h"
#include "core/adapters/relora.h"
#include "ui/heat_map.h"
#include "ui/plot_style.h"

namespace lwb::ui {

namespace {
// "model.layers.3.self_attn.q_proj" -> (3, "q_proj")
std::pair<int, QString> split_module(const std::string& name) {
  const QString n = QString::fromStdString(name);
  const QStringList parts = n.split('.');
  return {parts.size() > 2 ? parts[2].toInt() : 0, parts.isEmpty() ? n : parts.last()};
}

QString idle_text() { return QObject::tr("AdaLoRA, DoRA and ReLoRA runs show their own view here."); }
}  // namespace

VariantView::VariantView(QWidget* parent) : QWidget(parent) {
  note_ = new QLabel(idle_text());
  note_->setWordWrap(true);
  ranks_ = new QCustomPlot(this);
  ranks_->setMinimumHeight(150);
  ranks_->yAxis->setLabel(tr("module"));
  rank_map_ = std::make_unique<HeatMap>(ranks_, tr("kept rank"));
  ranks_->setVisible(false);

  magnitude_ = new QCustomPlot(this);
  magnitude_->setMinimumHeight(150);
  magnitude_->xAxis->setLabel(tr("layer"));
  magnitude_->yAxis->setLabel(tr("||m - m0|| / ||m0||"));
  magnitude_->xAxis->setTicker(step_ticker());
  magnitude_->legend->setFont(QFont(font().family(), 8));
  put_legend_below(magnitude_, 7);
  magnitude_->setVisible(false);

  auto* layout = new QVBoxLayout(this);
  layout->addWidget(note_);
  layout->addWidget(ranks_, 1);
  layout->addWidget(magnitude_, 1);
}

VariantView::~VariantView() = default;

void VariantView::clear() {
  modules_.clear();
  rank_history_.clear();
  relora_notes_.clear();
  rank_map_->clear();
  magnitude_->clearPlottables();
  ranks_->setVisible(false);
  magnitude_->setVisible(false);
  note_->setText(idle_text());
}

void VariantView::set_step_range(const QCPRange& range) { rank_map_->set_step_range(range); }

void VariantView::add_event(const VariantEvent& e, double step) {
  if (const auto ranks = AdaLoraRanksEvent::decode(e)) {
    // Event steps are 0-based step indices; the window counts completed steps.
    if (ranks->step) step = static_cast<double>(*ranks->step + 1);
    if (modules_.empty())
      for (const auto& [name, rank] : ranks->ranks) modules_.push_back(name);
    // The end-of-run summary repeats the last mask at the last step.
    if (!rank_history_.empty() && step <= rank_history_.back().first) step = rank_history_.back().first;
    if (!rank_history_.empty() && step == rank_history_.back().first)
      rank_history_.back().second = ranks->ranks;
    else
      rank_history_.emplace_back(step, ranks->ranks);
    note_->setText(tr("AdaLoRA: %1 ranks kept over %2 modules at step %3 (%4 mask updates)")
                       .arg(ranks->kept_total())
                       .arg(modules_.size())
                       .arg(step)
                       .arg(rank_history_.size()));
    redraw_ranks();
  } else if (const auto magnitude = DoraMagnitudeEvent::decode(e)) {
    note_->setText(tr("DoRA: relative change of the magnitude vectors at step %1").arg(magnitude->step + 1));
    redraw_magnitude(magnitude->magnitude_change);
  } else if (const auto relora = ReLoraEvent::decode(e)) {
    if (relora->reset)
      relora_notes_ << tr("reset %1 at step %2: moments kept %3%, accumulated update rank up to %4")
                           .arg(relora->resets)
                           .arg(relora->step)
                           .arg(100 * relora->moments_kept_fraction, 0, 'f', 1)
                           .arg(relora->max_update_rank());
    else
      relora_notes_ << tr("end: accumulated update rank up to %1 (tolerance %2 of the largest singular value)")
                           .arg(relora->max_update_rank())
                           .arg(relora->rank_tolerance);
    note_->setText(tr("ReLoRA\n") + relora_notes_.join('\n'));
  }
}

void VariantView::redraw_ranks() {
  std::vector<double> steps;
  std::vector<std::vector<double>> values;
  for (const auto& [step, ranks] : rank_history_) {
    steps.push_back(step);
    std::vector<double>& column = values.emplace_back();
    for (const std::string& m : modules_) {
      const auto it = ranks.find(m);
      column.push_back(it == ranks.end() ? NAN : it->second);
    }
  }
  QStringList labels;
  for (const std::string& m : modules_) {
    const auto [layer, module] = split_module(m);
    labels << QString("%1 %2").arg(layer).arg(module);
  }
  ranks_->setVisible(true);
  rank_map_->set(steps, values, labels);
}

void VariantView::redraw_magnitude(const std::map<std::string, double>& change) {
  // One line per target module across layers.
  std::map<QString, QVector<QPair<int, double>>> by_target;
  for (const auto& [name, value] : change) {
    const auto [layer, module] = split_module(name);
    by_target[module].push_back({layer, value});
  }
  magnitude_->clearPlottables();
  int i = 0;
  for (const auto& [module, points] : by_target) {
    QCPGraph* g = magnitude_->addGraph();
    g->setName(module);
    g->setPen(QPen(run_color(++i), 2));
    g->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCircle, 5));
    for (const auto& [layer, value] : points) g->addData(layer, value);
  }
  magnitude_->rescaleAxes();
  magnitude_->yAxis->setRange(0, std::max(magnitude_->yAxis->range().upper * 1.1, 1e-9));
  magnitude_->xAxis->setRange(padded_range(magnitude_->xAxis->range().lower, magnitude_->xAxis->range().upper, false));
  magnitude_->setVisible(true);
  magnitude_->replot(QCustomPlot::rpQueuedReplot);
}

bool VariantView::save_png(const QString& file) {
  QCustomPlot* p = ranks_->isVisible() ? ranks_ : magnitude_;
  return p->savePng(file, 0, 0, 2.0);
}

}  // namespace lwb::ui
