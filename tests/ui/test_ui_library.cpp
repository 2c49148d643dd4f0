// The Library tab's kohya_ss-style tools driven through the view (offscreen),
// each a background job, their results compared with direct computations
// (tests/core/adapter_fixtures.h: s·B·A by plain loops): resize (the dropped
// energy is the squared error, singular values taken apart from the tool),
// merge at ratios into the base (W + Σ rᵢ·ΔWᵢ), extract from a full
// fine-tuning run (a known low-rank update comes back), verify; and each
// new adapter's lineage shown. The base is a randomly initialised tiny
// model written as the cached base of a throwaway data folder
// (LWB_DATA_DIR), so nothing is pretrained.
#include <QLabel>
#include <QSignalSpy>
#include <QStandardPaths>
#include <QTableWidget>
#include <QTemporaryDir>
#include <QTextBrowser>
#include <QtTest>
#include <qcustomplot.h>

#include <cmath>

#include "core/source/base_cache.h"
#include "core/adapters/numerical_rank.h"
#include "core/backend/backend_registry.h"
#include "core/common/paths.h"
#include "core/compose/merge.h"
#include "core/model/checkpoint.h"
#include "core/model/weights_init.h"
#include "core/store/store.h"
#include "core/train/trainer.h"
#include "tests/core/adapter_fixtures.h"
#include "ui/library_view.h"

using namespace lwb;
using namespace lwb::ui;
using lwb::test::direct_delta;
using lwb::test::random_adapter;
using lwb::test::rel_diff;
using lwb::test::squared_norm;
namespace fs = std::filesystem;

namespace {

bool wait_for_job(LibraryView& view) {
  QSignalSpy done(&view, &LibraryView::job_finished);
  return done.wait(300000);
}

}  // namespace

class TestUiLibrary : public QObject {
  Q_OBJECT
  QTemporaryDir dir;
  std::unique_ptr<Backend> be = make_backend("cpu");
  MemoryLedger ledger;
  std::unique_ptr<Model> base;
  std::string base_fp;
  std::int64_t a_id = 0, b_id = 0;

  fs::path path(const char* name) const { return fs::path(dir.path().toStdString()) / name; }
  fs::path db() const { return path("library.sqlite3"); }

  std::unique_ptr<Model> frozen_model() {
    auto m = std::make_unique<Model>(model_preset("tiny"), Model::Mode::Frozen);
    m->materialize(*be, ledger, 1, 1);
    return m;
  }

  AdapterState adapter_on_base(std::uint64_t seed, int r, std::vector<Target> targets) const {
    AdapterState a = random_adapter(seed, r, std::move(targets));
    a.base_fingerprint = base_fp;
    return a;
  }

  void select(LibraryView& v, const char* name) {
    const std::optional<std::int64_t> id = Store(db()).find_adapter(name);
    QVERIFY2(id, name);
    v.select_adapters({*id});
  }

 private slots:
  void initTestCase() {
    QStandardPaths::setTestModeEnabled(true);
    QVERIFY(dir.isValid());
    const fs::path data = path("data");
    qputenv("LWB_DATA_DIR", QByteArray::fromStdString(data.string()));
    base = frozen_model();
    base->init_base_weights(23);
    const fs::path file = cached_base_path(data, "tiny");
    fs::create_directories(file.parent_path());
    save_base_checkpoint(*base, file, {{"lwb.preset", "tiny"}, {"lwb.recipe", pretrain_recipe("tiny")}});
    QVERIFY(base_model_ready("tiny", {}));
    base_fp = base_fingerprint(*base);
    Store store(db());
    a_id = store.save_adapter("a", std::nullopt, adapter_on_base(1, 6, {Target::Q, Target::V}), "reverse", NAN, NAN);
    b_id = store.save_adapter("b", std::nullopt, adapter_on_base(2, 4, {Target::Q, Target::Up}), "add", NAN, NAN);
  }

