// The live plot under load: 100k training steps streamed into the LossPlot as
// fast as the event loop takes them, with the 30 Hz replot timer running.
// Prints the longest event-loop stall, the mean and worst replot time, and
// the time of one full-history replot at the end. Run offscreen:
//   QT_QPA_PLATFORM=offscreen build/tests/bench/bench_ui
#include <qcustomplot.h>

#include <QApplication>
#include <QElapsedTimer>
#include <QTimer>
#include <cmath>
#include <cstdio>

#include "ui/loss_plot.h"

int main(int argc, char** argv) {
  QApplication app(argc, argv);
  lwb::ui::LossPlot plot;
  plot.resize(1200, 700);
  plot.show();
  const int total = 100000, per_tick = 500;  // 500 steps per 1 ms tick: a very fast run
  int step = 0;
  QElapsedTimer clock, replot_clock;
  qint64 last = 0, worst_stall = 0, replots = 0, replot_ns = 0, worst_replot_ns = 0;
  QObject::connect(plot.plot(), &QCustomPlot::beforeReplot, [&] { replot_clock.start(); });
  QObject::connect(plot.plot(), &QCustomPlot::afterReplot, [&] {
    const qint64 ns = replot_clock.nsecsElapsed();
    replot_ns += ns;
    worst_replot_ns = std::max(worst_replot_ns, ns);
    ++replots;
  });
  QTimer feeder;
  QObject::connect(&feeder, &QTimer::timeout, [&] {
    const qint64 now = clock.elapsed();
    worst_stall = std::max(worst_stall, now - last);
    last = now;
    for (int i = 0; i < per_tick && step < total; ++i, ++step) {
      const double s = step + 1;
      plot.add_train_point(s, 3.0 * std::exp(-s / 20000.0) + 0.2 * std::sin(s * 0.37), 1e-3);
      if (step % 1000 == 0) plot.add_eval_point(s, 3.0 * std::exp(-s / 20000.0), 0.5);
    }
    if (step >= total) app.quit();
  });
  clock.start();
  feeder.start(1);
  app.exec();
  const double seconds = clock.elapsed() / 1000.0;
  plot.set_follow(false);
  QElapsedTimer full;
  full.start();
  plot.refresh();
  plot.plot()->replot(QCustomPlot::rpImmediateRefresh);
  std::printf("streamed %d points in %.2f s (%.0f points/s)\n", total, seconds, total / seconds);
  std::printf("event loop: longest stall %lld ms\n", static_cast<long long>(worst_stall));
  std::printf("replots while streaming: %lld, mean %.2f ms, worst %.2f ms\n", static_cast<long long>(replots),
              replots ? replot_ns / 1e6 / replots : 0.0, worst_replot_ns / 1e6);
  std::printf("full-history replot of %d points: %.2f ms\n", plot.train_points(), full.nsecsElapsed() / 1e6);
  return 0;
}
