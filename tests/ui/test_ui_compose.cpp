// The Compose tab driven as a user would (offscreen): adapters dragged from
// the library onto the canvas through the real drop handlers, a refused drop,
// a weight search in the background with its live plot, an evaluation, save
// and reopen, export as a PEFT folder, a node dragged back to the library,
// and the hub demo from its button.
#include <QApplication>
#include <QCheckBox>
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QMessageBox>
#include <QFileInfo>
#include <QJsonDocument>
#include <QJsonObject>
#include <QMimeData>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSignalSpy>
#include <QSpinBox>
#include <QStandardPaths>
#include <QTabWidget>
#include <QTableWidget>
#include <QTemporaryDir>
#include <QTimer>
#include <QtTest>
#include <algorithm>

#include "core/compose/hub.h"
#include "core/compose/seeds.h"
#include "core/io/peft.h"
#include "core/model/checkpoint.h"
#include "core/store/store.h"
#include "core/common/paths.h"
#include "core/train/trainer.h"
#include "ui/adapter_library.h"
#include "ui/compose_canvas.h"
#include "ui/compose_view.h"
#include "ui/library_view.h"
#include "ui/main_window.h"
#include "ui/objective_plot.h"

#include <qcustomplot.h>

using namespace lwb;
using namespace lwb::ui;
namespace fs = std::filesystem;

namespace {

constexpr int kJobTimeoutMs = 300000;

// Enter, move and drop on a widget's viewport, as a drag from elsewhere
// delivers them; returns whether the drop was accepted.
bool drag_and_drop(QWidget* target, QMimeData* mime, QPoint pos) {
  QDragEnterEvent enter(pos, Qt::CopyAction | Qt::MoveAction, mime, Qt::LeftButton, Qt::NoModifier);
  QApplication::sendEvent(target, &enter);
  if (!enter.isAccepted()) return false;
  QDragMoveEvent move(pos, Qt::CopyAction | Qt::MoveAction, mime, Qt::LeftButton, Qt::NoModifier);
  QApplication::sendEvent(target, &move);
  QDropEvent drop(QPointF(pos), Qt::CopyAction | Qt::MoveAction, mime, Qt::LeftButton, Qt::NoModifier);
  QApplication::sendEvent(target, &drop);
  return drop.isAccepted();
}

bool drop_adapter(ComposeView& view, const QString& adapter, QPoint pos) {
  const int row = view.library()->row_of(adapter);
  if (row < 0) qFatal("adapter %s is not in the library", qPrintable(adapter));
  std::unique_ptr<QMimeData> mime(view.library()->drag_data({row}));
  return drag_and_drop(view.canvas()->viewport(), mime.get(), pos);
}

bool wait_for_job(ComposeView& view) {
  QSignalSpy done(&view, &ComposeView::job_finished);
  return done.count() > 0 || done.wait(kJobTimeoutMs);
}

bool wait_for_library_job(LibraryView& view) {
  QSignalSpy done(&view, &LibraryView::job_finished);
  return done.count() > 0 || done.wait(kJobTimeoutMs);
}

QJsonObject read_json_file(const QString& path) {
  QFile f(path);
  return f.open(QIODevice::ReadOnly) ? QJsonDocument::fromJson(f.readAll()).object() : QJsonObject();
}

}  // namespace

class TestUiCompose : public QObject {
  Q_OBJECT
  QTemporaryDir dir;
  TrainerEnvironment env;
  QString length, add, wide;  // two compatible adapters and one of another rank

  fs::path db() const { return fs::path(dir.path().toStdString()) / "compose.sqlite3"; }

