// The planner window driven as a user would (offscreen, nothing trained): the
// LISA preset against the planner itself and the published LLaMA-2-7B figures,
// the GPU line, custom and malformed config.json files, the per-layer view;
// and the setup form's estimate with its free-memory warning.
#include <QComboBox>
#include <QFile>
#include <QLabel>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QStandardPaths>
#include <QTabWidget>
#include <QTableWidget>
#include <QTemporaryDir>
#include <QtTest>
#include <qcustomplot.h>

#include "core/cpu/cpu_backend.h"
#include "core/common/paths.h"
#include "core/plan/planner.h"
#include "ui/experiment_form.h"
#include "ui/main_window.h"
#include "ui/memory_view.h"
#include "ui/planner_view.h"
#include "ui/plot_style.h"

using namespace lwb;
using namespace lwb::ui;

namespace {

using enum PlannerView::Column;

// Lets the view's zero-time replan timer fire.
void settle() { QTest::qWait(5); }

// A method's cell in the comparison table; an empty item when the method is not there.
QTableWidgetItem cell(const QTableWidget* t, const QString& method, int column) {
  for (int r = 0; r < t->rowCount(); ++r)
    if (t->verticalHeaderItem(r)->text() == method && t->item(r, column)) return *t->item(r, column);
  return QTableWidgetItem();
}

qulonglong cell_bytes(const QTableWidget* t, const QString& method, int column) {
  return cell(t, method, column).data(Qt::UserRole).toULongLong();
}

void write_file(const QString& path, const QByteArray& text) {
  QFile f(path);
  QVERIFY(f.open(QIODevice::WriteOnly | QIODevice::Truncate));
  f.write(text);
}

}  // namespace

class TestUiPlanner : public QObject {
  Q_OBJECT
  QTemporaryDir dir;

  // A plan of `method` on the LISA input, straight from the planner.
  static MemoryPlan lisa(const std::string& method) {
    return plan_memory(lisa_llama2_7b_input(load_plan_model("llama-2-7b", resources_dir()), method));
  }

 private slots:
  void initTestCase() {
    QStandardPaths::setTestModeEnabled(true);
    QVERIFY(dir.isValid());
    QVERIFY2(!shipped_model_names(resources_dir()).empty(), "the shipped model configs are not found");
  }

  void lisa_preset_shows_the_planners_totals() {
    PlannerView v;
    v.show();
    v.lisa_button()->click();
    settle();
    QCOMPARE(v.methods(), QStringList({"full", "lora"}));
    QVERIFY2(v.error_label()->text().isEmpty(), qPrintable(v.error_label()->text()));
    const QTableWidget* t = v.table();
    QCOMPARE(t->rowCount(), 2);
    for (const auto& [name, method] : {std::pair{"full", "full"}, std::pair{"lora", "lora"}}) {
      const MemoryPlan want = lisa(method);
      for (int c = 0; c < kMemCategoryCount; ++c) QCOMPARE(cell_bytes(t, name, c), qulonglong{want.totals[c]});
      QCOMPARE(cell_bytes(t, name, kTotalColumn), qulonglong{want.total});
      QCOMPARE(cell(t, name, kTrainableColumn).data(Qt::UserRole).toLongLong(), qlonglong{want.trainable_params});
    }
    // The published figures (LISA, Figure 3): full ~60 GB, LoRA ~23 GB.
    const double full = static_cast<double>(cell_bytes(t, "full", kTotalColumn));
    const double lora = static_cast<double>(cell_bytes(t, "lora", kTotalColumn));
    QVERIFY(full > lora);
    QVERIFY2(std::abs(full / 60e9 - 1) < 0.10, qPrintable(QString::number(full)));
    QVERIFY2(std::abs(lora / 23e9 - 1) < 0.10, qPrintable(QString::number(lora)));

    // Live: a smaller rank replans LoRA at once, full stays.
    PlanInput in = v.knobs();
    in.adapter.r = 64;
    v.set_knobs(in);
    settle();
    QVERIFY(static_cast<double>(cell_bytes(t, "lora", kTotalColumn)) < lora);
    QCOMPARE(static_cast<double>(cell_bytes(t, "full", kTotalColumn)), full);
  }

  void the_gpu_line_flags_what_does_not_fit() {
    PlannerView v;
    v.lisa_button()->click();
    v.set_gpu_gib(24);
    settle();
    QVERIFY(!v.fits("full"));
    QVERIFY(v.fits("lora"));
    const QTableWidget* t = v.table();
    QVERIFY(cell(t, "full", kFitsColumn).text().startsWith("no"));
    QVERIFY(cell(t, "lora", kFitsColumn).text().startsWith("yes"));
    v.set_gpu_gib(141);
    settle();
    QVERIFY(v.fits("full"));
    QVERIFY(cell(t, "full", kFitsColumn).text().startsWith("yes"));
    // A custom size between LoRA (21.7 GB) and full (58.9 GB).
    v.set_gpu_gib(40);
    settle();
    QCOMPARE(v.gpu_gib(), 40.0);
    QVERIFY(!v.fits("full"));
    QVERIFY(v.fits("lora"));
  }

