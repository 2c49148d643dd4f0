// Samples during training and Evaluate & Predict in the window (offscreen):
// a short run with samples fills the Monitor's Samples table with the
// answers the store keeps, the Runs view shows them for the selected run,
// and Evaluate & Predict fills its table with the values core's predict_run
// gives for the same run, sorts by a score, exports the CSV core writes,
// stores the predictions against the run and can be cancelled.
#include <QFile>
#include <QHeaderView>
#include <QLabel>
#include <QProgressBar>
#include <QRegularExpression>
#include <QPushButton>
#include <QSignalSpy>
#include <QSpinBox>
#include <QStandardPaths>
#include <QTabWidget>
#include <QTableWidget>
#include <QTemporaryDir>
#include <QtTest>

#include "core/store/run_predict.h"
#include "core/store/store.h"
#include "ui/experiment_form.h"
#include "ui/main_window.h"
#include "ui/predict_view.h"
#include "ui/runs_view.h"
#include "ui/samples_view.h"

using namespace lwb;
using namespace lwb::ui;

class TestUiPredict : public QObject {
  Q_OBJECT
  QTemporaryDir dir;
  std::filesystem::path db() const { return std::filesystem::path(dir.path().toStdString()) / "predict.sqlite3"; }
  std::int64_t run_ = 0;

  // Trains a short tiny-LoRA run with samples through the window once.
  void train_once() {
    if (run_) return;
    MainWindow w(db());
    w.show();
    ExperimentForm* f = w.form();
    f->set_field("name", "samples-test");
    f->set_field("model.preset", "tiny");
    f->set_field("adapter.method", "lora");
    f->set_field("data.task", "uppercase");
    f->set_field("data.n_heldout", "40");
    f->set_field("train.steps", "12");
    f->set_field("schedule.warmup_steps", "2");
    f->set_field("train.eval_every", "0");
    f->set_field("train.eval_examples", "16");
    f->set_field("train.samples", "3");
    f->set_field("train.sample_every", "5");
    f->set_field("train.sample_max_new", "10");
    QSignalSpy finished(&w, &MainWindow::run_finished);
    QTest::mouseClick(w.start_button(), Qt::LeftButton);
    QVERIFY(finished.wait(600000) || finished.count() == 1);
    QCOMPARE(w.last_result().status, RunStatus::Finished);
    run_ = w.last_run_id();

    // The Monitor's table: a row per sampled step (5, 10 and the last, 12),
    // a column per prompt, each cell the stored answer.
    QTableWidget* t = w.samples_view()->table();
    const std::vector<RunSampleRow> stored = Store(db()).run_samples(run_);
    QCOMPARE(stored.size(), std::size_t(9));
    QCOMPARE(t->rowCount(), 3);
    QCOMPARE(t->columnCount(), 3);
    QCOMPARE(t->verticalHeaderItem(2)->text(), QString("step 12"));
    for (const RunSampleRow& r : stored) {
      const int row = r.step == 5 ? 0 : r.step == 10 ? 1 : 2;
      QCOMPARE(t->item(row, r.sample.prompt)->toolTip(), QString::fromStdString(r.sample.answer));
      QCOMPARE(t->horizontalHeaderItem(r.sample.prompt)->toolTip(), QString::fromStdString(r.sample.prompt_text));
    }
  }

 private slots:
  void initTestCase() {
    QStandardPaths::setTestModeEnabled(true);
    QVERIFY(dir.isValid());
  }

  void the_monitor_and_the_runs_view_show_the_samples() {
    train_once();
    QVERIFY(run_ > 0);
    RunsView runs(db());
    runs.refresh();
    runs.select_runs({run_});
    QTableWidget* t = runs.samples_view()->table();
    QCOMPARE(t->rowCount(), 3);
    QCOMPARE(t->columnCount(), 3);
    const std::vector<RunSampleRow> stored = Store(db()).run_samples(run_);
    QCOMPARE(t->item(2, 1)->toolTip(), QString::fromStdString(stored[7].sample.answer));
    runs.select_runs({});
    QCOMPARE(runs.samples_view()->table()->rowCount(), 0);
    QCOMPARE(runs.predict_view()->run(), std::int64_t(0));
  }

