// The Compare and Studies views (offscreen): a stored comparison shows its
// means with 95% intervals in the table and as error bars, its differences
// and what the numbers depend on; a stored study shows its report with its
// plots, and a base fetched meanwhile joins its bases; Run and Stop drive a comparison through the worker and leave it
// stored. LWB_SCREENSHOT_DIR=DIR saves the views at 1280x720 and 1920x1080.
#include <QCheckBox>
#include <QDir>
#include <QFile>
#include <QComboBox>
#include <QListWidget>
#include <QPushButton>
#include <QScopeGuard>
#include <QSignalSpy>
#include <QSpinBox>
#include <QStandardPaths>
#include <QTabWidget>
#include <QTableWidget>
#include <QTemporaryDir>
#include <QtTest>
#include <qcustomplot.h>

#include "core/common/paths.h"
#include "core/store/store.h"
#include "core/study/stored_comparison.h"
#include "core/study/study.h"
#include "ui/comparison_view.h"
#include "ui/main_window.h"
#include "ui/report_plot.h"

using namespace lwb;
using namespace lwb::ui;

class TestUiCompare : public QObject {
  Q_OBJECT
  QTemporaryDir dir;
  std::filesystem::path db() const { return std::filesystem::path(dir.path().toStdString()) / "ui.sqlite3"; }
  TrainerEnvironment env;
  std::int64_t comparison_id = 0, study_id = 0;

  void select(ComparisonView* v, std::int64_t id) {
    v->refresh();
    for (int i = 0; i < v->history()->count(); ++i)
      if (v->history()->item(i)->data(Qt::UserRole).toLongLong() == id) v->history()->setCurrentRow(i);
    QApplication::processEvents();
  }

  void screenshot(QWidget& w, const QString& name) {
    const QString out = qEnvironmentVariable("LWB_SCREENSHOT_DIR");
    if (out.isEmpty()) return;
    for (const QSize size : {QSize(1280, 720), QSize(1920, 1080)}) {
      w.resize(size);
      QApplication::processEvents();
      QVERIFY(w.grab().save(QString("%1/%2-%3x%4.png").arg(out, name).arg(size.width()).arg(size.height())));
    }
  }

 private slots:
  void initTestCase() {
    QStandardPaths::setTestModeEnabled(true);
    QVERIFY(dir.isValid());
    env.data_dir = user_data_dir();
    // A small comparison and a small study, made by core as the views' workers would.
    Store store(db());
    ComparisonDesign design;
    design.preset.name = "ui-compare";
    design.preset.description = "two arms, three seeds, 12 steps";
    ExperimentConfig c = experiment_preset("tiny-lora");
    c.data.task = "reverse";
    c.train.steps = 12;
    c.train.eval_every = 0;
    c.train.eval_examples = 32;
    c.schedule.warmup_steps = 2;
    ExperimentConfig full = c;
    full.adapter.method = "full";
    full.optimizer.lr = 1e-3;
    design.preset.entries = {{"lora", c, "test rate", ""}, {"full", full, "test rate", ""}};
    comparison_id = run_stored_comparison(store, "compare", design, env, {}).id;
    StudyOptions options;
    options.seeds = 2;
    options.sets = {"train.steps=8", "train.eval_examples=16", "schedule.warmup_steps=2"};
    const StudyResult study = run_study(store, "lora-vs-full", options, env, {});
    finish_study(store, study, render_study_plots(study.plots));
    study_id = study.comparison_id;
  }