  void a_custom_config_json_is_planned() {
    PlannerView v;
    settle();
    const QString file = dir.filePath("config.json");
    write_file(file, R"({"model_type": "llama", "hidden_size": 192, "intermediate_size": 512,
                         "num_attention_heads": 6, "num_key_value_heads": 2, "num_hidden_layers": 3,
                         "vocab_size": 1000, "max_position_embeddings": 256, "rms_norm_eps": 1e-5})");
    QVERIFY2(v.open_config(file), qPrintable(v.error_label()->text()));
    settle();
    QVERIFY2(v.error_label()->text().isEmpty(), qPrintable(v.error_label()->text()));
    // As the plan command would: pytorch-eager in bf16 at 256 tokens (the
    // model's maximum), the default adapter.
    PlanInput in;
    in.model = load_plan_model(file.toStdString(), {});
    in.profile = PlanProfile::PytorchEager;
    in.precision = parse_plan_precision("bf16");
    in.optimizer = OptimizerStates::BF16;
    in.seq = 256;
    select_method(in.adapter, "lora");
    const MemoryPlan want = plan_memory(in);
    QCOMPARE(cell_bytes(v.table(), "lora", kTotalColumn), qulonglong{want.total});
    // The per-layer view: the model level and each of the 3 layers (the total is no bar).
    v.show_details_of("lora");
    QCOMPARE(v.layer_bars().stacks(), 3 + 1);
  }

  void a_malformed_config_json_shows_an_error_and_keeps_the_plan() {
    PlannerView v;
    v.lisa_button()->click();
    settle();
    const std::vector<MemoryPlan> before = v.plans();
    const QString model = v.findChild<QComboBox*>("planner_model")->currentText();
    const QString broken = dir.filePath("broken.json"), wrong = dir.filePath("wrong.json");
    write_file(broken, "{\"hidden_size\": 4096, ");
    write_file(wrong, R"({"hidden_size": "wide", "num_hidden_layers": 2})");
    for (const QString& file : {broken, wrong}) {
      QVERIFY(!v.open_config(file));
      settle();
      QVERIFY2(v.error_label()->text().contains(QFileInfo(file).fileName()), qPrintable(v.error_label()->text()));
      QCOMPARE(v.findChild<QComboBox*>("planner_model")->currentText(), model);
      QCOMPARE(v.plans().size(), before.size());
      for (std::size_t i = 0; i < before.size(); ++i) QCOMPARE(v.plans()[i].total, before[i].total);
    }
    // A knob the profile refuses: the error names the setting, the plans stay.
    PlanInput in = v.knobs();
    in.profile = PlanProfile::Workbench;
    in.precision = parse_plan_precision("fp16");
    v.set_knobs(in);
    settle();
    QVERIFY2(v.error_label()->text().contains("plan.precision"), qPrintable(v.error_label()->text()));
    QCOMPARE(v.plans().front().total, before.front().total);
  }

  void a_model_entry_that_no_longer_loads_is_not_shown_as_planned() {
    // A config opened earlier is listed; once its file is broken, choosing it
    // again fails and the box goes back to the model that is planned.
    PlannerView v;
    auto* box = v.findChild<QComboBox*>("planner_model");
    const QString file = dir.filePath("later-broken.json");
    write_file(file, R"({"model_type": "llama", "hidden_size": 128, "intermediate_size": 256,
                         "num_attention_heads": 4, "num_key_value_heads": 4, "num_hidden_layers": 2,
                         "vocab_size": 500, "max_position_embeddings": 128, "rms_norm_eps": 1e-5})");
    QVERIFY2(v.open_config(file), qPrintable(v.error_label()->text()));
    const int entry = box->currentIndex();
    v.select_model("small");
    settle();
    const std::size_t planned = v.plans().front().total;
    write_file(file, "{");
    box->setCurrentIndex(entry);
    settle();
    QCOMPARE(box->currentText(), QString("small"));
    QVERIFY2(v.error_label()->text().contains("later-broken.json"), qPrintable(v.error_label()->text()));
    QCOMPARE(v.plans().front().total, planned);
  }

  void the_per_layer_view_shows_the_selected_method() {
    PlannerView v;
    v.lisa_button()->click();
    settle();
    const MemoryPlan lora = lisa("lora");
    v.show_details_of("lora");
    QCOMPARE(v.layer_bars().stacks(), 32 + 1);  // model level, 32 layers
    // Bar values are the plan's rows, in the binary unit of the largest row
    // (a layer of LLaMA-2-7B holds hundreds of MiB), named on the axis.
    std::size_t largest = 0;
    for (const auto& row : lora.rows) {
      std::size_t sum = 0;
      for (std::size_t b : row.bytes) sum += b;
      largest = std::max(largest, sum);
    }
    const auto [unit, unit_name] = binary_unit(static_cast<double>(largest));
    QCOMPARE(v.layer_bars().unit(), unit);
    QCOMPARE(v.layers_plot()->xAxis->label(), unit_name);
    QCOMPARE(unit_name, QString("MiB"));
    const auto* frozen = v.layer_bars().bars(MemCategory::FrozenWeights);
    QCOMPARE(frozen->data()->at(1)->value, static_cast<double>(lora.rows[1].bytes[0]) / v.layer_bars().unit());
    QVERIFY(v.terms_text()->toPlainText().startsWith(QString::fromStdString(format_plan_table(lora)).left(40)));
    QVERIFY(v.terms_text()->toPlainText().contains("r = 128"));
    // One convention everywhere (the table, this text, the Memory tab, the
    // Setup form): binary units, labelled.
    const QString terms = v.terms_text()->toPlainText();
    QVERIFY2(!terms.contains(QRegularExpression("\\d (kB|MB|GB)\\b")), qPrintable(terms));
    QVERIFY(terms.contains("GiB = 2^30 bytes"));
    QVERIFY(terms.contains(QString::fromStdString(format_plan_bytes(static_cast<double>(lora.total)))));
    QCOMPARE(cell(v.table(), "lora", kTotalColumn).text(), format_bytes(static_cast<double>(lora.total)));
    QVERIFY(cell(v.table(), "lora", kTotalColumn).text().endsWith(" GiB"));
    QVERIFY2(!v.summary_label()->text().contains(QRegularExpression("\\d (kB|MB|GB)\\b")),
             qPrintable(v.summary_label()->text()));
    v.show_details_of("full");
    QVERIFY(!v.terms_text()->toPlainText().contains("r = 128"));
    QCOMPARE(frozen->data()->at(1)->value, 0.0);  // full fine-tuning freezes nothing
  }

  void the_setup_form_shows_the_planners_estimate() {
    MainWindow w(std::filesystem::path(dir.path().toStdString()) / "planner.sqlite3");
    bool planner_tab = false;
    for (int i = 0; i < w.tabs()->count(); ++i) planner_tab |= w.tabs()->tabText(i) == "Planner";
    QVERIFY(planner_tab);

    ExperimentForm* f = w.form();
    f->set_field("model.preset", "tiny");
    f->set_field("adapter.method", "lora");
    f->set_field("adapter.r", "16");
    f->set_field("adapter.dropout", "0");
    f->set_field("adapter.targets", "all");
    f->set_field("train.batch", "8");
    f->set_field("train.seq_len", "64");
    f->set_field("train.device", "cpu");
    PlanInput in;
    in.model = model_preset("tiny");
    select_method(in.adapter, "lora");
    in.adapter.r = 16;
    in.adapter.targets.assign(kAllTargets.begin(), kAllTargets.end());
    in.batch = 8;
    in.seq = 64;
    in.threads = default_plan_threads();
    const MemoryPlan small = plan_memory(in);
    const QString text = f->memory_label()->text();
    QVERIFY2(text.contains(format_bytes(static_cast<double>(small.total))),
             qPrintable(text));
    QVERIFY2(!text.contains("Exceeds"), qPrintable(text));

    // Full fine-tuning of the small preset at 4096 x 512 tokens needs more than this machine's RAM.
    in.model = model_preset("small");
    select_method(in.adapter, "full");
    in.batch = 4096;
    in.seq = 512;
    const MemoryPlan huge = plan_memory(in);
    const std::size_t free = CpuBackend().device_free_bytes();
    if (huge.total <= free) QSKIP("this machine has more free RAM than the huge config needs");
    f->set_field("model.preset", "small");
    f->set_field("adapter.method", "full");
    f->set_field("train.batch", "4096");
    f->set_field("train.seq_len", "512");
    const QString warning = f->memory_label()->text();
    QVERIFY2(warning.contains("Exceeds the free memory"), qPrintable(warning));
    QVERIFY2(warning.contains(format_bytes(static_cast<double>(huge.total))),
             qPrintable(warning));
  }
};

QTEST_MAIN(TestUiPlanner)
#include "test_ui_planner.moc"
