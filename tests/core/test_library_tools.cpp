// The library tools against direct computations: resizing by truncated SVD
// (the dense update and the Eckart–Young error against singular values taken
// independently), extracting a known low-rank update from a "fine-tuned"
// model, merging adapters at ratios into a base (W + Σ rᵢ sᵢ BᵢAᵢ summed by
// plain loops), verification, and the store jobs recording their lineage.
// Everything runs on a randomly initialised tiny base written as a fake
// cached base, so no pretraining is needed.
#include <QTemporaryDir>
#include <QtTest>

#include <atomic>
#include <cmath>

#include "core/adapters/numerical_rank.h"
#include "core/backend/backend_registry.h"
#include "core/common/paths.h"
#include "core/compose/adapter_tools.h"
#include "core/compose/library_jobs.h"
#include "core/model/checkpoint.h"
#include "core/source/base_cache.h"
#include "core/model/weights_init.h"
#include "core/train/trainer.h"
#include "tests/core/adapter_fixtures.h"

using namespace lwb;
using namespace lwb::compose;
using lwb::test::direct_delta;
using lwb::test::random_adapter;
using lwb::test::rel_diff;
using lwb::test::squared_norm;
namespace fs = std::filesystem;

class TestLibraryTools : public QObject {
  Q_OBJECT
  QTemporaryDir dir;
  std::unique_ptr<Backend> be = make_backend("cpu");
  MemoryLedger ledger;
  std::unique_ptr<Model> base;
  fs::path base_file;
  std::string base_fp;
  TrainerEnvironment env;

  fs::path path(const char* name) const { return fs::path(dir.path().toStdString()) / name; }

  // A random adapter recorded as trained on this test's base.
  AdapterState adapter_on_base(std::uint64_t seed, int r, std::vector<Target> targets,
                               const std::string& method = "lora") const {
    AdapterState a = random_adapter(seed, r, std::move(targets), method);
    a.base_fingerprint = base_fp;
    return a;
  }

  std::unique_ptr<Model> frozen_model() {
    auto m = std::make_unique<Model>(model_preset("tiny"), Model::Mode::Frozen);
    m->materialize(*be, ledger, 1, 1);
    return m;
  }

 private slots:
  void initTestCase() {
    QVERIFY(dir.isValid());
    // The tiny base, randomly initialised, saved where the cached base lives
    // with today's recipe, so the jobs load it as "tiny" without pretraining.
    env.data_dir = dir.path().toStdString();
    base = frozen_model();
    base->init_base_weights(17);
    base_file = cached_base_path(env.data_dir, "tiny");
    fs::create_directories(base_file.parent_path());
    save_base_checkpoint(*base, base_file, {{"lwb.preset", "tiny"}, {"lwb.recipe", pretrain_recipe("tiny")}});
    QVERIFY(base_model_ready("tiny", env.data_dir));
    base_fp = base_fingerprint(*base);
  }

  void resizeToTheSameRankKeepsTheUpdate() {
    const AdapterState a = adapter_on_base(1, 6, {Target::Q, Target::V, Target::Down});
    const Refactored r = resize_adapter(a, 6);
    QCOMPARE(r.state.config.r, 6);
    QCOMPARE(r.state.config.scaling(), 1.0);
    QVERIFY(std::abs(r.retained - 1) < 1e-12);
    for (int l = 0; l < a.model.layers; ++l)
      for (Target t : a.config.targets) {
        const double e = rel_diff(dense_delta(r.state, module_hf_name(l, t)), direct_delta(a, l, t));
        QVERIFY2(e < 1e-5, qPrintable(QString("%1: %2").arg(QString::fromStdString(module_hf_name(l, t))).arg(e)));
      }
  }

