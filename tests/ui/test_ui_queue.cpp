// The run queue and pretraining as a run, driven through the window
// (offscreen). The queue: the Setup experiment and a rank sweep around it
// queued from the Queue tab run one after another, each a finished run of the
// store with its own rank. Pretraining: with no cached base, Setup says so
// before Start; Start pretrains it first as a run of its own, plotted, timed
// (tokens/s, ETA), listed in the queue before the experiment that waits for
// it; Stop says "Stopping" at once and ends the run as stopped (no failure,
// no warning dialog), resumable; resuming continues its curve.
#include <QApplication>
#include <QCheckBox>
#include <QDialog>
#include <QDialogButtonBox>
#include <QLineEdit>
#include <QTimer>
#include <set>
#include <tuple>
#include <QLabel>
#include <QMessageBox>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSignalSpy>
#include <QStandardPaths>
#include <QTableWidget>
#include <QTemporaryDir>
#include <QtTest>

#include "core/store/store.h"
#include "ui/experiment_form.h"
#include "ui/loss_plot.h"
#include "ui/main_window.h"
#include "ui/queue_view.h"
#include "ui/run_queue.h"
#include "ui/runs_view.h"

using namespace lwb;
using namespace lwb::ui;

namespace {

constexpr int kRunTimeoutMs = 600000;

void fill(MainWindow& w, int steps) {
  ExperimentForm* f = w.form();
  f->set_field("name", "queued");
  f->set_field("model.preset", "tiny");
  f->set_field("adapter.method", "lora");
  f->set_field("adapter.r", "8");
  f->set_field("data.task", "reverse");
  f->set_field("train.steps", QString::number(steps));
  f->set_field("schedule.warmup_steps", "2");
  f->set_field("train.eval_every", "0");
  f->set_field("train.eval_examples", "8");
}

int count_in(const RunQueue& q, QueueItem::State s) {
  int n = 0;
  for (const QueueItem& i : q.items()) n += i.state == s;
  return n;
}

bool a_message_box_is_shown() {
  for (QWidget* w : QApplication::topLevelWidgets())
    if (qobject_cast<QMessageBox*>(w) && w->isVisible()) return true;
  return false;
}

}  // namespace

class TestUiQueue : public QObject {
  Q_OBJECT
  QTemporaryDir dir;
  std::filesystem::path db() const { return std::filesystem::path(dir.path().toStdString()) / "queue.sqlite3"; }

 private slots:
  void initTestCase() {
    QStandardPaths::setTestModeEnabled(true);
    QVERIFY(dir.isValid());
  }

  // The Sweep dialog (as a user fills it) queues every combination of its
  // ranks, alphas and ticked methods, each a copy of the Setup experiment
  // with those three settings and a name that says them; Cancel queues none.
  void the_sweep_dialog_queues_every_combination() {
    MainWindow w(db());
    w.show();
    fill(w, 6);
    QueueView* qv = w.queue_view();
    const std::size_t before = w.queue()->items().size();
    QString first_ranks, first_alphas;
    QStringList ticked;
    const auto answer = [&](bool ok) {
      QTimer::singleShot(0, [&, ok] {
        auto* d = qobject_cast<QDialog*>(QApplication::activeModalWidget());
        if (!d) qFatal("no sweep dialog was shown");
        auto* ranks = d->findChild<QLineEdit*>("sweep_ranks");
        auto* alphas = d->findChild<QLineEdit*>("sweep_alphas");
        first_ranks = ranks->text();
        first_alphas = alphas->text();
        ticked.clear();
        for (QCheckBox* b : d->findChildren<QCheckBox*>()) {
          if (b->isChecked()) ticked << b->text();
          b->setChecked(b->text() == "lora" || b->text() == "dora");
        }
        ranks->setText("4, 16");
        alphas->setText("8,32");
        d->findChild<QDialogButtonBox*>()->button(ok ? QDialogButtonBox::Ok : QDialogButtonBox::Cancel)->click();
      });
    };
    auto* sweep = qv->findChild<QPushButton*>("queue_sweep");
    answer(false);
    QTest::mouseClick(sweep, Qt::LeftButton);
    QCOMPARE(w.queue()->items().size(), before);
    // It starts from the Setup experiment's own settings.
    QCOMPARE(first_ranks, QString("8"));
    QCOMPARE(first_alphas, QString::fromStdString(w.form()->config().get("adapter.alpha")));
    QCOMPARE(ticked, QStringList{"lora"});

    answer(true);
    QTest::mouseClick(sweep, Qt::LeftButton);
    const auto& items = w.queue()->items();
    QCOMPARE(items.size(), before + 8);
    std::set<std::tuple<std::string, int, double>> got;
    for (std::size_t i = before; i < items.size(); ++i) {
      const ExperimentConfig& c = items[i].config;
      got.insert({c.adapter.method, c.adapter.r, c.adapter.alpha});
      QCOMPARE(QString::fromStdString(c.name),
               QString("queued-%1-r%2-a%3").arg(QString::fromStdString(c.adapter.method)).arg(c.adapter.r).arg(c.adapter.alpha));
      // Everything else is the Setup experiment's.
      QCOMPARE(c.train.steps, std::int64_t{6});
      QCOMPARE(c.data.task, std::string("reverse"));
      QCOMPARE(items[i].state, QueueItem::State::Waiting);
    }
    std::set<std::tuple<std::string, int, double>> want;
    for (const char* m : {"lora", "dora"})
      for (int r : {4, 16})
        for (double a : {8.0, 32.0}) want.insert({m, r, a});
    QVERIFY(got == want);
    QVERIFY2(qv->status_label()->text().contains("Queued 8 experiments"), qPrintable(qv->status_label()->text()));
    QCOMPARE(qv->table()->rowCount(), static_cast<int>(items.size()));
    // Not run here: the next test runs a queue.
    for (std::size_t i = items.size(); i-- > before;) w.queue()->remove(items[i].key);
  }

