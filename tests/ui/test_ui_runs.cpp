// The Runs tab against the data-loss bug of issue 16 (a refresh moved the
// highlight to another row, and Delete removed the run under it): the
// selection follows run ids across refreshes that move rows, the delete
// confirmation names the run it deletes and exactly that run goes; and the
// hyperparameter table lists only the keys that differ between the shown
// runs. Runs are written to the store directly, so nothing trains.
#include <QApplication>
#include <QMessageBox>
#include <QPushButton>
#include <QStandardPaths>
#include <QTableWidget>
#include <QTemporaryDir>
#include <QTimer>
#include <QtTest>
#include <qcustomplot.h>

#include "core/store/store.h"
#include "ui/run_chart.h"
#include "ui/runs_view.h"

using namespace lwb;
using namespace lwb::ui;

namespace {

// Answers the next delete confirmation with `button`, keeping its text.
void answer_delete_question(QMessageBox::StandardButton button, QString* text, QString* yes_label) {
  QTimer::singleShot(0, [=] {
    auto* box = qobject_cast<QMessageBox*>(QApplication::activeModalWidget());
    if (!box || box->objectName() != "delete_runs_question") qFatal("no delete confirmation was shown");
    *text = box->text();
    *yes_label = box->button(QMessageBox::Yes)->text();
    box->button(button)->click();
  });
}

}  // namespace

class TestUiRuns : public QObject {
  Q_OBJECT
  QTemporaryDir dir;
  std::filesystem::path db() const { return std::filesystem::path(dir.path().toStdString()) / "runs.sqlite3"; }

  // A finished run of `name` with `r` and `lr` and a short loss curve.
  std::int64_t add_run(const std::string& name, int r, double lr) {
    Store store(db());
    ExperimentConfig c = experiment_preset("tiny-lora");
    c.name = name;
    c.adapter.r = r;
    c.optimizer.lr = lr;
    const std::int64_t run = store.create_run(store.create_experiment(name, c), "cpu", RunInfo{c});
    std::vector<StepEvent> steps(3);
    for (int i = 0; i < 3; ++i) {
      steps[static_cast<std::size_t>(i)].step = i + 1;
      steps[static_cast<std::size_t>(i)].total_steps = 3;
      steps[static_cast<std::size_t>(i)].loss = 2.0 - 0.1 * i - 0.01 * r;
      steps[static_cast<std::size_t>(i)].lr = lr;
    }
    store.append_steps(run, steps);
    RunResult done;
    done.status = RunStatus::Finished;
    done.steps_done = 3;
    store.finish_run(run, done);
    return run;
  }

  // The run id of the row the table highlights as current.
  static std::int64_t current_id(const RunsView& v) {
    const int row = v.table()->currentRow();
    return row < 0 ? 0 : v.table()->item(row, 0)->data(Qt::UserRole).toLongLong();
  }

 private slots:
  void initTestCase() {
    QStandardPaths::setTestModeEnabled(true);
    QVERIFY(dir.isValid());
  }

