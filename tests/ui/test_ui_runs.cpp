// The Runs tab against the data-loss bug of issue 16 (a refresh moved the
// highlight to another row, and Delete removed the run under it): the
// selection follows run ids across refreshes that move rows, the delete
// confirmation names the run it deletes and exactly that run goes; and the
// hyperparameter table lists only the keys that differ between the shown
// runs, a method's own keys only between the runs of that method. Runs are
// written to the store directly, so nothing trains.
#include <QApplication>
#include <QClipboard>
#include <QFileDialog>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QMessageBox>
#include <QPushButton>
#include <QStandardPaths>
#include <QTableWidget>
#include <QTemporaryDir>
#include <QTimer>
#include <QtTest>
#include <qcustomplot.h>

#include "core/adapters/adapter_config.h"
#include "core/store/store.h"
#include "ui/run_compare.h"
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

// Answers the next file dialog with `file`.
void answer_file_dialog(const QString& file) {
  QTimer::singleShot(0, [file] {
    auto* d = qobject_cast<QFileDialog*>(QApplication::activeModalWidget());
    if (!d) qFatal("no file dialog was shown");
    d->selectFile(file);
    static_cast<QDialog*>(d)->accept();  // QFileDialog's own accept() is protected
  });
}

QStringList read_lines(const QString& file) {
  QFile f(file);
  if (!f.open(QIODevice::ReadOnly)) return {};
  return QString::fromUtf8(f.readAll()).split('\n', Qt::SkipEmptyParts);
}

}  // namespace

class TestUiRuns : public QObject {
  Q_OBJECT
  QTemporaryDir dir;
  std::filesystem::path db() const { return std::filesystem::path(dir.path().toStdString()) / "runs.sqlite3"; }