  // Eckart–Young: the rank-2 result is the best rank-2 update, its squared
  // error the energy of the dropped singular values (taken here by dgesdd
  // without vectors, apart from the tool's own SVD), and the reported
  // retained energy says the same.
  void resizeDownKeepsTheLargestSingularValues() {
    const AdapterState a = adapter_on_base(2, 6, {Target::Q, Target::Up}, "adalora");
    const Refactored r = resize_adapter(a, 2);
    QCOMPARE(r.state.config.r, 2);
    QCOMPARE(r.modules.size(), std::size_t(2 * a.model.layers));
    double kept = 0, all = 0;
    for (int l = 0; l < a.model.layers; ++l)
      for (Target t : a.config.targets) {
        const LinearShape sh = linear_shape(a.model, t);
        const std::vector<double> full = direct_delta(a, l, t);
        const std::vector<double> sv = singular_values(full, sh.out, sh.in);
        const auto [dropped, total] = lwb::test::tail_energy(sv, 2);
        std::vector<double> err = dense_delta(r.state, module_hf_name(l, t));
        for (std::size_t i = 0; i < err.size(); ++i) err[i] -= full[i];
        QVERIFY2(std::abs(squared_norm(err) - dropped) < 1e-5 * total,
                 qPrintable(QString("error %1 vs dropped energy %2").arg(squared_norm(err)).arg(dropped)));
        const auto m = std::find_if(r.modules.begin(), r.modules.end(),
                                    [&](const ModuleSpectrum& s) { return s.module == module_hf_name(l, t); });
        QVERIFY(m != r.modules.end());
        QVERIFY(std::abs(m->retained - (1 - dropped / total)) < 1e-9);
        QCOMPARE(m->singular.size(), sv.size());
        kept += total - dropped;
        all += total;
      }
    QVERIFY(std::abs(r.retained - kept / all) < 1e-9);
    QVERIFY(r.min_retained <= r.retained);
    QVERIFY(r.retained < 1);
  }

  void resizeRefusesDoraAndRanksThatDoNotFit() {
    QVERIFY_THROWS_EXCEPTION(IncompatibleMemberError, resize_adapter(adapter_on_base(3, 4, {Target::Q}, "dora"), 2));
    try {
      resize_adapter(adapter_on_base(4, 4, {Target::Q}), 100000);
      QFAIL("a rank above min(in, out) was accepted");
    } catch (const ConfigError& e) {
      QVERIFY2(QString(e.what()).contains("exceeds min(in, out)"), e.what());
    }
  }

  // A "fine-tuned" model is the base plus a known rank-3 update on q, v and
  // down: extracting rank 3 gives that update back; k, untouched, gives zero.
  void extractRecoversAKnownLowRankUpdate() {
    const AdapterState a = adapter_on_base(5, 3, {Target::Q, Target::V, Target::Down});
    auto tuned = frozen_model();
    merge_adapter_into_base(*base, a, *tuned);
    const Refactored r =
        extract_lora(*tuned, base_file, {Target::Q, Target::K, Target::V, Target::Down}, 3, "lora-workbench/tiny", base_fp);
    QCOMPARE(r.state.base_fingerprint, base_fp);
    QVERIFY(r.retained > 1 - 1e-6);
    for (int l = 0; l < a.model.layers; ++l) {
      for (Target t : a.config.targets) {
        const double e = rel_diff(dense_delta(r.state, module_hf_name(l, t)), direct_delta(a, l, t));
        QVERIFY2(e < 1e-4, qPrintable(QString("layer %1: %2").arg(l).arg(e)));
      }
      QVERIFY(squared_norm(dense_delta(r.state, module_hf_name(l, Target::K))) < 1e-20);
    }
    // Rank 1 keeps the largest singular value's share, no more.
    const Refactored one = extract_lora(*tuned, base_file, {Target::Q}, 1, "lora-workbench/tiny", base_fp);
    const LinearShape sh = linear_shape(a.model, Target::Q);
    const std::vector<double> sv = singular_values(direct_delta(a, 0, Target::Q), sh.out, sh.in);
    QVERIFY(std::abs(one.modules.front().retained - retained_energy(sv, 1)) < 1e-5);
  }