  void resize_keeps_the_largest_singular_values() {
    LibraryView v(db());
    v.show();
    QVERIFY(v.row_of("a") >= 0 && v.row_of("b") >= 0);
    QVERIFY(v.resize(a_id, 2, "a-r2"));
    QVERIFY(v.busy());
    QVERIFY(wait_for_job(v));
    QVERIFY2(v.status_label()->text().contains("energy kept"), qPrintable(v.status_label()->text()));
    QVERIFY(v.row_of("a-r2") >= 0);
    // The retained energy per module is drawn.
    QVERIFY(v.energy_plot()->isVisible());
    QVERIFY(v.energy_plot()->plottableCount() > 0);

    const AdapterState a = Store(db()).load_adapter(a_id);
    const AdapterState r2 = Store(db()).load_adapter(*Store(db()).find_adapter("a-r2"));
    QCOMPARE(r2.config.r, 2);
    for (int l = 0; l < a.model.layers; ++l)
      for (Target t : a.config.targets) {
        const LinearShape sh = linear_shape(a.model, t);
        const std::vector<double> full = direct_delta(a, l, t);
        const std::vector<double> sv = singular_values(full, sh.out, sh.in);
        const auto [dropped, total] = lwb::test::tail_energy(sv, 2);
        std::vector<double> err = compose::dense_delta(r2, module_hf_name(l, t));
        for (std::size_t i = 0; i < err.size(); ++i) err[i] -= full[i];
        QVERIFY2(std::abs(squared_norm(err) - dropped) < 1e-5 * total,
                 qPrintable(QString("layer %1: error %2, dropped energy %3").arg(l).arg(squared_norm(err)).arg(dropped)));
      }

    // Its lineage names the tool and the adapter it came from; a's names what was made of it.
    select(v, "a-r2");
    const QString lineage = v.lineage_view()->toPlainText();
    QVERIFY2(lineage.contains("made by resize") && lineage.contains("a"), qPrintable(lineage));
    select(v, "a");
    QVERIFY2(v.lineage_view()->toPlainText().contains("input of resize"), qPrintable(v.lineage_view()->toPlainText()));
    QVERIFY(v.jobs_table()->rowCount() >= 1);

    // A taken name is refused with the reason, and nothing new is kept.
    const int rows = v.table()->rowCount();
    QVERIFY(v.resize(a_id, 3, "a-r2"));
    QVERIFY(wait_for_job(v));
    QVERIFY2(v.status_label()->text().contains("a-r2"), qPrintable(v.status_label()->text()));
    QCOMPARE(v.table()->rowCount(), rows);
  }

  // base + 0.5·ΔW_a − 1.0·ΔW_b, written as a checkpoint, against the sum by hand.
  void merge_adds_the_updates_at_their_ratios() {
    LibraryView v(db());
    const QString out = QString::fromStdString(path("merged.safetensors").string());
    QVERIFY(v.merge({{a_id, 0.5}, {b_id, -1.0}}, out, false));
    QVERIFY(wait_for_job(v));
    QVERIFY2(v.status_label()->text().contains("model.base = " + out), qPrintable(v.status_label()->text()));
    auto merged = frozen_model();
    load_base_checkpoint(*merged, out.toStdString());
    const AdapterState a = Store(db()).load_adapter(a_id);
    const AdapterState b = Store(db()).load_adapter(b_id);
    for (int l = 0; l < base->config().layers; ++l)
      for (Target t : kAllTargets) {
        std::vector<double> want = download_values(*be, base->linear(l, t).weight);
        for (const auto& [adapter, ratio] : {std::pair{&a, 0.5}, std::pair{&b, -1.0}})
          if (adapter->config.targets_contain(t)) {
            const std::vector<double> d = direct_delta(*adapter, l, t);
            for (std::size_t i = 0; i < want.size(); ++i) want[i] += ratio * d[i];
          }
        const double e = rel_diff(download_values(*be, merged->linear(l, t).weight), want);
        QVERIFY2(e < 1e-6, qPrintable(QString("layer %1 %2: %3").arg(l).arg(target_short_name(t)).arg(e)));
      }
    // The file is not overwritten unless asked.
    QVERIFY(v.merge({{a_id, 1.0}}, out, false));
    QVERIFY(wait_for_job(v));
    QVERIFY2(v.status_label()->text().contains("exists; nothing was written"), qPrintable(v.status_label()->text()));
  }

  // A full fine-tuning run whose kept weights are the base plus a known rank-2
  // update on v: extracting rank 2 on v gives that update back.
  void extract_recovers_a_full_fine_tunings_update() {
    Store store(db());
    const AdapterState update = adapter_on_base(3, 2, {Target::V});
    auto tuned = frozen_model();
    merge_adapter_into_base(*base, update, *tuned);
    const std::int64_t run = lwb::test::full_run_with_weights(store, *tuned);

    LibraryView v(db());
    QVERIFY(v.extract(run, 2, {Target::V}, "extracted"));
    QVERIFY(wait_for_job(v));
    QVERIFY2(v.status_label()->text().contains("Kept \"extracted\""), qPrintable(v.status_label()->text()));
    const AdapterState got = store.load_adapter(*store.find_adapter("extracted"));
    QCOMPARE(got.config.r, 2);
    for (int l = 0; l < update.model.layers; ++l) {
      const double e = rel_diff(compose::dense_delta(got, module_hf_name(l, Target::V)), direct_delta(update, l, Target::V));
      QVERIFY2(e < 1e-4, qPrintable(QString("layer %1: %2").arg(l).arg(e)));
    }
    select(v, "extracted");
    QVERIFY2(v.lineage_view()->toPlainText().contains(QString("trained by run %1").arg(run)),
             qPrintable(v.lineage_view()->toPlainText()));
  }

  void verify_says_the_verdict() {
    LibraryView v(db());
    QVERIFY(v.verify(b_id));
    QVERIFY(wait_for_job(v));
    QVERIFY2(v.status_label()->text().startsWith("verified"), qPrintable(v.status_label()->text()));
  }
};

QTEST_MAIN(TestUiLibrary)
#include "test_ui_library.moc"
