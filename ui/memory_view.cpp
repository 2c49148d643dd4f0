#include "ui/memory_view.h"

#include <qcustomplot.h>

#include <QLabel>
#include <QVBoxLayout>

namespace lwb::ui {

namespace {
const QColor kCategoryColors[kMemCategoryCount] = {
    QColor(127, 127, 127),  // frozen weights
    QColor(31, 119, 180),   // trainable weights
    QColor(255, 127, 14),   // activations
    QColor(214, 39, 40),    // gradients
    QColor(148, 103, 189),  // optimizer state
    QColor(188, 189, 34),   // workspace
};
constexpr double kMiB = 1024.0 * 1024.0;
}  // namespace

QString format_bytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024 && u < 4) {
    bytes /= 1024;
    ++u;
  }
  return QString("%1 %2").arg(bytes, 0, 'f', u == 0 ? 0 : 1).arg(units[u]);
}

MemoryView::MemoryView(QWidget* parent) : QWidget(parent) {
  bars_ = new QCustomPlot(this);
  bars_->setMinimumHeight(260);
  bars_->xAxis->setLabel(tr("MiB"));
  bars_->legend->setVisible(true);
  bars_->legend->setFont(QFont(font().family(), 8));
  bars_->axisRect()->insetLayout()->setInsetAlignment(0, Qt::AlignTop | Qt::AlignRight);
  bars_->yAxis->grid()->setZeroLinePen(Qt::NoPen);
  QCPBars* below = nullptr;
  for (int c = 0; c < kMemCategoryCount; ++c) {
    // Horizontal bars: the key axis is the vertical one (one key per layer).
    auto* b = new QCPBars(bars_->yAxis, bars_->xAxis);
    b->setName(QString::fromUtf8(mem_category_name(static_cast<MemCategory>(c))));
    b->setBrush(kCategoryColors[c]);
    b->setPen(Qt::NoPen);
    b->setWidth(0.7);
    if (below) b->moveAbove(below);
    below = b;
    category_bars_[c] = b;
  }
  peak_line_ = new QCPItemStraightLine(bars_);
  peak_line_->setPen(QPen(Qt::black, 1, Qt::DashLine));
  peak_line_->setVisible(false);

  device_ = new QCustomPlot(this);
  device_->setMinimumHeight(120);
  device_->xAxis->setLabel(tr("step"));
  device_->yAxis->setLabel(tr("device GiB\n(system RAM on the CPU)"));
  used_ = device_->addGraph();
  used_->setName(tr("used"));
  used_->setPen(QPen(QColor(214, 39, 40)));
  total_ = device_->addGraph();
  total_->setName(tr("total"));
  total_->setPen(QPen(Qt::gray, 1, Qt::DashLine));
  device_->legend->setVisible(true);
  device_->setVisible(false);

  summary_ = new QLabel;
  summary_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  auto* layout = new QVBoxLayout(this);
  layout->addWidget(summary_);
  layout->addWidget(bars_, 3);
  layout->addWidget(device_, 1);
}

void MemoryView::clear() {
  for (QCPBars* b : category_bars_) b->data()->clear();
  used_->data()->clear();
  total_->data()->clear();
  peak_line_->setVisible(false);
  device_->setVisible(false);
  summary_->clear();
  bars_->replot(QCustomPlot::rpQueuedReplot);
}

void MemoryView::set_snapshot(const LedgerSnapshot& s) {
  // Rows: the model-level buffers, each layer, then the total.
  QVector<double> keys;
  QVector<QString> labels;
  for (std::size_t i = 0; i < s.rows.size(); ++i) {
    keys.push_back(static_cast<double>(i));
    labels.push_back(s.rows[i].layer == kModelLevel ? tr("model") : tr("layer %1").arg(s.rows[i].layer));
  }
  const double total_key = static_cast<double>(s.rows.size());
  keys.push_back(total_key);
  labels.push_back(tr("total"));
  for (int c = 0; c < kMemCategoryCount; ++c) {
    QVector<double> values;
    for (const auto& row : s.rows) values.push_back(static_cast<double>(row.bytes[c]) / kMiB);
    values.push_back(static_cast<double>(s.current[c]) / kMiB);
    category_bars_[c]->setData(keys, values, true);
  }
  auto ticker = QSharedPointer<QCPAxisTickerText>(new QCPAxisTickerText);
  ticker->addTicks(keys, labels);
  bars_->yAxis->setTicker(ticker);
  bars_->yAxis->setRange(-0.7, total_key + 0.7);
  bars_->yAxis->setRangeReversed(true);
  const double peak = static_cast<double>(s.peak_total) / kMiB;
  bars_->xAxis->setRange(0, std::max(peak, static_cast<double>(s.total) / kMiB) * 1.08 + 1e-9);
  peak_line_->point1->setCoords(peak, 0);
  peak_line_->point2->setCoords(peak, 1);
  peak_line_->setVisible(true);
  QString text = tr("<b>%1</b> now, peak %2 — ").arg(format_bytes(static_cast<double>(s.total)),
                                                     format_bytes(static_cast<double>(s.peak_total)));
  for (int c = 0; c < kMemCategoryCount; ++c)
    text += QString("<span style='color:%1'>&#9632;</span> %2 %3&nbsp; ")
                .arg(kCategoryColors[c].name(), QString::fromUtf8(mem_category_name(static_cast<MemCategory>(c))),
                     format_bytes(static_cast<double>(s.current[c])));
  summary_->setText(text);
  bars_->replot(QCustomPlot::rpQueuedReplot);
}

void MemoryView::add_device_point(double step, double used_bytes, double total_bytes) {
  if (total_bytes <= 0) return;
  const double gib = 1024.0 * kMiB;
  used_->addData(step, used_bytes / gib);
  total_->addData(step, total_bytes / gib);
  device_->setVisible(true);
  device_->rescaleAxes();
  device_->yAxis->setRangeLower(0);
  device_->replot(QCustomPlot::rpQueuedReplot);
}

bool MemoryView::save_png(const QString& file) { return bars_->savePng(file, 0, 0, 2.0); }

}  // namespace lwb::ui