  // W + 0.7·ΔW_a − 0.4·ΔW_b, adapters of different targets, ranks and
  // kinds (LoRA and AdaLoRA), against the sum done by hand.
  void mergeAddsTheUpdatesAtTheirRatios() {
    const AdapterState a = adapter_on_base(6, 4, {Target::Q, Target::V});
    const AdapterState b = adapter_on_base(7, 6, {Target::Q, Target::Up}, "adalora");
    auto merged = frozen_model();
    const std::vector<Member> members = {{"a", a}, {"b", b}};
    const std::vector<double> ratios = {0.7, -0.4};
    merge_into_base(*base, members, ratios, *merged);
    for (int l = 0; l < base->config().layers; ++l)
      for (Target t : kAllTargets) {
        std::vector<double> want = download_values(*be, base->linear(l, t).weight);
        if (a.config.targets_contain(t)) {
          const std::vector<double> d = direct_delta(a, l, t);
          for (std::size_t i = 0; i < want.size(); ++i) want[i] += 0.7 * d[i];
        }
        if (b.config.targets_contain(t)) {
          const std::vector<double> d = direct_delta(b, l, t);
          for (std::size_t i = 0; i < want.size(); ++i) want[i] -= 0.4 * d[i];
        }
        const double e = rel_diff(download_values(*be, merged->linear(l, t).weight), want);
        QVERIFY2(e < 1e-6, qPrintable(QString("layer %1 %2: %3").arg(l).arg(target_short_name(t)).arg(e)));
      }
    // A DoRA adapter merges alone at ratio 1; beside another it is refused.
    const AdapterState dora = adapter_on_base(8, 4, {Target::Q}, "dora");
    merge_into_base(*base, std::vector<Member>{{"dora", dora}}, std::vector<double>{1.0}, *merged);
    QVERIFY_THROWS_EXCEPTION(IncompatibleMemberError,
                             merge_into_base(*base, std::vector<Member>{{"a", a}, {"dora", dora}},
                                             std::vector<double>{1.0, 1.0}, *merged));
    QVERIFY_THROWS_EXCEPTION(ConfigError, merge_into_base(*base, members, std::vector<double>{1.0}, *merged));
  }

  void verifyFindsWhatIsWrong() {
    const Verification ok = verify_adapter(adapter_on_base(9, 4, {Target::Q, Target::V}), *base, base_fp);
    QVERIFY2(ok.ok(), ok.problems.empty() ? "" : ok.problems.front().c_str());
    QCOMPARE(ok.update_ratio.size(), std::size_t(2 * base->config().layers));
    for (const auto& [module, ratio] : ok.update_ratio) QVERIFY2(ratio > 0 && std::isfinite(ratio), module.c_str());

    AdapterState other = adapter_on_base(9, 4, {Target::Q});
    other.base_fingerprint = "ffff";
    const Verification wrong_base = verify_adapter(other, *base, base_fp);
    QVERIFY(!wrong_base.ok());
    QVERIFY(QString::fromStdString(wrong_base.problems.front()).contains("another base"));

    AdapterState broken = adapter_on_base(9, 4, {Target::Q});
    const std::string key = peft_key(module_hf_name(1, Target::Q), "lora_B.weight");
    broken.tensors.at(key).values[3] = NAN;
    const Verification nan = verify_adapter(broken, *base, base_fp);
    QVERIFY(!nan.ok());
    QVERIFY2(QString::fromStdString(nan.problems.front()).contains(QString::fromStdString(key)),
             nan.problems.front().c_str());
  }