  // A short LoRA run on the tiny base, kept in the library.
  QString train(Store& store, const std::string& task, const std::string& name, int steps, int rank_factor) {
    ExperimentConfig c = experiment_preset("tiny-lora");
    c.name = name;
    c.data.task = task;
    c.data.n_train = 300;
    c.data.n_heldout = 20;
    c.train.steps = steps;
    c.train.eval_every = 0;
    c.train.eval_examples = 20;
    c.schedule.warmup_steps = std::min(5, steps);
    c.adapter.r *= rank_factor;
    Trainer t(c, env);
    TrainerSink none;
    const RunResult r = t.run(none);
    if (r.status != RunStatus::Finished) qFatal("training %s failed: %s", name.c_str(), r.error.c_str());
    store.save_adapter(name, std::nullopt, t.adapter_state(), task, r.final_eval.loss, r.final_eval.accuracy);
    return QString::fromStdString(name);
  }

 private slots:
  void initTestCase() {
    QStandardPaths::setTestModeEnabled(true);
    QVERIFY(dir.isValid());
    env.data_dir = user_data_dir();
    const fs::path base = ensure_base_model("tiny", env);
    const std::string fp = checkpoint_metadata(base, "lwb.fingerprint");
    Store store(db());
    // Named as the hub demo names its members, so the demo reuses them.
    length = train(store, "length", compose::hub_adapter_name("length", fp), 30, 1);
    add = train(store, "add", compose::hub_adapter_name("add", fp), 30, 1);
    wide = train(store, "copy", "wide-rank-copy", 2, 2);
  }

  void theLibraryListsAndFilters() {
    ComposeView view(db());
    QCOMPARE(view.library()->rows(), 3);
    view.library()->set_filter("wide");
    QCOMPARE(view.library()->visible_rows(), 1);
    view.library()->set_filter("LORA");  // the variant column, any case
    QCOMPARE(view.library()->visible_rows(), 3);
    view.library()->set_filter("");
    QCOMPARE(view.library()->visible_rows(), 3);
  }

