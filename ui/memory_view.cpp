#include "ui/memory_view.h"

#include <qcustomplot.h>

#include <QLabel>
#include <QVBoxLayout>
#include <algorithm>

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

CategoryBars::CategoryBars(QCustomPlot* plot, Qt::Orientation orientation) : orientation_(orientation) {
  plot->legend->setVisible(true);
  plot->legend->setFont(QFont(plot->font().family(), 8));
  plot->axisRect()->insetLayout()->setInsetAlignment(0, Qt::AlignTop | Qt::AlignRight);
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
}

double CategoryBars::set(const QVector<QString>& labels, const std::vector<CategoryBytes>& stacks, double unit) {
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

double CategoryBars::set_layers(const std::vector<LedgerSnapshot::Row>& rows, const CategoryBytes& total,
                                double unit) {
  QVector<QString> labels;
  std::vector<CategoryBytes> stacks;
  for (const auto& row : rows) {
    labels.push_back(row.layer == kModelLevel ? QObject::tr("model") : QObject::tr("layer %1").arg(row.layer));
    stacks.push_back(row.bytes);
  }
  labels.push_back(QObject::tr("total"));
  stacks.push_back(total);
  return set(labels, stacks, unit);
}

void CategoryBars::clear() {
  for (QCPBars* b : bars_) b->data()->clear();
}

int CategoryBars::stacks() const { return bars_[0]->data()->size(); }

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
  category_bars_ = std::make_unique<CategoryBars>(bars_, Qt::Horizontal);
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
  category_bars_->clear();
  used_->data()->clear();
  total_->data()->clear();
  peak_line_->setVisible(false);
  device_->setVisible(false);
  summary_->clear();
  bars_->replot(QCustomPlot::rpQueuedReplot);
}

void MemoryView::set_snapshot(const LedgerSnapshot& s) {
  category_bars_->set_layers(s.rows, s.current, kMiB);
  const double peak = static_cast<double>(s.peak_total) / kMiB;
  bars_->xAxis->setRange(0, std::max(peak, static_cast<double>(s.total) / kMiB) * 1.08 + 1e-9);
  peak_line_->point1->setCoords(peak, 0);
  peak_line_->point2->setCoords(peak, 1);
  peak_line_->setVisible(true);
  QString text = tr("<b>%1</b> now, peak %2 — ").arg(format_bytes(static_cast<double>(s.total)),
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
  total_->addData(step, total_bytes / gib);
  device_->setVisible(true);
  device_->rescaleAxes();
  device_->yAxis->setRangeLower(0);
  device_->replot(QCustomPlot::rpQueuedReplot);
}

bool MemoryView::save_png(const QString& file) { return bars_->savePng(file, 0, 0, 2.0); }

}  // namespace lwb::ui