  void a_stored_comparison_shows_intervals_and_error_bars() {
    MainWindow w(db());
    w.show();
    QVERIFY(QTest::qWaitForWindowExposed(&w));
    ComparisonView* v = w.compare_view();
    w.tabs()->setCurrentWidget(v);
    QCOMPARE(v->history()->count(), 1);  // the study is listed under Studies only
    select(v, comparison_id);
    QCOMPARE(v->table()->rowCount(), 2);
    QCOMPARE(v->table()->item(0, 0)->text(), QString("lora"));
    QCOMPARE(v->table()->item(0, 3)->text(), QString("3"));
    QVERIFY2(v->table()->item(0, 6)->text().contains(" ± "), qPrintable(v->table()->item(0, 6)->text()));
    int error_bars = 0;
    for (int i = 0; i < v->plot()->plottableCount(); ++i)
      error_bars += qobject_cast<QCPErrorBars*>(v->plot()->plottable(i)) != nullptr;
    QCOMPARE(error_bars, 1);
    const QString report = v->report()->toPlainText();
    QVERIFY2(report.contains("full − lora") && report.contains("at 95%") && report.contains("OpenBLAS"),
             qPrintable(report));
    screenshot(w, "compare");
  }

  void a_stored_study_shows_its_report_and_plots() {
    MainWindow w(db());
    w.show();
    QVERIFY(QTest::qWaitForWindowExposed(&w));
    ComparisonView* v = w.studies_view();
    w.tabs()->setCurrentWidget(v);
    QCOMPARE(v->history()->count(), 1);
    select(v, study_id);
    QVERIFY(v->report()->toPlainText().contains("lora-vs-full"));
    for (const char* png : {"quality.png", "memory.png", "speed.png"}) {
      const QVariant image = v->report()->loadResource(QTextDocument::ImageResource, QUrl(png));
      QVERIFY2(!image.value<QImage>().isNull(), png);
    }
    screenshot(w, "studies");
  }

  // SmolLM2 fetched while the window is open (only its file's presence
  // counts) becomes a study base the next time the Studies tab is shown.
  void a_fetched_base_joins_the_study_bases() {
    QTemporaryDir data;
    const QByteArray before = qgetenv("LWB_DATA_DIR");
    qputenv("LWB_DATA_DIR", data.path().toUtf8());
    const auto restore = qScopeGuard([&] { qputenv("LWB_DATA_DIR", before); });
    MainWindow w(db());
    w.show();
    QVERIFY(QTest::qWaitForWindowExposed(&w));
    ComparisonView* v = w.studies_view();
    w.tabs()->setCurrentWidget(v);
    const auto bases = [&] {
      QStringList out;
      for (int i = 0; i < v->base()->count(); ++i) out << v->base()->itemText(i);
      return out.join(", ");
    };
    QCOMPARE(bases(), QString("tiny"));
    QVERIFY(QDir(data.path()).mkpath("models"));
    QFile gguf(data.filePath("models/SmolLM2-135M-Instruct.Q4_1.gguf"));
    QVERIFY(gguf.open(QIODevice::WriteOnly));
    gguf.close();
    w.tabs()->setCurrentIndex(0);
    w.tabs()->setCurrentWidget(v);
    QCOMPARE(bases(), QString("tiny, smollm2-135m"));
    QCOMPARE(v->base()->currentText(), QString("tiny"));  // the choice stays
  }

  // Run, then Stop once the first run trains: the comparison is stored as
  // stopped with what it ran.
  void run_and_stop_leave_a_stored_comparison() {
    ComparisonView v(db(), ComparisonView::Kind::Compare);
    v.seeds()->setValue(1);
    QSignalSpy finished(&v, &ComparisonView::finished);
    QVERIFY(v.start());
    QVERIFY(!v.run_button()->isEnabled());
    QTRY_VERIFY_WITH_TIMEOUT(v.status()->text().contains("training"), 300000);
    v.stop_button()->click();
    QVERIFY(finished.wait(600000) || finished.count() == 1);
    QTRY_VERIFY(v.run_button()->isEnabled());
    Store store(db());
    const ComparisonRecord c = store.get_comparison(finished.at(0).at(0).toLongLong());
    QCOMPARE(c.name, std::string("tiny-methods"));
    QCOMPARE(c.status, std::string("stopped"));
    QVERIFY(c.runs >= 1);
    QCOMPARE(store.comparison_runs(c.id).back().status, std::string("stopped"));
  }
};

QTEST_MAIN(TestUiCompare)
#include "test_ui_compare.moc"