  void composeSearchEvaluateSaveReopenExport() {
    ComposeView view(db());
    view.resize(1400, 800);
    view.show();
    QVERIFY(QTest::qWaitForWindowExposed(&view));
    ComposeCanvas* canvas = view.canvas();

    // Two adapters dragged onto the canvas become nodes where they land.
    view.mode_box()->setCurrentText("linear");
    const QPointF landing = canvas->mapToScene(QPoint(420, 160));
    QVERIFY(drop_adapter(view, length, QPoint(60, 80)));
    QVERIFY(drop_adapter(view, add, QPoint(420, 160)));
    QCOMPARE(view.members(), 2);
    QCOMPARE(canvas->title(0), length);
    QCOMPARE(canvas->position(1), landing);

    // One of another rank is refused with the reason, and nothing is added.
    drop_adapter(view, wide, QPoint(200, 300));
    QCOMPARE(view.members(), 2);
    QCOMPARE(canvas->size(), 2);
    const QString refusal = view.status_label()->text();
    QVERIFY2(refusal.contains("\"" + wide + "\" cannot be composed") && refusal.contains("rank"), qPrintable(refusal));
    drop_adapter(view, add, QPoint(200, 300));
    QCOMPARE(view.members(), 2);
    QVERIFY(view.status_label()->text().contains("already on the canvas"));

    // Weights set on the nodes.
    canvas->weight_box(0)->setValue(0.25);
    canvas->weight_box(1)->setValue(-0.5);
    QCOMPARE(view.weights(), (std::vector<double>{0.25, -0.5}));

    // A small search in the background, the plot and nodes following it.
    view.optimizer_box()->setCurrentText("cma-es");
    view.budget_box()->setValue(6);
    view.shots_box()->setValue(4);
    view.seed_box()->setValue(3);
    view.seeds_box()->setValue(1);  // one search, then Evaluate (several seeds: searchOverSeedsShowsIntervals)
    QTest::mouseClick(view.search_button(), Qt::LeftButton);
    QVERIFY(view.busy());
    QVERIFY(view.cancel_button()->isEnabled());
    QVERIFY(!view.canvas()->isEnabled());
    QVERIFY(wait_for_job(view));
    QVERIFY(!view.busy());
    const std::vector<compose::Trial> trace = view.trace();
    QCOMPARE(static_cast<int>(trace.size()), 6);
    QCOMPARE(view.objective_plot()->points(), 6);
    QCOMPARE(trace.front().weights, (std::vector<double>{0, 0}));
    const auto best = std::min_element(trace.begin(), trace.end(),
                                       [](const auto& a, const auto& b) { return a.objective < b.objective; });
    QVERIFY(best->objective <= trace.front().objective);
    QCOMPARE(view.objective_plot()->best(), best->objective);
    QCOMPARE(view.weights(), best->weights);

    // Evaluation: zero-shot, each member, the composition.
    QTest::mouseClick(view.findChild<QPushButton*>("compose_evaluate"), Qt::LeftButton);
    QVERIFY(wait_for_job(view));
    QVERIFY2(view.evaluation().has_value(), qPrintable(view.status_label()->text()));
    QCOMPARE(view.scores_table()->rowCount(), 4);
    QCOMPARE(view.scores_table()->item(0, 0)->text(), QString("zero-shot"));
    QCOMPARE(view.scores_table()->item(3, 0)->text(), QString("composition"));
    QCOMPARE(view.evaluation()->composition().weights, view.weights());
    const QString summary = view.summary_label()->text();
    QVERIFY2(summary.contains("composition vs zero-shot on held-out data") && summary.contains("best single member"),
             qPrintable(summary));

    // Save, clear, reopen: the same composition comes back.
    QVERIFY(view.dirty());
    QVERIFY(view.save_as("ui-compose"));
    QVERIFY(!view.dirty());
    const qint64 id = view.composition_id();
    const std::vector<double> weights = view.weights();
    const QPointF pos0 = canvas->position(0), pos1 = canvas->position(1);
    const double heldout = view.evaluation()->composition().heldout.loss;
    QVERIFY(view.clear_composition());
    QCOMPARE(view.members(), 0);
    QCOMPARE(view.objective_plot()->points(), 0);
    QCOMPARE(view.scores_table()->rowCount(), 0);
    view.mode_box()->setCurrentText("lorahub");
    view.optimizer_box()->setCurrentText("cobyla");
    view.shots_box()->setValue(5);
    QVERIFY(view.open_composition(id));
    QCOMPARE(view.members(), 2);
    QCOMPARE(canvas->title(0), length);
    QCOMPARE(canvas->title(1), add);
    QCOMPARE(view.weights(), weights);
    QCOMPARE(canvas->position(0), pos0);
    QCOMPARE(canvas->position(1), pos1);
    QCOMPARE(view.mode_box()->currentText(), QString("linear"));
    QCOMPARE(view.optimizer_box()->currentText(), QString("cma-es"));
    QCOMPARE(view.shots_box()->value(), 4);
    QCOMPARE(view.seed_box()->value(), 3);
    QCOMPARE(view.trace().size(), trace.size());
    for (std::size_t i = 0; i < trace.size(); ++i) {
      QCOMPARE(view.trace()[i].weights, trace[i].weights);
      QCOMPARE(view.trace()[i].objective, trace[i].objective);
    }
    QCOMPARE(view.objective_plot()->points(), 6);
    QVERIFY(view.evaluation().has_value());
    QCOMPARE(view.evaluation()->composition().heldout.loss, heldout);
    QCOMPARE(view.scores_table()->rowCount(), 4);
    QCOMPARE(view.summary_label()->text(), summary);
    QVERIFY(!view.dirty());

    // Unsaved changes are not dropped without asking.
    canvas->weight_box(0)->setValue(1.0);
    QVERIFY(view.dirty());
    QTimer::singleShot(0, [] {
      auto* box = qobject_cast<QMessageBox*>(QApplication::activeModalWidget());
      QVERIFY(box);
      box->button(QMessageBox::Cancel)->click();
    });
    QVERIFY(!view.open_composition(id));
    QCOMPARE(canvas->weight(0), 1.0);
    canvas->set_weight(0, weights[0]);  // exactly the stored weights again, for the export check

    // Export the merged adapter as a PEFT folder, also into the library.
    const QString out = dir.filePath("exported");
    view.set_export_dir_chooser([out] { return out; });
    view.findChild<QCheckBox*>("compose_add_to_library")->setChecked(true);
    QTest::mouseClick(view.findChild<QPushButton*>("compose_export"), Qt::LeftButton);
    QVERIFY(wait_for_job(view));
    const fs::path folder = out.toStdString();
    QVERIFY2(fs::exists(folder / "adapter_config.json"), qPrintable(view.status_label()->text()));
    QVERIFY(fs::exists(folder / "adapter_model.safetensors"));
    const AdapterState exported = io::read_peft_folder(folder);
    Store store(db());
    std::vector<compose::Member> members;
    for (const QString& name : {length, add})
      members.push_back({name.toStdString(), store.load_adapter(*store.find_adapter(name.toStdString()))});
    compose::Composer composer(members, compose::MergeMode::Linear);
    const AdapterState& expected = composer.compose(weights);
    QCOMPARE(exported.config.r, expected.config.r);
    QCOMPARE(exported.tensors.size(), expected.tensors.size());
    for (const auto& [key, t] : expected.tensors) {
      QVERIFY2(exported.tensors.count(key) == 1, key.c_str());
      QVERIFY2(exported.tensors.at(key).values == t.values, key.c_str());  // float32 on both sides
    }
    QVERIFY(store.find_adapter("ui-compose-merged").has_value());
    QVERIFY(view.library()->row_of("ui-compose-merged") >= 0);

    // A node dragged back to the library leaves the composition.
    std::unique_ptr<QMimeData> node(canvas->drag_data(0));
    QVERIFY(drag_and_drop(view.library()->table()->viewport(), node.get(), QPoint(20, 20)));
    QTRY_COMPARE(view.members(), 1);
    QCOMPARE(canvas->title(0), add);
    QCOMPARE(view.trace().size(), std::size_t(0));  // the trace no longer describes it
    // The library takes nothing but nodes; the canvas nothing but adapters.
    std::unique_ptr<QMimeData> adapter(view.library()->drag_data({0}));
    QVERIFY(!drag_and_drop(view.library()->table()->viewport(), adapter.get(), QPoint(20, 20)));
    QVERIFY(!drag_and_drop(canvas->viewport(), node.get(), QPoint(20, 20)));
  }

