#include "ui/report_plot.h"

#include <qcustomplot.h>

#include <QApplication>
#include <QBuffer>
#include <algorithm>
#include <cmath>
#include <memory>

#include "ui/memory_view.h"

namespace lwb::ui {

namespace {

// Matplotlib's tab10, so the plots look like what a researcher expects.
QColor series_color(const PlotSpec& spec, int i) {
  // The memory plots stack the ledger's categories: the Memory view's colours.
  if (spec.stacked && spec.series.size() == static_cast<std::size_t>(kMemCategoryCount))
    return mem_category_color(static_cast<MemCategory>(i));
  static const QColor tab10[] = {{31, 119, 180}, {255, 127, 14}, {44, 160, 44},  {214, 39, 40},   {148, 103, 189},
                                 {140, 86, 75},  {227, 119, 194}, {127, 127, 127}, {188, 189, 34}, {23, 190, 207}};
  return tab10[i % 10];
}

double or_zero(double v) { return std::isfinite(v) ? v : 0; }

}  // namespace

void draw_plot(QCustomPlot* plot, const PlotSpec& spec) {
  plot->clearPlottables();
  plot->plotLayout()->clear();
  auto* rect = new QCPAxisRect(plot);
  plot->plotLayout()->addElement(0, 0, new QCPTextElement(plot, QString::fromStdString(spec.title),
                                                          QFont(plot->font().family(), 10, QFont::Bold)));
  plot->plotLayout()->addElement(1, 0, rect);
  QCPAxis* x = rect->axis(QCPAxis::atBottom);
  QCPAxis* y = rect->axis(QCPAxis::atLeft);
  y->setLabel(QString::fromStdString(spec.y_label));
  auto ticker = QSharedPointer<QCPAxisTickerText>::create();
  for (std::size_t c = 0; c < spec.categories.size(); ++c)
    ticker->addTick(static_cast<double>(c), QString::fromStdString(spec.categories[c]));
  x->setTicker(ticker);
  // Names wider than their bar's slot are turned, so that neighbours never
  // overlap; judged at every replot, as the plot's width changes (the axis
  // rect owns the connection, so the next draw drops it).
  const QFontMetrics metrics(x->tickLabelFont());
  int widest = 0;
  for (const std::string& c : spec.categories)
    widest = std::max(widest, metrics.horizontalAdvance(QString::fromStdString(c)));
  const double categories = static_cast<double>(std::max<std::size_t>(1, spec.categories.size()));
  const auto turn = [plot, x, widest, categories] {
    x->setTickLabelRotation(widest + 8 > 0.8 * plot->width() / categories ? -35 : 0);
  };
  turn();
  QObject::connect(plot, &QCustomPlot::beforeReplot, rect, turn);
  x->setRange(-0.6, static_cast<double>(spec.categories.size()) - 0.4);
  x->grid()->setVisible(false);

  auto* legend = new QCPLegend;
  rect->insetLayout()->addElement(legend, Qt::AlignTop | Qt::AlignRight);
  legend->setLayer("legend");
  legend->setFont(QFont(plot->font().family(), 8));
  legend->setVisible(spec.series.size() > 1);

  QCPBarsGroup* group = spec.stacked || spec.series.size() < 2 ? nullptr : new QCPBarsGroup(plot);
  const double width = spec.stacked || spec.series.size() < 2 ? 0.6 : 0.8 / static_cast<double>(spec.series.size());
  QCPBars* below = nullptr;
  double top = 0;
  std::vector<double> stack(spec.categories.size(), 0.0);
  for (std::size_t s = 0; s < spec.series.size(); ++s) {
    const PlotSeries& series = spec.series[s];
    auto* bars = new QCPBars(x, y);
    bars->setName(QString::fromStdString(series.name));
    bars->setBrush(series_color(spec, static_cast<int>(s)));
    bars->setPen(Qt::NoPen);
    bars->setWidth(width);
    if (group) bars->setBarsGroup(group);
    if (spec.stacked && below) bars->moveAbove(below);
    below = bars;
    QVector<double> keys, values, errors;
    bool any_error = false;
    for (std::size_t c = 0; c < spec.categories.size(); ++c) {
      keys.push_back(static_cast<double>(c));
      const double v = c < series.values.size() ? or_zero(series.values[c]) : 0;
      const double e = c < series.errors.size() ? series.errors[c] : NAN;
      values.push_back(v);
      errors.push_back(or_zero(e));
      any_error = any_error || std::isfinite(e);
      stack[c] += v;
      top = std::max(top, (spec.stacked ? stack[c] : v) + or_zero(e));
    }
    bars->setData(keys, values, true);
    bars->addToLegend(legend);
    if (any_error && !spec.stacked) {
      auto* err = new QCPErrorBars(x, y);
      err->removeFromLegend();
      err->setDataPlottable(bars);
      err->setData(errors);
      err->setPen(QPen(Qt::black, 1.2));
      err->setWhiskerWidth(8);
      err->setSymbolGap(0);
    }
  }
  // Room above the bars for the legend's rows, which sit at the top right over the last category.
  const double headroom = legend->visible() ? 1.15 + 0.08 * static_cast<double>(spec.series.size()) : 1.15;
  y->setRange(0, top > 0 ? top * headroom : 1);
}

QByteArray render_plot_png(const PlotSpec& spec, int width, int height) {
  QCustomPlot plot;
  plot.resize(width, height);
  draw_plot(&plot, spec);
  plot.replot();
  QByteArray bytes;
  QBuffer buffer(&bytes);
  buffer.open(QIODevice::WriteOnly);
  plot.toPixmap(width, height).save(&buffer, "PNG");
  return bytes;
}

std::vector<ComparisonFile> render_study_plots(const std::vector<PlotSpec>& plots) {
  std::unique_ptr<QApplication> app;
  if (!QCoreApplication::instance()) {
    if (qEnvironmentVariableIsEmpty("QT_QPA_PLATFORM")) qputenv("QT_QPA_PLATFORM", "offscreen");
    static int argc = 1;
    static char name[] = "lora-workbench";
    static char* argv[] = {name, nullptr};
    app = std::make_unique<QApplication>(argc, argv);
  }
  std::vector<ComparisonFile> files;
  for (const PlotSpec& p : plots) {
    const QByteArray png = render_plot_png(p);
    files.push_back({p.file, std::vector<std::uint8_t>(png.begin(), png.end())});
  }
  return files;
}

}  // namespace lwb::ui
