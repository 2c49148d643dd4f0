#include "ui/screenshots.h"

#include <QApplication>
#include <QDir>
#include <QListWidget>
#include <QPushButton>
#include <QTabWidget>
#include <QTimer>
#include <cstdio>

#include "ui/comparison_view.h"
#include "ui/compose_view.h"
#include "ui/experiment_form.h"
#include "ui/loss_plot.h"
#include "ui/main_window.h"
#include "ui/planner_view.h"
#include "ui/training_worker.h"

namespace lwb::ui {

int run_screenshots(int argc, char** argv, const QString& dir, int steps) {
  QApplication app(argc, argv);
  QApplication::setApplicationName("lora-workbench");
  QDir().mkpath(dir);
  MainWindow window;
  window.resize(1400, 900);
  window.form()->set_config(experiment_preset("demo"));
  window.show();
  auto grab = [&](int tab, const QString& name) {
    window.tabs()->setCurrentIndex(tab);
    QApplication::processEvents();
    window.loss_plot()->refresh();
    QApplication::processEvents();
    const QString file = QDir(dir).filePath(name);
    const bool ok = window.grab().save(file);
    std::printf("%s %s\n", ok ? "saved" : "could not save", file.toLocal8Bit().constData());
    return ok;
  };
  int failures = 0;
  // Poll until enough steps are in, then take the live views.
  QTimer poll;
  QTimer::singleShot(300, [&] {
    failures += !grab(0, "setup.png");
    window.start_button()->click();
    poll.start(100);
  });
  QObject::connect(&poll, &QTimer::timeout, [&] {
    if (window.loss_plot()->train_points() < steps && window.training()) return;
    poll.stop();
    failures += !grab(1, "monitor.png");
    failures += !grab(2, "memory.png");
    window.stop_button()->click();
  });
  QObject::connect(&window, &MainWindow::run_finished, [&] {
    failures += !grab(3, "runs.png");
    failures += !grab(window.tabs()->indexOf(window.compose_view()), "compose.png");
    window.planner_view()->lisa_button()->click();
    failures += !grab(window.tabs()->indexOf(window.planner_view()), "planner.png");
    // The comparison views at the two window sizes they must fit, each on
    // the newest stored comparison or study (a data folder that has some:
    // LWB_DATA_DIR), else empty.
    for (auto [view, name] : {std::pair{window.compare_view(), "compare"}, std::pair{window.studies_view(), "studies"}}) {
      view->refresh();
      if (view->history()->count() > 0) view->history()->setCurrentRow(0);
      for (const QSize size : {QSize(1280, 720), QSize(1920, 1080)}) {
        window.resize(size);
        failures += !grab(window.tabs()->indexOf(view),
                          QString("%1-%2x%3.png").arg(name).arg(size.width()).arg(size.height()));
      }
    }
    app.quit();
  });
  app.exec();
  return failures == 0 ? 0 : 1;
}

}  // namespace lwb::ui
