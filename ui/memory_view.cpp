#include "ui/memory_view.h"

#include <qcustomplot.h>

#include <QLabel>
#include <QVBoxLayout>
#include <algorithm>

#include "core/plan/planner.h"
#include "ui/plot_style.h"

namespace lwb::ui {

namespace {
constexpr double kMiB = 1024.0 * 1024.0;
}  // namespace

QColor mem_category_color(MemCategory c) {
  static const QColor colors[kMemCategoryCount] = {
      QColor(127, 127, 127),  // frozen weights
      QColor(31, 119, 180),   // trainable weights
      QColor(255, 127, 14),   // activations
      QColor(214, 39, 40),    // gradients
      QColor(148, 103, 189),  // optimizer state
      QColor(188, 189, 34),   // workspace
  };
  return colors[static_cast<int>(c)];
}

QString mem_category_html(MemCategory c) {
  return QString("<span style='color:%1'>&#9632;</span> %2")
      .arg(mem_category_color(c).name(), QString::fromUtf8(mem_category_name(c)));
}

CategoryBars::CategoryBars(QCustomPlot* plot, Qt::Orientation orientation, bool legend)
    : plot_(plot), orientation_(orientation) {
  plot->legend->setFont(QFont(plot->font().family(), 8));
  if (legend) put_legend_below(plot, 3);
  QCPAxis* key = orientation_ == Qt::Horizontal ? plot->yAxis : plot->xAxis;
  QCPAxis* value = orientation_ == Qt::Horizontal ? plot->xAxis : plot->yAxis;
  key->grid()->setZeroLinePen(Qt::NoPen);
  QCPBars* below = nullptr;
  for (int c = 0; c < kMemCategoryCount; ++c) {
    auto* b = new QCPBars(key, value);
    b->setName(QString::fromUtf8(mem_category_name(static_cast<MemCategory>(c))));
    b->setBrush(mem_category_color(static_cast<MemCategory>(c)));
    b->setPen(Qt::NoPen);
    b->setWidth(0.7);
    if (below) b->moveAbove(below);
    below = b;
    bars_[c] = b;
  }
  if (orientation_ == Qt::Horizontal)
    QObject::connect(plot, &QCustomPlot::beforeReplot, plot, [this] { thin_labels(); });
}

void CategoryBars::thin_labels() {
  constexpr int kLabelPixels = 14;  // a label and a little air
  const int height = std::max(plot_->axisRect()->height(), 1);
  const int every = std::max(1, (static_cast<int>(labels_.size()) * kLabelPixels + height - 1) / height);
  if (every == shown_every_) return;
  shown_every_ = every;
  auto ticker = QSharedPointer<QCPAxisTickerText>(new QCPAxisTickerText);
  for (int i = 0; i < labels_.size(); i += every) ticker->addTick(i, labels_[i]);
  bars_[0]->keyAxis()->setTicker(ticker);
}

double CategoryBars::set(const QVector<QString>& labels, const std::vector<CategoryBytes>& stacks, double unit) {
  unit_ = unit;
  labels_ = labels;
  shown_every_ = 0;
  QVector<double> keys;
  for (int i = 0; i < labels.size(); ++i) keys.push_back(i);
  double largest = 0;
  for (const CategoryBytes& s : stacks) {
    double sum = 0;
    for (std::size_t b : s) sum += static_cast<double>(b) / unit;
    largest = std::max(largest, sum);
  }
  for (int c = 0; c < kMemCategoryCount; ++c) {
    QVector<double> values;
    for (const CategoryBytes& s : stacks) values.push_back(static_cast<double>(s[c]) / unit);
    bars_[c]->setData(keys, values, true);
  }
  auto ticker = QSharedPointer<QCPAxisTickerText>(new QCPAxisTickerText);
  ticker->addTicks(keys, labels);
  QCPAxis* key = bars_[0]->keyAxis();
  key->setTicker(ticker);
  key->setRange(-0.7, static_cast<double>(labels.size()) - 0.3);
  key->setRangeReversed(orientation_ == Qt::Horizontal);
  return largest;
}

double CategoryBars::set_layers(const std::vector<LedgerSnapshot::Row>& rows, double unit) {
  QVector<QString> labels;
  std::vector<CategoryBytes> stacks;
  for (const auto& row : rows) {
    labels.push_back(row.layer == kModelLevel ? QObject::tr("model") : QObject::tr("layer %1").arg(row.layer));
    stacks.push_back(row.bytes);
  }
  return set(labels, stacks, unit);
}

void CategoryBars::clear() {
  for (QCPBars* b : bars_) b->data()->clear();
}

int CategoryBars::stacks() const { return bars_[0]->data()->size(); }

QString format_bytes(double bytes) { return QString::fromStdString(format_plan_bytes(bytes, 1)); }

MemoryView::MemoryView(QWidget* parent) : QWidget(parent) {
  bars_ = new QCustomPlot(this);
  bars_->setMinimumHeight(260);
  category_bars_ = std::make_unique<CategoryBars>(bars_, Qt::Horizontal);

  // The device's used memory moves by little against its total: the axis
  // fits what is used (the total is in the label), and this run's own
  // buffers (the ledger) have their own axis on the right.
  device_ = new QCustomPlot(this);
  device_->setMinimumHeight(170);
  device_->xAxis->setLabel(tr("step"));
  device_->xAxis->setTicker(step_ticker());
  device_->yAxis2->setVisible(true);
  used_ = device_->addGraph();
  used_->setName(tr("device used by all processes"));
  used_->setPen(QPen(QColor(214, 39, 40), 1.5));
  own_ = device_->addGraph(device_->xAxis, device_->yAxis2);
  own_->setName(tr("this run's buffers (ledger)"));
  own_->setPen(QPen(QColor(31, 119, 180), 1.5));
  own_->setLineStyle(QCPGraph::lsStepLeft);
  device_->legend->setFont(QFont(font().family(), 8));
  put_legend_below(device_);
  device_->setVisible(false);

  summary_ = new QLabel;
  summary_->setWordWrap(true);  // the legend line must not set the window's width
  summary_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  auto* layout = new QVBoxLayout(this);
  layout->addWidget(summary_);
  layout->addWidget(bars_, 3);
  layout->addWidget(device_, 1);
}

void MemoryView::clear() {
  category_bars_->clear();
  used_->data()->clear();
  own_->data()->clear();
  ledger_total_ = 0;
  device_->setVisible(false);
  summary_->clear();
  bars_->replot(QCustomPlot::rpQueuedReplot);
}

void MemoryView::set_snapshot(const LedgerSnapshot& s) { show_snapshot(s, false); }

void MemoryView::set_run_ended(const LedgerSnapshot& s) { show_snapshot(s, true); }

void MemoryView::show_snapshot(const LedgerSnapshot& s, bool ended) {
  ledger_total_ = static_cast<double>(s.total);
  std::size_t largest = 0;
  for (const auto& row : s.rows) {
    std::size_t sum = 0;
    for (std::size_t b : row.bytes) sum += b;
    largest = std::max(largest, sum);
  }
  const auto [unit, unit_name] = binary_unit(static_cast<double>(largest));
  const double top = category_bars_->set_layers(s.rows, unit);
  bars_->xAxis->setLabel(unit_name);
  bars_->xAxis->setRange(0, top * 1.08 + 1e-9);
  // Once the run has ended nothing is "now": its buffers are freed.
  QString text = ended ? tr("Run ended: peak <b>%1</b>; the bars show its buffers at the end — ")
                             .arg(format_bytes(static_cast<double>(s.peak_total)))
                       : tr("<b>%1</b> now, peak %2 — ").arg(format_bytes(static_cast<double>(s.total)),
                                                            format_bytes(static_cast<double>(s.peak_total)));
  for (int c = 0; c < kMemCategoryCount; ++c)
    text += QString("%1 %2&nbsp; ").arg(mem_category_html(static_cast<MemCategory>(c)),
                                        format_bytes(static_cast<double>(s.current[c])));
  summary_->setText(text);
  bars_->replot(QCustomPlot::rpQueuedReplot);
}

void MemoryView::add_device_point(double step, double used_bytes, double total_bytes) {
  if (total_bytes <= 0) return;
  const double gib = 1024.0 * kMiB;
  used_->addData(step, used_bytes / gib);
  own_->addData(step, ledger_total_ / kMiB);
  // The axis is short: the total goes in the legend.
  device_->yAxis->setLabel(tr("device, GiB"));
  used_->setName(tr("device used by all processes, of %1 (system RAM on the CPU)").arg(format_bytes(total_bytes)));
  device_->yAxis2->setLabel(tr("this run, MiB"));
  device_->setVisible(true);
  device_->xAxis->rescale();
  bool ok = false;
  const QCPRange used = used_->getValueRange(ok);
  if (ok) device_->yAxis->setRange(padded_range(used.lower, used.upper, false));
  const QCPRange own = own_->getValueRange(ok);
  if (ok) device_->yAxis2->setRange(0, std::max(own.upper * 1.15, 1e-3));
  device_->replot(QCustomPlot::rpQueuedReplot);
}

bool MemoryView::save_png(const QString& file) { return bars_->savePng(file, 0, 0, 2.0); }

}  // namespace lwb::ui