  void libraryAdaptersGoOutAndComeBack() {
    // Export and import live in the Library tab.
    LibraryView view(db());
    const std::int64_t id = *Store(db()).find_adapter(add.toStdString());
    const AdapterState original = Store(db()).load_adapter(id);

    // Out as a PEFT folder: the same tensors come back from the core reader.
    const QString peft = dir.filePath("library-peft");
    QVERIFY(view.export_adapter(id, peft, false, false));
    QVERIFY(wait_for_library_job(view));
    QVERIFY2(view.status_label()->text().contains("PEFT folder"), qPrintable(view.status_label()->text()));
    const AdapterState read = io::read_peft_folder(peft.toStdString());
    QCOMPARE(read.tensors.size(), original.tensors.size());
    for (const auto& [key, t] : original.tensors) QVERIFY2(read.tensors.at(key).values == t.values, key.c_str());

    // A folder that is not empty is refused unless overwriting was chosen.
    QVERIFY(!view.export_adapter(id, peft, false, false));
    QVERIFY2(view.status_label()->text().contains("not empty"), qPrintable(view.status_label()->text()));
    QVERIFY(view.export_adapter(id, peft, false, true));
    QVERIFY(wait_for_library_job(view));
    QCOMPARE(read_json_file(peft + "/adapter_config.json")["base_model_name_or_path"].toString(),
             QString("lora-workbench/tiny"));
    // The export dialog's base_model_name_or_path, when the user names the base.
    QVERIFY(view.export_adapter(id, peft, false, true, "me/tiny-base"));
    QVERIFY(wait_for_library_job(view));
    QCOMPARE(read_json_file(peft + "/adapter_config.json")["base_model_name_or_path"].toString(),
             QString("me/tiny-base"));
    QCOMPARE(io::read_peft_folder(peft.toStdString()).base_model, std::string("lora-workbench/tiny"));

    // Merged into its base as a Hugging Face checkpoint.
    const QString merged = dir.filePath("library-merged");
    QVERIFY(view.export_adapter(id, merged, true, false));
    QVERIFY(wait_for_library_job(view));
    QVERIFY2(QFileInfo::exists(merged + "/config.json") && QFileInfo::exists(merged + "/model.safetensors"),
             qPrintable(view.status_label()->text()));

    // Back in under a new name, checked against the tiny base; a taken name
    // and a base it was not trained on are refused with the reason.
    const int before = view.table()->rowCount();
    QVERIFY(view.import_adapter(peft, "add-again", "tiny", "add"));
    QVERIFY(wait_for_library_job(view));
    QCOMPARE(view.table()->rowCount(), before + 1);
    QVERIFY(view.row_of("add-again") >= 0);
    const AdapterState again = Store(db()).load_adapter(*Store(db()).find_adapter("add-again"));
    for (const auto& [key, t] : original.tensors) QVERIFY2(again.tensors.at(key).values == t.values, key.c_str());
    QVERIFY(view.import_adapter(peft, "add-again", "tiny", ""));
    QVERIFY(wait_for_library_job(view));
    QVERIFY2(view.status_label()->text().contains("already has an adapter named"),
             qPrintable(view.status_label()->text()));
    QVERIFY(view.import_adapter(peft, "add-on-merged", merged, ""));
    QVERIFY(wait_for_library_job(view));
    QVERIFY2(view.status_label()->text().contains("another base"), qPrintable(view.status_label()->text()));
    QCOMPARE(view.table()->rowCount(), before + 1);
  }