  // The jobs through the store: each records what it did, the new adapters
  // know where they come from, and a cancelled job records nothing.
  void jobsRecordTheirLineage() {
    Store store(path("library.sqlite3"));
    const std::int64_t a = store.save_adapter("a", std::nullopt, adapter_on_base(10, 6, {Target::Q, Target::V}), "reverse", NAN, NAN);
    const std::int64_t b = store.save_adapter("b", std::nullopt, adapter_on_base(11, 4, {Target::Q}), "add", NAN, NAN);

    std::vector<double> fractions;
    JobControl control;
    control.progress = [&](const std::string&, double f) { fractions.push_back(f); };
    const Derivation resized = resize_library_adapter(store, a, 3, "a-r3", control);
    QCOMPARE(resized.tool, std::string("resize"));
    QVERIFY(resized.output_adapter_id);
    QVERIFY(std::is_sorted(fractions.begin(), fractions.end()));
    QCOMPARE(fractions.back(), 1.0);
    QCOMPARE(store.load_adapter(*resized.output_adapter_id).config.r, 3);
    QVERIFY2(describe_derivation(resized).find("energy kept") != std::string::npos, describe_derivation(resized).c_str());
    const AdapterLineage lineage = store.adapter_lineage(*resized.output_adapter_id);
    QVERIFY(lineage.made_by);
    QCOMPARE(lineage.made_by->inputs.size(), std::size_t(1));
    QCOMPARE(lineage.made_by->inputs.front().adapter_id, std::optional<std::int64_t>(a));
    QCOMPARE(lineage.made_by->inputs.front().label, std::string("a"));
    QCOMPARE(store.adapter_lineage(a).used_by.size(), std::size_t(1));
    QVERIFY_THROWS_EXCEPTION(ConfigError, resize_library_adapter(store, a, 2, "a-r3"));  // the name is taken

    const fs::path merged_file = path("merged.safetensors");
    const Derivation merged = merge_library_adapters(store, {{a, 0.5}, {b, 1.0}}, merged_file, false, env);
    QVERIFY(fs::exists(merged_file));
    QCOMPARE(merged.output_path, merged_file.string());
    QCOMPARE(merged.inputs.size(), std::size_t(2));
    QCOMPARE(merged.inputs[0].ratio, 0.5);
    QVERIFY_THROWS_EXCEPTION(ConfigError, merge_library_adapters(store, {{a, 1.0}}, merged_file, false, env));

    const Derivation verified = verify_library_adapter(store, b, "", env);
    QVERIFY2(describe_derivation(verified).starts_with("verified"), describe_derivation(verified).c_str());

    // A full fine-tuning run whose weights are the base plus a rank-2 update.
    const AdapterState update = adapter_on_base(12, 2, {Target::V});
    auto tuned = frozen_model();
    merge_adapter_into_base(*base, update, *tuned);
    const std::int64_t run = lwb::test::full_run_with_weights(store, *tuned);
    QVERIFY(store.get_run(run).row.has_model);
    const Derivation extracted = extract_library_lora(store, run, 2, {Target::V}, "extracted", env);
    const AdapterState got = store.load_adapter(*extracted.output_adapter_id);
    QVERIFY(rel_diff(dense_delta(got, module_hf_name(0, Target::V)), direct_delta(update, 0, Target::V)) < 1e-4);
    const AdapterLineage from_run = store.adapter_lineage(*extracted.output_adapter_id);
    QCOMPARE(from_run.runs, std::vector<std::int64_t>{run});
    QCOMPARE(from_run.made_by->inputs.front().run_id, std::optional<std::int64_t>(run));

    // Cancelled: nothing recorded, no adapter kept.
    const std::size_t jobs = store.list_derivations().size();
    std::atomic<bool> cancel{true};
    JobControl cancelled;
    cancelled.cancel = &cancel;
    QVERIFY_THROWS_EXCEPTION(JobCancelled, resize_library_adapter(store, a, 2, "never", cancelled));
    QCOMPARE(store.list_derivations().size(), jobs);
    QVERIFY(!store.find_adapter("never"));
  }
};

QTEST_APPLESS_MAIN(TestLibraryTools)
#include "test_library_tools.moc"
