#include "ui/plot_style.h"

#include <qcustomplot.h>

#include <cmath>

namespace lwb::ui {

namespace {

class StepTicker : public QCPAxisTicker {
 protected:
  double getTickStep(const QCPRange& range) override {
    const double step = QCPAxisTicker::getTickStep(range);
    if (step <= 1) return 1;
    const double magnitude = std::pow(10.0, std::floor(std::log10(step)));
    const double mantissa = step / magnitude;
    // 2.5 of a power of ten is not a whole step below 10; 2 is.
    return (std::abs(mantissa - 2.5) < 1e-9 && magnitude < 10 ? 2.0 : mantissa) * magnitude;
  }
};

// Ticks at m·10^k for the multipliers that give a readable count: 1-2-5
// usually, 1..9 on a short range, powers of ten (or every few) on a long one.
class LogTicker : public QCPAxisTicker {
 protected:
  QVector<double> createTickVector(double, const QCPRange& range) override {
    QVector<double> ticks;
    if (!(range.lower > 0) || !(range.upper > range.lower)) return ticks;
    const int lo = static_cast<int>(std::floor(std::log10(range.lower)));
    const int hi = static_cast<int>(std::ceil(std::log10(range.upper)));
    auto make = [&](std::initializer_list<double> multipliers, int decade_step) {
      QVector<double> t;
      for (int k = lo; k <= hi; ++k) {
        if ((k - lo) % decade_step != 0) continue;
        for (double m : multipliers) {
          const double v = m * std::pow(10.0, k);
          if (v >= range.lower * (1 - 1e-9) && v <= range.upper * (1 + 1e-9)) t.push_back(v);
        }
      }
      return t;
    };
    ticks = make({1, 2, 5}, 1);
    // Less than a decade: add 3s before every digit, which crowd a short axis.
    if (ticks.size() < 3) ticks = make({1, 2, 3, 5}, 1);
    if (ticks.size() < 3) ticks = make({1, 2, 3, 4, 5, 6, 7, 8, 9}, 1);
    if (ticks.size() > 10) ticks = make({1}, 1);
    for (int step = 2; ticks.size() > 10; ++step) ticks = make({1}, step);
    return ticks;
  }
  int getSubTickCount(double) override { return 0; }
};

}  // namespace

void put_legend_below(QCustomPlot* plot, int columns) {
  auto* row = new QCPLayoutGrid;
  const int at = plot->plotLayout()->rowCount();
  plot->plotLayout()->addElement(at, 0, row);
  plot->plotLayout()->setRowStretchFactor(at, 0.001);
  row->setMargins(QMargins(4, 0, 4, 4));
  row->addElement(0, 0, plot->legend);  // taken out of the axis rect's inset layout
  plot->legend->setFillOrder(QCPLegend::foColumnsFirst);
  plot->legend->setWrap(columns);
  plot->legend->setBorderPen(Qt::NoPen);
  plot->legend->setBrush(Qt::NoBrush);
  plot->legend->setVisible(true);
}

QSharedPointer<QCPAxisTicker> step_ticker() { return QSharedPointer<QCPAxisTicker>(new StepTicker); }

void set_log_axis(QCPAxis* axis, bool log) {
  axis->setScaleType(log ? QCPAxis::stLogarithmic : QCPAxis::stLinear);
  axis->setTicker(log ? QSharedPointer<QCPAxisTicker>(new LogTicker) : QSharedPointer<QCPAxisTicker>(new QCPAxisTicker));
  axis->setNumberFormat("g");
  axis->setNumberPrecision(log ? 3 : 6);
}

QCPRange padded_range(double lo, double hi, bool log) {
  if (log) {
    lo = std::max(lo, 1e-12);
    hi = std::max(hi, lo);
    if (hi / lo < 1.2) return QCPRange(lo / 1.5, hi * 1.5);
    return QCPRange(lo / 1.1, hi * 1.1);
  }
  const double span = hi - lo;
  const double scale = std::max(std::abs(lo), std::abs(hi));
  if (!(span > 1e-9 * std::max(scale, 1e-12))) {
    const double half = std::max(0.05 * scale, 1e-3);
    return QCPRange(lo - half, hi + half);
  }
  return QCPRange(lo - 0.05 * span, hi + 0.05 * span);
}

std::pair<double, QString> binary_unit(double bytes) {
  const double kib = 1024, mib = kib * 1024, gib = mib * 1024;
  if (bytes >= gib) return {gib, "GiB"};
  if (bytes >= mib) return {mib, "MiB"};
  return {kib, "KiB"};
}

QColor run_color(qint64 run_id) {
  // Tableau 10, by id, so a run keeps its colour whatever else is shown.
  static const QColor colors[] = {QColor(31, 119, 180), QColor(255, 127, 14), QColor(44, 160, 44),
                                  QColor(214, 39, 40),  QColor(148, 103, 189), QColor(140, 86, 75),
                                  QColor(227, 119, 194), QColor(127, 127, 127), QColor(188, 189, 34),
                                  QColor(23, 190, 207)};
  return colors[static_cast<std::size_t>((run_id - 1) % 10 + 10) % 10];
}

}  // namespace lwb::ui