  // Three seeds from the Search button: every seed searched and evaluated,
  // the table showing mean ± 95% half-width, the error-bar plot (held-out
  // loss) and the
  // paired verdicts; kept by Save and shown again by Open; a plain Evaluate
  // (one set of examples) hides the intervals.
  void searchOverSeedsShowsIntervals() {
    ComposeView view(db());
    view.resize(1400, 900);
    view.show();
    QVERIFY(QTest::qWaitForWindowExposed(&view));
    QVERIFY(drop_adapter(view, length, QPoint(60, 80)));
    QVERIFY(drop_adapter(view, add, QPoint(420, 80)));
    QCOMPARE(view.seeds_box()->value(), compose::kDefaultSeeds);
    QVERIFY(!view.intervals_plot()->isVisible());
    view.optimizer_box()->setCurrentText("cma-es");
    view.budget_box()->setValue(4);
    view.shots_box()->setValue(4);
    view.seeds_box()->setValue(3);
    QTest::mouseClick(view.search_button(), Qt::LeftButton);
    QVERIFY(view.busy());
    QVERIFY(!view.seeds_box()->isEnabled());
    QVERIFY(wait_for_job(view));
    QVERIFY2(view.evaluation().has_value(), qPrintable(view.status_label()->text()));
    const compose::Evaluation e = *view.evaluation();
    QCOMPARE(e.seeds.size(), std::size_t(3));
    QCOMPARE(view.trace().size(), std::size_t(4));  // the first seed's search
    QCOMPARE(view.weights(), e.composition().weights);
    QVERIFY2(view.status_label()->text().contains("over 3 seeds"), qPrintable(view.status_label()->text()));

    const std::vector<compose::RowIntervals> spread = compose::seed_intervals(e);
    QCOMPARE(view.scores_table()->rowCount(), 4);
    for (int r = 0; r < 4; ++r) {
      const compose::RowIntervals& i = spread[static_cast<std::size_t>(r)];
      QCOMPARE(i.heldout_loss.n, 3);
      QCOMPARE(view.scores_table()->item(r, 2)->text(), QString::fromStdString(interval_text(i.heldout_loss, 1, 4)));
      QCOMPARE(view.scores_table()->item(r, 3)->text(),
               QString::fromStdString(interval_text(i.accuracy, 100, 1, false, "%")));
      QVERIFY(view.scores_table()->item(r, 2)->text().contains(QString::fromUtf8("±")));
    }
    // Bars with error bars, one per row, at the mean held-out loss.
    QCustomPlot* plot = view.intervals_plot();
    QVERIFY(plot->isVisible());
    auto* bars = qobject_cast<QCPBars*>(plot->plottable(0));
    QVERIFY(bars);
    QCOMPARE(bars->data()->size(), 4);
    QCOMPARE(bars->data()->at(3)->value, spread[3].heldout_loss.mean);
    bool has_error_bars = false;
    for (int i = 0; i < plot->plottableCount(); ++i) has_error_bars |= qobject_cast<QCPErrorBars*>(plot->plottable(i)) != nullptr;
    QVERIFY(has_error_bars);
    const QString summary = view.summary_label()->text();
    QVERIFY2(summary.contains("3 seeds (") && summary.contains(QString::fromUtf8("composition − zero-shot: ")) &&
                 summary.contains(QString::fromUtf8("composition − best single member: ")),
             qPrintable(summary));

    QVERIFY(view.save_as("ui-seeds"));
    const qint64 id = view.composition_id();
    QVERIFY(view.clear_composition());
    QVERIFY(!view.intervals_plot()->isVisible());
    view.seeds_box()->setValue(1);
    QVERIFY(view.open_composition(id));
    QCOMPARE(view.seeds_box()->value(), 3);
    QCOMPARE(view.evaluation()->seeds.size(), std::size_t(3));
    QVERIFY(view.intervals_plot()->isVisible());
    QCOMPARE(view.scores_table()->item(3, 2)->text(), QString::fromStdString(interval_text(spread[3].heldout_loss, 1, 4)));
    QCOMPARE(view.summary_label()->text(), summary);

    QTest::mouseClick(view.findChild<QPushButton*>("compose_evaluate"), Qt::LeftButton);
    QVERIFY(wait_for_job(view));
    QVERIFY(view.evaluation()->seeds.empty());
    QVERIFY(!view.intervals_plot()->isVisible());
    QVERIFY(!view.scores_table()->item(3, 2)->text().contains(QString::fromUtf8("±")));
  }