  void the_queue_runs_the_experiments_one_after_another() {
    MainWindow w(db());
    w.show();
    fill(w, 6);
    QueueView* qv = w.queue_view();
    QTest::mouseClick(qv->add_button(), Qt::LeftButton);
    // A list that is not numbers is refused whole, with the reason.
    QCOMPARE(qv->add_sweep("4, x", "", {"lora"}), 0);
    QVERIFY2(qv->status_label()->text().contains("\"x\""), qPrintable(qv->status_label()->text()));
    QCOMPARE(qv->add_sweep("4, 16", "", {"lora"}), 2);
    QCOMPARE(qv->table()->rowCount(), 3);
    QCOMPARE(w.queue()->waiting(), 3);

    QSignalSpy finished(&w, &MainWindow::run_finished);
    QTest::mouseClick(qv->run_button(), Qt::LeftButton);
    QVERIFY(w.queue_running());
    QTRY_VERIFY_WITH_TIMEOUT(count_in(*w.queue(), QueueItem::State::Finished) == 3, kRunTimeoutMs);
    QTRY_VERIFY(!w.queue_running());  // done: the queue stops by itself
    QCOMPARE(finished.count(), 3);

    // One run each, in queue order, with the rank it was queued with.
    Store store(db());
    std::vector<int> ranks;
    qint64 previous = 0;
    for (const QueueItem& i : w.queue()->items()) {
      QVERIFY(i.run_id > previous);
      previous = i.run_id;
      const RunDetail d = store.get_run(i.run_id);
      QCOMPARE(QString::fromStdString(d.row.status), QString("finished"));
      ranks.push_back(ExperimentConfig::from_json(d.config_json, "run").adapter.r);
    }
    QCOMPARE(ranks, (std::vector<int>{8, 4, 16}));
  }

  void pretraining_is_a_run_like_any_other() {
    // No cached base in this data folder.
    qputenv("LWB_DATA_DIR", dir.filePath("empty-data").toUtf8());
    MainWindow w(db());
    w.show();
    fill(w, 20);
    QVERIFY(MainWindow::needs_pretraining(w.form()->config()));
    QVERIFY2(w.start_reason()->text().contains("not cached yet"), qPrintable(w.start_reason()->text()));
    QVERIFY(w.start_button()->isEnabled());

    QSignalSpy finished(&w, &MainWindow::run_finished);
    QTest::mouseClick(w.start_button(), Qt::LeftButton);
    // Queued before the experiment that waits for it, and plotted and timed as it goes.
    QCOMPARE(w.queue()->items().size(), std::size_t(2));
    QCOMPARE(w.queue()->items()[0].config.name, std::string("pretrain-tiny"));
    QCOMPARE(w.queue()->items()[0].state, QueueItem::State::Running);
    QCOMPARE(w.queue()->items()[1].state, QueueItem::State::Waiting);
    const QString log = w.findChild<QPlainTextEdit*>("run_log")->toPlainText();
    QVERIFY2(log.contains("pretraining it first, as a run of its own; queued starts when it is done"), qPrintable(log));
    QTRY_VERIFY_WITH_TIMEOUT(w.loss_plot()->train_points() >= 3, kRunTimeoutMs);
    QVERIFY2(w.speed_label()->text().contains("tokens/s") && w.speed_label()->text().contains("ETA"),
             qPrintable(w.speed_label()->text()));
    QVERIFY2(w.status_label()->text().contains("pretrain"), qPrintable(w.status_label()->text()));

    // Stop says so at once, and ends as a stopped run, without a warning.
    QTest::mouseClick(w.stop_button(), Qt::LeftButton);
    QVERIFY2(w.status_label()->text().startsWith("Stopping"), qPrintable(w.status_label()->text()));
    QVERIFY(finished.wait(kRunTimeoutMs));
    QCOMPARE(w.last_result().status, RunStatus::Stopped);
    QVERIFY(!a_message_box_is_shown());
    const qint64 pretraining = w.last_run_id();
    {
      Store store(db());
      const RunDetail d = store.get_run(pretraining);
      QCOMPARE(QString::fromStdString(d.row.status), QString("stopped"));
      QVERIFY(d.row.resumable);
    }
    QCOMPARE(w.queue()->items()[1].state, QueueItem::State::Waiting);  // the experiment still waits
    QVERIFY(MainWindow::needs_pretraining(w.form()->config()));

    // Resumed from the Runs tab: a new run naming its parent, its curve continuing the parent's.
    const int parent_points = w.loss_plot()->train_points();
    w.runs_view()->refresh();
    w.runs_view()->select_runs({pretraining});
    auto* resume = w.runs_view()->findChild<QPushButton*>("runs_resume");
    QVERIFY(resume);
    QTest::mouseClick(resume, Qt::LeftButton);
    QTRY_VERIFY_WITH_TIMEOUT(w.training(), 10000);
    QTRY_VERIFY_WITH_TIMEOUT(w.loss_plot()->train_points() >= parent_points + 2, kRunTimeoutMs);
    QTest::mouseClick(w.stop_button(), Qt::LeftButton);
    QVERIFY(finished.wait(kRunTimeoutMs));
    QCOMPARE(w.last_result().status, RunStatus::Stopped);
    QVERIFY(w.last_run_id() != pretraining);
    Store store(db());
    QCOMPARE(store.get_run(w.last_run_id()).row.parent_run_id, std::optional<std::int64_t>(pretraining));
    qputenv("LWB_DATA_DIR", "");
  }
};

QTEST_MAIN(TestUiQueue)
#include "test_ui_queue.moc"