  void the_selection_follows_the_run_and_delete_names_it() {
    const std::int64_t first = add_run("alpha", 8, 3e-3);
    const std::int64_t second = add_run("beta", 16, 1e-3);
    RunsView v(db());
    v.show();
    v.refresh();  // as the window does when the tab is shown
    QCOMPARE(v.table()->rowCount(), 2);
    // Select the first run as a user does: click its row.
    int row = -1;
    for (int r = 0; r < v.table()->rowCount(); ++r)
      if (v.table()->item(r, 0)->data(Qt::UserRole).toLongLong() == first) row = r;
    QVERIFY(row >= 0);
    v.table()->setCurrentCell(row, 0);
    v.table()->selectRow(row);
    QCOMPARE(v.selected_runs(), std::vector<std::int64_t>{first});

    // A new run (a resumption, say) lands at the top; rows move, the selection does not.
    const std::int64_t third = add_run("gamma", 8, 1e-3);
    v.refresh();
    QCOMPARE(v.table()->rowCount(), 3);
    QVERIFY(v.table()->item(row, 0)->data(Qt::UserRole).toLongLong() != first);  // the row did move
    QCOMPARE(v.selected_runs(), std::vector<std::int64_t>{first});
    QCOMPARE(current_id(v), first);
    // Sorting by another column moves rows too.
    v.table()->sortItems(1, Qt::DescendingOrder);
    v.refresh();
    QCOMPARE(v.selected_runs(), std::vector<std::int64_t>{first});
    QCOMPARE(current_id(v), first);

    // Cancel deletes nothing; the question names the run, its experiment and status.
    QString text, yes;
    answer_delete_question(QMessageBox::Cancel, &text, &yes);
    QVERIFY(!v.delete_selected());
    QVERIFY2(text.contains(QString("run %1 \"alpha\"").arg(first)), qPrintable(text));
    QVERIFY2(text.contains("finished"), qPrintable(text));
    QCOMPARE(yes, QString("Delete run %1").arg(first));
    QCOMPARE(Store(db()).list_runs().size(), std::size_t(3));

    // Yes deletes exactly the named run.
    answer_delete_question(QMessageBox::Yes, &text, &yes);
    QVERIFY(v.delete_selected());
    std::vector<std::int64_t> left;
    for (const RunRow& r : Store(db()).list_runs()) left.push_back(r.id);
    QCOMPARE(left, (std::vector<std::int64_t>{third, second}));
    QCOMPARE(v.table()->rowCount(), 2);
    QVERIFY(v.selected_runs().empty());

    // Two runs asked at once are both named.
    v.select_runs({second, third});
    answer_delete_question(QMessageBox::Cancel, &text, &yes);
    QVERIFY(!v.delete_selected());
    QVERIFY2(text.contains("these 2 runs") && text.contains(QString("run %1 \"beta\"").arg(second)) &&
                 text.contains(QString("run %1 \"gamma\"").arg(third)),
             qPrintable(text));
  }

  // beta (r 16, lr 1e-3) against gamma (r 8, lr 1e-3): only adapter.r differs.
  void the_hyperparameter_table_shows_only_what_differs() {
    RunsView v(db());
    v.refresh();
    std::vector<std::int64_t> ids;
    for (const RunRow& r : Store(db()).list_runs()) ids.push_back(r.id);
    std::sort(ids.begin(), ids.end());
    QCOMPARE(ids.size(), std::size_t(2));
    v.overlay(ids);
    QCOMPARE(v.shown_runs(), ids);
    QTableWidget* h = v.hparam_table();
    const auto keys_shown = [h] {
      QStringList keys;
      for (int r = 0; r < h->rowCount(); ++r) keys << h->verticalHeaderItem(r)->text();
      return keys;
    };
    QCOMPARE(h->columnCount(), 2);
    QCOMPARE(keys_shown(), QStringList{"adapter.r"});
    for (int c = 0; c < 2; ++c) {
      const std::int64_t id = ids[static_cast<std::size_t>(c)];
      QVERIFY2(h->horizontalHeaderItem(c)->text().startsWith(QString("#%1 ").arg(id)),
               qPrintable(h->horizontalHeaderItem(c)->text()));
    }
    QCOMPARE(h->item(0, 0)->text(), QString("16"));
    QCOMPARE(h->item(0, 1)->text(), QString("8"));
    // Both curves are drawn, each with its 3 steps.
    QCOMPARE(v.chart(0)->shown_runs(), 2);
    for (std::int64_t id : ids) QCOMPARE(v.chart(0)->curve(id)->dataCount(), 3);

    // A third run with another learning rate adds its row; the keys stay in config order.
    const std::int64_t fourth = add_run("delta", 8, 3e-4);
    v.refresh();
    ids.push_back(fourth);
    v.overlay(ids);
    QCOMPARE(h->columnCount(), 3);
    QCOMPARE(keys_shown(), (QStringList{"adapter.r", "optimizer.lr"}));
    QCOMPARE(h->item(1, 0)->text(), h->item(1, 1)->text());
    QVERIFY(h->item(1, 2)->text() != h->item(1, 0)->text());

    // One run alone has nothing to diff.
    v.overlay({fourth});
    QCOMPARE(h->rowCount(), 0);
  }
};

QTEST_MAIN(TestUiRuns)
#include "test_ui_runs.moc"