  // Issue 16/19 at 1280x720: the composition evaluated over seeds (saved by
  // the test above) opened in the window; the library's filter and names,
  // the canvas, its plot and every column of the scores with their intervals
  // are readable, and the seeds' summary does not squeeze the scores.
  void aLaptopScreenShowsEveryPartReadably() {
    std::int64_t id = 0;
    for (const CompositionRow& r : Store(db()).list_compositions())
      if (r.name == "ui-seeds") id = r.id;
    QVERIFY(id != 0);
    MainWindow w(db());
    w.resize(1280, 720);
    w.show();
    QVERIFY(QTest::qWaitForWindowExposed(&w));
    ComposeView* view = w.compose_view();
    w.tabs()->setCurrentWidget(view);
    QVERIFY(view->open_composition(id));
    QVERIFY(!view->evaluation()->seeds.empty());
    QCoreApplication::processEvents();
    auto* filter = view->library()->findChild<QLineEdit*>("library_filter");
    // Its placeholder says what it filters: at least its first words, beside the clear button.
    QVERIFY2(filter->width() >= filter->fontMetrics().horizontalAdvance("Filter adapters (name") + 40,
             qPrintable(QString::number(filter->width())));
    QTableWidget* library = view->library()->table();
    QVERIFY2(library->viewport()->width() >= library->fontMetrics().horizontalAdvance(length),
             qPrintable(QString::number(library->viewport()->width())));
    QVERIFY2(view->canvas()->width() >= 400 && view->canvas()->height() >= 200,
             qPrintable(QString("%1x%2").arg(view->canvas()->width()).arg(view->canvas()->height())));
    QVERIFY(view->intervals_plot()->isVisible());
    QVERIFY2(view->intervals_plot()->width() >= 280 && view->intervals_plot()->height() >= 180,
             qPrintable(QString("%1x%2").arg(view->intervals_plot()->width()).arg(view->intervals_plot()->height())));
    // Every cell and header of the scores fits its column, the columns fit
    // the table, and every row is in view.
    QTableWidget* scores = view->scores_table();
    QHeaderView* header = scores->horizontalHeader();
    int total = 0;
    for (int c = 0; c < scores->columnCount(); ++c) {
      int need = header->fontMetrics().horizontalAdvance(scores->horizontalHeaderItem(c)->text());
      for (int r = 0; r < scores->rowCount(); ++r)
        need = std::max(need, scores->fontMetrics().horizontalAdvance(scores->item(r, c)->text()));
      QVERIFY2(header->sectionSize(c) >= need,
               qPrintable(QString("column %1: %2 < %3").arg(c).arg(header->sectionSize(c)).arg(need)));
      total += header->sectionSize(c);
    }
    QVERIFY2(total <= scores->viewport()->width(),
             qPrintable(QString("%1 > %2").arg(total).arg(scores->viewport()->width())));
    QVERIFY2(scores->viewport()->height() >= scores->rowCount() * scores->rowHeight(0),
             qPrintable(QString("%1 rows in %2 px").arg(scores->rowCount()).arg(scores->viewport()->height())));
    QVERIFY(view->summary_label()->text().contains(QString::fromUtf8("composition − zero-shot: ")));
    QVERIFY(view->summary_label()->isVisible());
    QVERIFY(view->clear_composition());
  }

