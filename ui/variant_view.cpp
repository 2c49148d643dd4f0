#include "ui/variant_view.h"

#include <qcustomplot.h>

#include <QLabel>
#include <QVBoxLayout>

#include "core/adapters/adalora_allocator.h"
#include "core/adapters/dora_monitor.h"
#include "core/adapters/relora.h"

namespace lwb::ui {

namespace {
// "model.layers.3.self_attn.q_proj" -> (3, "q_proj")
std::pair<int, QString> split_module(const std::string& name) {
  const QString n = QString::fromStdString(name);
  const QStringList parts = n.split('.');
  return {parts.size() > 2 ? parts[2].toInt() : 0, parts.isEmpty() ? n : parts.last()};
}
}  // namespace

VariantView::VariantView(QWidget* parent) : QWidget(parent) {
  note_ = new QLabel(tr("AdaLoRA, DoRA and ReLoRA runs show their own view here."));
  note_->setWordWrap(true);
  ranks_ = new QCustomPlot(this);
  ranks_->setMinimumHeight(220);
  ranks_->xAxis->setLabel(tr("step"));
  ranks_->yAxis->setLabel(tr("module"));
  rank_map_ = new QCPColorMap(ranks_->xAxis, ranks_->yAxis);
  auto* scale = new QCPColorScale(ranks_);
  ranks_->plotLayout()->addElement(0, 1, scale);
  scale->axis()->setLabel(tr("kept rank"));
  rank_map_->setColorScale(scale);
  rank_map_->setGradient(QCPColorGradient::gpThermal);
  rank_map_->setInterpolate(false);
  ranks_->setVisible(false);

  magnitude_ = new QCustomPlot(this);
  magnitude_->setMinimumHeight(200);
  magnitude_->xAxis->setLabel(tr("layer"));
  magnitude_->yAxis->setLabel(tr("||m - m0|| / ||m0||"));
  magnitude_->legend->setVisible(true);
  magnitude_->setVisible(false);

  auto* layout = new QVBoxLayout(this);
  layout->addWidget(note_);
  layout->addWidget(ranks_, 1);
  layout->addWidget(magnitude_, 1);
}

void VariantView::clear() {
  modules_.clear();
  rank_history_.clear();
  relora_notes_.clear();
  rank_map_->data()->clear();
  magnitude_->clearPlottables();
  ranks_->setVisible(false);
  magnitude_->setVisible(false);
  note_->setText(tr("AdaLoRA, DoRA and ReLoRA runs show their own view here."));
}

void VariantView::add_event(const VariantEvent& e) {
  if (const auto ranks = AdaLoraRanksEvent::decode(e)) {
    if (modules_.empty())
      for (const auto& [name, rank] : ranks->ranks) modules_.push_back(name);
    const double step = ranks->step ? static_cast<double>(*ranks->step + 1)
                                    : (rank_history_.empty() ? 0 : rank_history_.back().first + 1);
    rank_history_.emplace_back(step, ranks->ranks);
    note_->setText(tr("AdaLoRA: %1 mask updates, %2 ranks kept of the budget at the last one")
                       .arg(rank_history_.size())
                       .arg(ranks->kept_total()));
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
  const int nx = static_cast<int>(rank_history_.size()), ny = static_cast<int>(modules_.size());
  if (nx == 0 || ny == 0) return;
  rank_map_->data()->setSize(nx, ny);
  rank_map_->data()->setRange(QCPRange(rank_history_.front().first, rank_history_.back().first + (nx == 1 ? 1 : 0)),
                              QCPRange(0, ny - 1));
  for (int x = 0; x < nx; ++x)
    for (int y = 0; y < ny; ++y) {
      const auto& ranks = rank_history_[static_cast<std::size_t>(x)].second;
      const auto it = ranks.find(modules_[static_cast<std::size_t>(y)]);
      rank_map_->data()->setCell(x, y, it == ranks.end() ? 0 : it->second);
    }
  auto ticker = QSharedPointer<QCPAxisTickerText>(new QCPAxisTickerText);
  for (int y = 0; y < ny; ++y) {
    const auto [layer, module] = split_module(modules_[static_cast<std::size_t>(y)]);
    ticker->addTick(y, QString("%1.%2").arg(layer).arg(module));
  }
  ranks_->yAxis->setTicker(ticker);
  ranks_->yAxis->setTickLabelFont(QFont(font().family(), 7));
  rank_map_->rescaleDataRange(true);
  ranks_->rescaleAxes();
  ranks_->setVisible(true);
  ranks_->replot(QCustomPlot::rpQueuedReplot);
}

void VariantView::redraw_magnitude(const std::map<std::string, double>& change) {
  // One line per target module across layers.
  std::map<QString, QVector<QPair<int, double>>> by_target;
  for (const auto& [name, value] : change) {
    const auto [layer, module] = split_module(name);
    by_target[module].push_back({layer, value});
  }
  magnitude_->clearPlottables();
  static const QColor colors[] = {QColor(31, 119, 180), QColor(255, 127, 14), QColor(44, 160, 44),
                                  QColor(214, 39, 40),  QColor(148, 103, 189), QColor(140, 86, 75),
                                  QColor(227, 119, 194)};
  int i = 0;
  for (const auto& [module, points] : by_target) {
    QCPGraph* g = magnitude_->addGraph();
    g->setName(module);
    g->setPen(QPen(colors[i++ % 7], 2));
    g->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCircle, 5));
    for (const auto& [layer, value] : points) g->addData(layer, value);
  }
  magnitude_->rescaleAxes();
  magnitude_->yAxis->setRangeLower(0);
  magnitude_->xAxis->setTicker(QSharedPointer<QCPAxisTickerFixed>(new QCPAxisTickerFixed));
  magnitude_->setVisible(true);
  magnitude_->replot(QCustomPlot::rpQueuedReplot);
}

bool VariantView::save_png(const QString& file) {
  QCustomPlot* p = ranks_->isVisible() ? ranks_ : magnitude_;
  return p->savePng(file, 0, 0, 2.0);
}

}  // namespace lwb::ui