  // A finished run of `name` with `r` and `lr` and a short loss curve.
  std::int64_t add_run(const std::string& name, int r, double lr) {
    ExperimentConfig c = experiment_preset("tiny-lora");
    c.name = name;
    c.adapter.r = r;
    c.optimizer.lr = lr;
    return add_run(c, db());
  }
  // A finished run of `c` in the store `file`.
  static std::int64_t add_run(const ExperimentConfig& c, const std::filesystem::path& file) {
    Store store(file);
    const std::int64_t run = store.create_run(store.create_experiment(c.name, c), "cpu", RunInfo{c});
    std::vector<StepEvent> steps(3);
    for (int i = 0; i < 3; ++i) {
      steps[static_cast<std::size_t>(i)].step = i + 1;
      steps[static_cast<std::size_t>(i)].total_steps = 3;
      steps[static_cast<std::size_t>(i)].loss = 2.0 - 0.1 * i - 0.01 * c.adapter.r;
      steps[static_cast<std::size_t>(i)].lr = c.optimizer.lr;
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

  // A method's own settings are compared only between the runs they apply
  // to (the variants' descriptors say which): the rank of a full fine-tuning
  // is "—", not a difference, and AdaLoRA's keys are not listed until two
  // AdaLoRA runs differ in them.
  void the_hyperparameter_table_compares_a_methods_keys_only_where_they_apply() {
    const std::filesystem::path file = std::filesystem::path(dir.path().toStdString()) / "methods.sqlite3";
    auto config = [](const std::string& name, const std::string& method, int r) {
      ExperimentConfig c = experiment_preset("tiny-lora");
      c.name = name;
      select_method(c.adapter, method);
      c.adapter.r = r;
      return c;
    };
    const std::int64_t lora = add_run(config("lora-8", "lora", 8), file);
    const std::int64_t full = add_run(config("full", "full", 16), file);  // its rank means nothing
    RunsView v(file);
    v.refresh();
    QTableWidget* h = v.hparam_table();
    const auto row_of = [h](const QString& key) {
      for (int r = 0; r < h->rowCount(); ++r)
        if (h->verticalHeaderItem(r)->text() == key) return r;
      return -1;
    };
    const auto keys_shown = [h] {
      QStringList keys;
      for (int r = 0; r < h->rowCount(); ++r) keys << h->verticalHeaderItem(r)->text();
      return keys;
    };
    v.overlay({lora, full});
    // Only the method differs: r, alpha and targets apply to the LoRA run alone.
    QCOMPARE(keys_shown(), QStringList{"adapter.method"});

    // A second LoRA run of another rank: r differs between the two LoRA runs,
    // and the full run shows "—" there.
    const std::int64_t lora16 = add_run(config("lora-16", "lora", 16), file);
    v.refresh();
    v.overlay({lora, full, lora16});
    QCOMPARE(keys_shown(), (QStringList{"adapter.method", "adapter.r"}));
    const int r = row_of("adapter.r");
    QCOMPARE(h->item(r, 0)->text(), QString("8"));
    QCOMPARE(h->item(r, 1)->text(), QString("—"));
    QVERIFY2(h->item(r, 1)->toolTip().contains("full"), qPrintable(h->item(r, 1)->toolTip()));
    QCOMPARE(h->item(r, 2)->text(), QString("16"));

    // One AdaLoRA run: its own keys have one value each, so none is listed.
    ExperimentConfig ada = config("adalora", "adalora", 8);
    ada.adapter.set_option("adalora.target_r", 4);
    const std::int64_t ada4 = add_run(ada, file);
    v.refresh();
    v.overlay({lora, full, ada4});
    for (const QString& key : keys_shown()) QVERIFY2(!key.startsWith("adapter.adalora."), qPrintable(key));
    // A second one with another target rank: that key is listed, "—" for the others.
    ada.name = "adalora-2";
    ada.adapter.set_option("adalora.target_r", 2);
    const std::int64_t ada2 = add_run(ada, file);
    v.refresh();
    v.overlay({lora, full, ada4, ada2});
    const int t = row_of("adapter.adalora.target_r");
    QVERIFY2(t >= 0, qPrintable(keys_shown().join(", ")));
    QCOMPARE(h->item(t, 0)->text(), QString("—"));
    QCOMPARE(h->item(t, 1)->text(), QString("—"));
    QCOMPARE(h->item(t, 2)->text(), QString("4"));
    QCOMPARE(h->item(t, 3)->text(), QString("2"));
    for (const QString& key : keys_shown()) QVERIFY2(!key.startsWith("adapter.relora."), qPrintable(key));

    // The rule as the function states it, beside the view.
    const std::vector<HparamRow> rows = differing_hparams({config("a", "lora", 8), config("b", "full", 8)});
    QCOMPARE(rows.size(), std::size_t(1));
    QCOMPARE(rows[0].key, std::string("adapter.method"));
    QVERIFY(rows[0].values[0] == std::optional<std::string>("lora"));
    QVERIFY(rows[0].values[1] == std::optional<std::string>("full"));
  }

  // "Copy command" puts on the clipboard a command whose own words rebuild
  // the run's config exactly: a preset and the settings that differ from it.
  void copy_command_reproduces_the_run() {
    const std::int64_t id = add_run("copied", 32, 5e-4);
    RunsView v(db());
    v.show();
    v.refresh();
    v.select_runs({id});
    QApplication::clipboard()->clear();
    QTest::mouseClick(v.findChild<QPushButton*>("runs_command"), Qt::LeftButton);
    const QString command = QApplication::clipboard()->text();
    QVERIFY2(command.startsWith("lora-workbench train --preset "), qPrintable(command));
    QVERIFY2(command.contains(" --set adapter.r=32"), qPrintable(command));
    QVERIFY2(v.status_label()->text().contains(QString("run %1").arg(id)), qPrintable(v.status_label()->text()));
    // Every value here is plain (no shell quoting), so the words split on spaces.
    const QStringList words = command.split(' ');
    ExperimentConfig rebuilt = experiment_preset(words[3].toStdString());
    for (int i = 4; i < words.size(); i += 2) {
      QCOMPARE(words[i], QString("--set"));
      QVERIFY(i + 1 < words.size());
      const int eq = static_cast<int>(words[i + 1].indexOf('='));
      rebuilt.set(words[i + 1].left(eq).toStdString(), words[i + 1].mid(eq + 1).toStdString());
    }
    const ExperimentConfig stored = ExperimentConfig::from_json(Store(db()).get_run(id).config_json, "run");
    QCOMPARE(QString::fromStdString(rebuilt.to_json()), QString::fromStdString(stored.to_json()));
    // With no run selected it says so and copies nothing.
    v.select_runs({});
    QApplication::clipboard()->clear();
    QCOMPARE(v.copy_command(), QString());
    QVERIFY(QApplication::clipboard()->text().isEmpty());
  }

  // The CSV and JSON downloads (through their buttons and file dialogs) hold
  // the run's own numbers, and the chart's CSV its points.
  void downloads_hold_the_runs_numbers() {
    const std::int64_t id = add_run("downloaded", 4, 2e-3);
    const auto loss = [](int i) { return 2.0 - 0.1 * i - 0.01 * 4; };
    RunsView v(db());
    v.show();
    v.refresh();
    v.select_runs({id});

    const QString csv = dir.filePath("run.csv");
    answer_file_dialog(csv);
    QTest::mouseClick(v.findChild<QPushButton*>("runs_csv"), Qt::LeftButton);
    QStringList lines = read_lines(csv);
    QCOMPARE(lines.size(), 4);
    QCOMPARE(lines[0], QString("step,loss,eval_loss,exact_match,lr,grad_norm,tokens_per_s,elapsed_s,layer_grad_norms"));
    for (int i = 0; i < 3; ++i) {
      const QStringList cells = lines[i + 1].split(',');
      QCOMPARE(cells.size(), 9);
      QCOMPARE(cells[0].toInt(), i + 1);
      QVERIFY2(std::abs(cells[1].toDouble() - loss(i)) < 1e-9, qPrintable(lines[i + 1]));
      QVERIFY(cells[2].isEmpty());  // no evaluation at that step: empty, not 0 or nan
      QVERIFY2(std::abs(cells[4].toDouble() - 2e-3) < 1e-12, qPrintable(lines[i + 1]));
    }

    const QString json = dir.filePath("run.json");
    answer_file_dialog(json);
    QTest::mouseClick(v.findChild<QPushButton*>("runs_json"), Qt::LeftButton);
    QFile f(json);
    QVERIFY(f.open(QIODevice::ReadOnly));
    const QJsonObject doc = QJsonDocument::fromJson(f.readAll()).object();
    QCOMPARE(doc["run"].toObject()["id"].toInteger(), id);
    QCOMPARE(doc["run"].toObject()["status"].toString(), QString("finished"));
    QCOMPARE(doc["run"].toObject()["steps_done"].toInteger(), qint64{3});
    QCOMPARE(doc["config"].toObject()["adapter"].toObject()["r"].toInt(), 4);
    QCOMPARE(doc["config"].toObject()["name"].toString(), QString("downloaded"));
    QCOMPARE(doc["reproduce"].toString(), v.copy_command());
    const QJsonArray metrics = doc["metrics"].toArray();
    QCOMPARE(metrics.size(), 3);
    for (int i = 0; i < 3; ++i) {
      const QJsonObject m = metrics[i].toObject();
      QCOMPARE(m["step"].toInteger(), qint64{i + 1});
      QVERIFY(std::abs(m["loss"].toDouble() - loss(i)) < 1e-12);
      QVERIFY(m["eval_loss"].isNull());
    }

    // The chart's CSV: the shown run's loss per step, smoothed = raw at no smoothing.
    v.overlay({id});
    v.set_smoothing(0);
    v.chart(0)->set_metric(RunMetric::TrainLoss);
    const QString points = dir.filePath("chart.csv");
    answer_file_dialog(points);
    QTest::mouseClick(v.chart(0)->findChild<QPushButton*>("chart_csv"), Qt::LeftButton);
    lines = read_lines(points);
    QCOMPARE(lines.size(), 4);
    QVERIFY2(lines[0].startsWith("run,"), qPrintable(lines[0]));
    for (int i = 0; i < 3; ++i) {
      const QStringList cells = lines[i + 1].split(',');
      QCOMPARE(cells[0].toLongLong(), id);
      QCOMPARE(cells[1].toDouble(), double(i + 1));
      QVERIFY2(std::abs(cells[2].toDouble() - loss(i)) < 1e-9, qPrintable(lines[i + 1]));
      QCOMPARE(cells[3], cells[2]);
    }
  }
};

QTEST_MAIN(TestUiRuns)
#include "test_ui_runs.moc"