  void cancelStopsTheSearchWithItsBestSoFar() {
    ComposeView view(db());
    view.show();
    QVERIFY(drop_adapter(view, length, QPoint(60, 80)));
    QVERIFY(drop_adapter(view, add, QPoint(420, 80)));
    view.optimizer_box()->setCurrentText("cma-es");  // runs to its budget: only Cancel ends it early
    view.budget_box()->setValue(100000);
    QTest::mouseClick(view.search_button(), Qt::LeftButton);
    QTRY_VERIFY_WITH_TIMEOUT(view.trace().size() >= 3, kJobTimeoutMs);
    QTest::mouseClick(view.cancel_button(), Qt::LeftButton);
    QVERIFY(wait_for_job(view));
    QVERIFY(view.trace().size() < 100000);
    QVERIFY2(view.status_label()->text().contains("cma-es cancelled"), qPrintable(view.status_label()->text()));
    const auto best = std::min_element(view.trace().begin(), view.trace().end(),
                                       [](const auto& a, const auto& b) { return a.objective < b.objective; });
    QCOMPARE(view.weights(), best->weights);
    QVERIFY(!view.cancel_button()->isEnabled());
  }

  void anImmediateCancelLeavesTheWeightsAlone() {
    // Cancel may land while the session is still loading, before any
    // evaluation: then there is no result to show, only the notice.
    ComposeView view(db());
    view.show();
    QVERIFY(drop_adapter(view, length, QPoint(60, 80)));
    view.canvas()->set_weight(0, 0.25);
    QVERIFY(view.start_search());
    QTest::mouseClick(view.cancel_button(), Qt::LeftButton);
    QVERIFY(wait_for_job(view));
    const QString status = view.status_label()->text();
    if (view.trace().empty()) {
      QVERIFY2(status.contains("before the first evaluation"), qPrintable(status));
      QCOMPARE(view.canvas()->weight(0), 0.25);
    } else {
      QVERIFY2(status.contains("search cancelled"), qPrintable(status));
    }
  }