  void evaluate_and_predict_shows_sorts_exports_and_stores() {
    train_once();
    RunsView runs(db());
    runs.refresh();
    runs.select_runs({run_});
    PredictView* p = runs.predict_view();
    QCOMPARE(p->run(), run_);
    QVERIFY(!p->export_button()->isEnabled());
    p->count_box()->setValue(12);
    QSignalSpy predicted(p, &PredictView::predicted);
    QTest::mouseClick(p->run_button(), Qt::LeftButton);
    QVERIFY(predicted.wait(300000) || predicted.count() == 1);
    QTRY_VERIFY(!p->busy());

    // The values core gives for the same run and data.
    RunPrediction request;
    request.run_id = run_;
    request.n = 12;
    Store store(db());
    const PredictionSet expected = predict_run(store, request, TrainerEnvironment{});
    QCOMPARE(expected.rows.size(), std::size_t(12));
    QTableWidget* t = p->table();
    QCOMPARE(t->rowCount(), 12);
    t->sortByColumn(PredictView::kIndex, Qt::AscendingOrder);
    for (int i = 0; i < 12; ++i) {
      const infer::Prediction& e = expected.rows[static_cast<std::size_t>(i)];
      QCOMPARE(t->item(i, PredictView::kPrompt)->toolTip(), QString::fromStdString(e.prompt));
      QCOMPARE(t->item(i, PredictView::kReference)->toolTip(), QString::fromStdString(e.reference));
      QCOMPARE(t->item(i, PredictView::kPrediction)->toolTip(), QString::fromStdString(e.prediction));
      QCOMPARE(t->item(i, PredictView::kLoss)->text(), QString::number(e.loss, 'f', 4));
      QCOMPARE(t->item(i, PredictView::kExact)->text(), e.exact ? QString("yes") : QString("no"));
      QCOMPARE(t->item(i, PredictView::kRouge)->text(), QString::number(e.rouge_l, 'f', 3));
    }
    const infer::PredictionSummary s = infer::summarize(expected.rows);
    QVERIFY2(p->means_label()->text().contains(QString::number(s.loss, 'f', 4)), qPrintable(p->means_label()->text()));
    QVERIFY(p->means_label()->text().contains(QString::number(100 * s.exact_match, 'f', 1) + "%"));

    // Sorted by loss, highest first, by the number (not the text).
    t->sortByColumn(PredictView::kLoss, Qt::DescendingOrder);
    std::vector<double> losses;
    for (const infer::Prediction& e : expected.rows) losses.push_back(e.loss);
    std::sort(losses.begin(), losses.end(), std::greater<>());
    for (int i = 0; i < 12; ++i)
      QCOMPARE(t->item(i, PredictView::kLoss)->text(), QString::number(losses[static_cast<std::size_t>(i)], 'f', 4));

    // The CSV is core's writing of the view's rows, in the data's order,
    // whatever the table's order. (Not of `expected`'s: under a parallel
    // ctest the view's prediction and this one can get different shares of
    // the cores, and OpenBLAS's sums, hence a loss's sixth digit, depend on
    // the thread count.)
    QCOMPARE(p->predictions().rows.size(), std::size_t(12));
    const QString csv = dir.filePath("predictions.csv");
    QVERIFY(p->export_csv(csv));
    QFile f(csv);
    QVERIFY(f.open(QIODevice::ReadOnly));
    const QByteArray bytes = f.readAll();
    QCOMPARE(bytes.toStdString(), predictions_csv(p->predictions().rows));
    QVERIFY(bytes.startsWith("index,prompt,reference,prediction,loss,exact_match,rouge_l\n"));
    // One record per example (a quoted prompt may hold newlines): indices 1..12.
    const QString text = QString::fromUtf8(bytes);
    QCOMPARE(text.count(QRegularExpression("\n[0-9]+,\"")), 12);
    QVERIFY(text.contains("\n12,\"") && !text.contains("\n13,\""));

    // Stored against the run, and shown again when the run is shown again.
    const std::vector<PredictionSet> sets = store.list_predictions(run_);
    QCOMPARE(sets.size(), std::size_t(1));
    QCOMPARE(sets.front().id, qvariant_cast<qint64>(predicted.front().front()));
    QCOMPARE(sets.front().summary.examples, std::int64_t(12));
    RunsView again(db());
    again.refresh();
    again.select_runs({run_});
    QCOMPARE(again.predict_view()->table()->rowCount(), 12);
  }

  void evaluate_and_predict_can_be_cancelled() {
    train_once();
    PredictView p(db());
    p.set_run(run_);
    p.count_box()->setValue(40);  // five batches of eight
    // Cancel as soon as the first batch is reported.
    connect(p.progress(), &QProgressBar::valueChanged, &p, [&p](int v) {
      if (v > 0) p.cancel();
    });
    QVERIFY(p.start());
    QVERIFY(p.cancel_button()->isEnabled());
    QTRY_VERIFY_WITH_TIMEOUT(!p.busy(), 300000);
    QVERIFY2(p.table()->rowCount() > 0 && p.table()->rowCount() < 40, qPrintable(p.status_label()->text()));
    QVERIFY2(p.status_label()->text().startsWith("Cancelled"), qPrintable(p.status_label()->text()));
    QVERIFY(p.run_button()->isEnabled());  // another prediction may start
  }
};

QTEST_MAIN(TestUiPredict)
#include "test_ui_predict.moc"