  void aNodeIsRemovedByItsButton() {
    ComposeView view(db());
    view.show();
    QVERIFY(drop_adapter(view, length, QPoint(60, 80)));
    QVERIFY(drop_adapter(view, add, QPoint(420, 80)));
    // A real click: the button that sends the request is deleted with its node.
    QTest::mouseClick(view.canvas()->remove_button(0), Qt::LeftButton);
    QTRY_COMPARE(view.members(), 1);
    QCOMPARE(view.canvas()->title(0), add);
  }

  void hubDemoFromTheButton() {
    ComposeView view(db());
    view.show();
    compose::HubPreset p = compose::hub_preset();
    p.member_tasks = {"length", "add"};  // in the library already: reused, not trained
    p.session.heldout = 30;
    view.set_hub_preset(p);
    view.budget_box()->setValue(6);
    QTest::mouseClick(view.hub_button(), Qt::LeftButton);
    QVERIFY(view.busy());
    QVERIFY(wait_for_job(view));
    QVERIFY2(view.composition_id() != 0, qPrintable(view.status_label()->text()));
    QCOMPARE(view.composition_name(), QString("hub-count"));
    QCOMPARE(view.members(), 2);
    QCOMPARE(view.task_box()->currentText(), QString("count"));
    QCOMPARE(view.objective_plot()->points(), 6);
    QCOMPARE(view.scores_table()->rowCount(), 4);
    QCOMPARE(view.evaluation()->seeds.size(), std::size_t(compose::kDefaultSeeds));  // the demo's seeds
    QVERIFY(view.intervals_plot()->isVisible());
    const QString summary = view.summary_label()->text();
    QVERIFY2(summary.contains("composition vs zero-shot on held-out data: loss") &&
                 (summary.contains("better") || summary.contains("worse") || summary.contains("the same")),
             qPrintable(summary));
    const QString log = view.findChild<QPlainTextEdit*>("compose_log")->toPlainText();
    QVERIFY2(log.contains("0 adapter(s) trained, 2 reused"), qPrintable(log));
  }

  void theWindowHasAComposeTab() {
    MainWindow w(db());
    bool found = false;
    for (int i = 0; i < w.tabs()->count(); ++i) found |= w.tabs()->tabText(i) == "Compose";
    QVERIFY(found);
    QVERIFY(w.compose_view()->library()->rows() >= 3);

    // Closing the window with an unsaved composition asks first; Cancel keeps it open.
    w.show();
    const std::int64_t length_id = *Store(db()).find_adapter(length.toStdString());
    QVERIFY(w.compose_view()->add_adapter(length_id, QPointF(0, 0)));
    QVERIFY(w.compose_view()->dirty());
    bool asked = false;
    QTimer::singleShot(0, [&asked] {
      auto* box = qobject_cast<QMessageBox*>(QApplication::activeModalWidget());
      asked = box != nullptr;
      if (box) box->button(QMessageBox::Cancel)->click();
    });
    QVERIFY(!w.close());
    QVERIFY(asked);
    QVERIFY(w.isVisible());
    QCOMPARE(w.compose_view()->members(), 1);

    // With a job running, closing asks again rather than waiting silently;
    // declining keeps the window and the job.
    QVERIFY(w.compose_view()->start_evaluation());
    bool asked_busy = false;
    QTimer answer;
    connect(&answer, &QTimer::timeout, [&asked_busy] {
      auto* box = qobject_cast<QMessageBox*>(QApplication::activeModalWidget());
      if (!box) return;
      if (box->text().contains("still running")) {
        asked_busy = true;
        box->button(QMessageBox::No)->click();
      } else {
        box->button(QMessageBox::Discard)->click();
      }
    });
    answer.start(10);
    QVERIFY(!w.close());
    answer.stop();
    QVERIFY(asked_busy);
    QVERIFY(w.isVisible());
    QVERIFY(wait_for_job(*w.compose_view()));
  }
};

QTEST_MAIN(TestUiCompose)
#include "test_ui_compose.moc"
