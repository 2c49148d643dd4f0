// Comparisons a researcher can trust: the interval arithmetic against
// hand-computed cases, a comparison over three seeds stores three runs per
// arm and reports their mean and interval, and the learning-rate pick never
// looks at the test split.
#include <QTemporaryDir>
#include <QtTest>

#include <omp.h>

#include <cmath>
#include <fstream>
#include <numbers>
#include <set>

#include "core/common/errors.h"
#include "core/common/str_printf.h"
#include "core/common/paths.h"
#include "core/data/dataset.h"
#include "core/study/stored_comparison.h"
#include "core/tensor/rng.h"
#include "core/train/compare_run.h"
#include "core/train/compare_stats.h"
#include "core/train/report.h"
#include "expect_throw.h"

using namespace lwb;

namespace {

ComparisonSample sample(const std::string& arm, const char* phase, std::uint64_t seed, double lr, double accuracy,
                        double loss, const char* status = "finished") {
  ComparisonSample s;
  s.arm = arm;
  s.phase = phase;
  s.seed = seed;
  s.lr = lr;
  s.accuracy = accuracy;
  s.eval_loss = loss;
  s.status = status;
  return s;
}

// Records the split every run evaluated on and the pick runs' test split.
struct SplitWatch : ComparisonObserver {
  std::vector<std::string> pick_splits, seed_splits;
  std::size_t pick_runs_holding_test_examples = 0;
  std::set<std::vector<std::int32_t>> test_examples;
  struct Sink : TrainerSink {
    std::string split;
    void on_start(const RunInfo& i) override { split = i.eval_split; }
  } sink;
  TrainerSink* run_sink(const ComparisonRunTag&, Trainer&) override { return &sink; }
  void run_ended(const ComparisonRunTag& tag, Trainer& t, const RunResult&, ComparisonSample&) override {
    if (tag.phase == "seed") {
      seed_splits.push_back(sink.split);
      return;
    }
    pick_splits.push_back(sink.split);
    for (const data::Example& e : t.dataset().heldout)
      if (test_examples.contains(e.tokens)) ++pick_runs_holding_test_examples;
  }
};

}  // namespace

class TestCompare : public QObject {
  Q_OBJECT
  TrainerEnvironment env;

 private slots:
  void initTestCase() {
    env.data_dir = user_data_dir();
    env.notice = [](const std::string& m) { qInfo("%s", m.c_str()); };
  }

  // Against closed forms (df 1: tan(pi (p - 1/2)); df 2: (2p - 1) / sqrt(2p(1 - p)))
  // and the printed table of Student's t (two-sided 95%).
  void t_quantiles_match_hand_computed_values() {
    for (double p : {0.6, 0.9, 0.95, 0.975, 0.995}) {
      QVERIFY(std::abs(student_t_quantile(p, 1) - std::tan(std::numbers::pi * (p - 0.5))) < 1e-9);
      QVERIFY(std::abs(student_t_quantile(p, 2) - (2 * p - 1) / std::sqrt(2 * p * (1 - p))) < 1e-9);
      QVERIFY(std::abs(student_t_quantile(1 - p, 5) + student_t_quantile(p, 5)) < 1e-12);
    }
    const std::pair<int, double> table[] = {{1, 12.706205}, {2, 4.302653}, {3, 3.182446}, {4, 2.776445},
                                            {5, 2.570582},  {9, 2.262157}, {30, 2.042272}};
    for (const auto& [df, t] : table)
      QVERIFY2(std::abs(student_t_quantile(0.975, df) - t) < 1e-6,
               (std::to_string(df) + ": " + std::to_string(student_t_quantile(0.975, df))).c_str());
    QVERIFY(std::abs(student_t_quantile(0.975, 1000000) - 1.959966) < 1e-5);  // the normal's, in the limit
    QVERIFY(std::abs(student_t_cdf(student_t_quantile(0.9, 7), 7) - 0.9) < 1e-12);
    QCOMPARE(student_t_quantile(0.5, 3), 0.0);
    QVERIFY_THROWS_EXCEPTION(std::invalid_argument, student_t_quantile(0.975, 0));
    QVERIFY_THROWS_EXCEPTION(std::invalid_argument, student_t_quantile(1.0, 3));
  }

  void mean_intervals_match_hand_computed_values() {
    // {1, 2, 3}: mean 2, sd 1, half-width t(0.975, 2) / sqrt(3) = 2.484138.
    const std::vector<double> a = {1, 2, 3};
    const Interval i = mean_interval(a);
    QCOMPARE(i.n, 3);
    QCOMPARE(i.mean, 2.0);
    QVERIFY(std::abs(i.sd - 1) < 1e-15);
    QVERIFY(std::abs(i.half_width() - 2.484138) < 1e-6);
    QVERIFY(std::abs(i.lo - (2 - 2.484138)) < 1e-6 && std::abs(i.hi - (2 + 2.484138)) < 1e-6);
    // {0.5, 0.7, 0.6, 0.8} and a failed run: mean 0.65, sd sqrt(0.05 / 3) = 0.129099,
    // half-width 3.182446 * 0.129099 / 2 = 0.205426.
    const std::vector<double> b = {0.5, 0.7, NAN, 0.6, 0.8};
    const Interval j = mean_interval(b);
    QCOMPARE(j.n, 4);
    QCOMPARE(j.missing, 1);
    QVERIFY(std::abs(j.mean - 0.65) < 1e-15);
    QVERIFY(std::abs(j.sd - 0.129099) < 1e-6);
    QVERIFY(std::abs(j.half_width() - 0.205426) < 1e-6);
    // 90%: t(0.95, 3) = 2.353363.
    QVERIFY(std::abs(mean_interval(b, 0.9).half_width() - 2.353363 * 0.129099 / 2) < 1e-6);
    // One value: a mean, no spread.
    const Interval one = mean_interval(std::vector<double>{0.4});
    QCOMPARE(one.n, 1);
    QVERIFY(!one.has_spread() && std::isnan(one.lo));
    QCOMPARE(interval_text(one, 100, 1), std::string("40.0 (one seed, no interval)"));
    QCOMPARE(interval_text(i, 1, 2), std::string("2.00 ± 2.48"));
    QCOMPARE(interval_text(mean_interval(std::vector<double>{}), 1, 2), std::string("-"));
  }

  void paired_differences_and_verdicts() {
    // d = {2, 5, 1}: mean 8/3, sd sqrt(13/3) = 2.081666, half-width
    // 4.302653 * 2.081666 / sqrt(3) = 5.171145: [-2.50, 7.84] holds 0.
    const std::vector<double> lora = {0.10, 0.20, 0.30}, dora = {0.12, 0.25, 0.31};
    const Interval d = paired_difference(lora, dora);
    QVERIFY(std::abs(d.mean - 0.08 / 3) < 1e-12);
    QVERIFY(std::abs(100 * d.half_width() - 5.171145) < 1e-5);
    QVERIFY(!d.excludes_zero());
    QCOMPARE(difference_verdict("dora", "lora", d, "points exact match", 100, 1),
             std::string("dora − lora: +2.7 ± 5.2 points exact match — not distinguishable at 95%"));
    // d = {4, 5, 6}: 5 ± 2.484138, all above 0.
    const Interval up = paired_difference(std::vector<double>{1, 1, 1}, std::vector<double>{5, 6, 7});
    QVERIFY(up.excludes_zero());
    QCOMPARE(difference_verdict("b", "a", up, "points", 1, 1), std::string("b − a: +5.0 ± 2.5 points — b higher at 95%"));
    const Interval down = paired_difference(std::vector<double>{5, 6, 7}, std::vector<double>{1, 1, 1});
    QCOMPARE(difference_verdict("b", "a", down, "loss", 1, 2), std::string("b − a: -5.00 ± 2.48 loss — b lower at 95%"));
    // A pair with a failed run drops out of the pairing.
    const Interval partial = paired_difference(std::vector<double>{1, NAN, 1}, std::vector<double>{2, 3, 4});
    QCOMPARE(partial.n, 2);
    QCOMPARE(partial.missing, 1);
    QVERIFY_THROWS_EXCEPTION(std::invalid_argument, paired_difference(std::vector<double>{1}, std::vector<double>{1, 2}));
  }

  void reports_render_as_text_and_markdown() {
    Report r;
    r.heading("title");
    r.paragraph("a | b");
    r.table({{"arm", "exact match %"}, {"lora", "45.0 ± 6.1"}, {"rslora", "3.5 ± 1.0"}});
    r.image("quality.png", "Quality");
    QCOMPARE(QString::fromStdString(r.text()), QString("title\n\na | b\n\narm     exact match %\nlora    45.0 ± 6.1\n"
                                                       "rslora  3.5 ± 1.0\n\n[plot quality.png: Quality]\n"));
    const std::string md = r.markdown();
    QVERIFY2(md.find("| arm | exact match % |\n| --- | --- |\n| lora | 45.0 ± 6.1 |") != std::string::npos, md.c_str());
    QVERIFY(md.find("![Quality](quality.png)") != std::string::npos);
    QVERIFY(r.markdown("no display").find("not rendered, no display") != std::string::npos);
  }

  // The best validation exact match wins, then the lowest validation loss; a
  // rate any of whose trials failed or stopped is never chosen.
  // What a progress bar or the Studies view calls a run.
  void run_tags_name_the_run_and_its_place() {
    QCOMPARE(ComparisonRunTag({"dora", "seed", 2, 0.002, 5, 18}).text(), std::string("dora seed 2 (lr 0.002) [5/18]"));
    QCOMPARE(ComparisonRunTag({"lora", "lr-pick", 1, 0.0001, 1, 12}).text(),
             std::string("lora lr trial 1 (lr 0.0001) [1/12]"));
    QCOMPARE(ComparisonRunTag({"hub-length-8ce11cec", kMemberPhase, 1, 0.0002, 3, 9}).text(),
             std::string("member hub-length-8ce11cec (lr 0.0002) [3/9]"));
  }

  void learning_rate_pick_rules() {
    std::vector<ComparisonSample> t = {
        sample("a", "lr-pick", 1, 1e-3, 0.40, 1.0), sample("a", "lr-pick", 1, 3e-3, 0.60, 0.9),
        sample("a", "lr-pick", 1, 9e-3, 0.60, 0.8), sample("a", "lr-pick", 1, 3e-2, 0.90, 0.1, "failed")};
    QCOMPARE(pick_learning_rate(t), 9e-3);
    t[2].eval_loss = 0.95;
    QCOMPARE(pick_learning_rate(t), 3e-3);
    t.push_back(sample("a", "lr-pick", 2, 3e-3, 0.70, 0.5, "stopped"));
    QCOMPARE(pick_learning_rate(t), 9e-3);
    QVERIFY(std::isnan(pick_learning_rate(std::vector<ComparisonSample>{sample("a", "lr-pick", 1, 1e-3, 0.4, 1, "failed")})));
    ComparisonOptions o;
    o.seeds = 11;
    EXPECT_THROW_WITH(ConfigError, o.validate(), "compare.seeds");
    o.seeds = 3;
    o.pick_lr = true;
    o.lr_factors = {1};
    EXPECT_THROW_WITH(ConfigError, o.validate(), "compare.lr_grid");
  }

  // The store keeps every seed's run: N = 3 gives three runs per arm, each in
  // the history with what it ran on, and the report's mean and interval are
  // those of the three rows.
  void three_seeds_store_three_runs_per_arm() {
    QTemporaryDir dir;
    Store store(std::filesystem::path(dir.path().toStdString()) / "s.sqlite3");
    ComparisonDesign design;
    design.preset.name = "test-seeds";
    design.preset.description = "two arms, three seeds";
    ExperimentConfig c = experiment_preset("tiny-lora");
    c.data.task = "reverse";
    c.train.steps = 15;
    c.train.eval_every = 0;
    c.train.eval_examples = 40;
    c.schedule.warmup_steps = 3;
    ExperimentConfig d = c;
    d.adapter.method = "dora";
    design.preset.entries = {{"lora", c, "test", ""}, {"dora", d, "test", ""}};
    design.options.seeds = 3;
    const StoredComparison result = run_stored_comparison(store, "compare", design, env, {});
    QVERIFY(!result.stopped);

    const std::vector<ComparisonSample> rows = store.comparison_runs(result.id);
    QCOMPARE(rows.size(), std::size_t{6});
    std::set<std::int64_t> run_ids;
    for (const std::string arm : {"lora", "dora"}) {
      std::vector<double> acc;
      std::set<std::uint64_t> seeds;
      for (const ComparisonSample& r : rows)
        if (r.arm == arm) {
          QCOMPARE(r.phase, std::string("seed"));
          QCOMPARE(r.status, std::string("finished"));
          QVERIFY(r.run_id.has_value());
          run_ids.insert(*r.run_id);
          seeds.insert(r.seed);
          acc.push_back(r.accuracy);
          QVERIFY(!r.environment.blas_core.empty());
          QVERIFY(r.environment.threads > 0);
          QVERIFY(r.measures.contains("peak.activations"));
        }
      QCOMPARE(seeds, (std::set<std::uint64_t>{1, 2, 3}));
      // The summary's interval, computed by hand from the three rows.
      const double mean = (acc[0] + acc[1] + acc[2]) / 3;
      double ss = 0;
      for (double a : acc) ss += (a - mean) * (a - mean);
      const double half = 4.302652729749464 * std::sqrt(ss / 2) / std::sqrt(3.0);
      const ComparisonSummary loaded = load_comparison_summary(store, result.id);
      for (const ComparisonSummary* s : {&result.summary, &loaded}) {
        const ArmSummary& a = s->arms[arm == std::string("lora") ? 0 : 1];
        QCOMPARE(a.seeds.size(), std::size_t{3});
        QCOMPARE(a.accuracy.n, 3);
        QVERIFY(std::abs(a.accuracy.mean - mean) < 1e-12);
        QVERIFY(std::abs(a.accuracy.half_width() - half) < 1e-9);
      }
    }
    // Each row is a run of the history, with its environment.
    QCOMPARE(run_ids.size(), std::size_t{6});
    for (std::int64_t id : run_ids) {
      const RunDetail detail = store.get_run(id);
      QCOMPARE(detail.row.status, std::string("finished"));
      const RunEnvironment e = environment_from_json(detail.environment_json, "run");
      QVERIFY(!e.blas_core.empty() && !e.compiler.empty() && !e.git.empty());
    }
    const ComparisonRecord record = store.get_comparison(result.id);
    QCOMPARE(record.status, std::string("finished"));
    QCOMPARE(record.runs, std::int64_t{6});
    const std::string text = format_comparison_report(result.summary);
    QVERIFY2(text.find("dora − lora: ") != std::string::npos, text.c_str());
    QVERIFY2(text.find("OpenBLAS " + rows[0].environment.blas_core) != std::string::npos, text.c_str());
    QVERIFY2(text.find("changes single-seed outcomes") != std::string::npos, text.c_str());
    qInfo("%s", text.c_str());
  }

  // The pick sees only the validation split: trials on a file whose test
  // rows are changed give bit-identical scores and the same choice, while the
  // seed runs scored on that test split do see the change.
  void learning_rate_pick_never_looks_at_the_test_split() {
    QTemporaryDir dir;
    const std::filesystem::path root = dir.path().toStdString();
    std::vector<std::pair<std::string, std::string>> rows;
    SplitMix rng(5);
    for (int i = 0; i < 240; ++i) {
      std::string in;
      const int n = 3 + static_cast<int>(rng.below(6));
      for (int k = 0; k < n; ++k) in.push_back(static_cast<char>('a' + rng.below(26)));
      rows.push_back({"reverse: " + in + "\n", std::string(in.rbegin(), in.rend())});
    }
    auto write = [&](const std::filesystem::path& file, const std::set<std::string>& changed) {
      std::ofstream out(file);
      for (const auto& [p, c] : rows) {
        std::string completion = c;
        if (changed.contains(p))
          for (char& ch : completion) ch = static_cast<char>('a' + ('z' - ch));  // another answer, same length
        out << "{\"prompt\": \"" << p.substr(0, p.size() - 1) << "\\n\", \"completion\": \"" << completion << "\"}\n";
      }
    };
    const std::filesystem::path a = root / "a.jsonl", b = root / "b.jsonl";
    write(a, {});

    ExperimentConfig c = experiment_preset("tiny-lora");
    c.data.kind = "jsonl";
    c.data.path = a.string();
    c.data.heldout_fraction = 0.25;
    c.train.steps = 20;
    c.train.eval_every = 0;
    c.train.eval_examples = 60;
    c.schedule.warmup_steps = 4;
    c.train.threads = omp_get_max_threads();  // bit-identical runs need the same count
    ComparisonDesign design;
    design.preset.name = "pick";
    design.preset.description = "the pick on a file";
    design.preset.entries = {{"lora", c, "test", ""}};
    design.options.seeds = 1;
    design.options.pick_lr = true;
    design.options.lr_factors = {0.25, 1, 4};
    design.options.n_validation = 40;

    // Which rows are the test split, and which the validation split.
    SplitWatch watch;
    std::set<std::string> test_prompts;
    {
      Trainer t(seed_run_config(design.preset.entries[0], design.options, c.optimizer.lr, 1), env);
      t.prepare();
      QCOMPARE(t.dataset().heldout.size(), std::size_t{60});
      QCOMPARE(t.dataset().validation.size(), std::size_t{40});
      QCOMPARE(t.dataset().train.size(), std::size_t{140});
      for (const data::Example& e : t.dataset().heldout) {
        std::size_t first_scored = 1;  // the prompt: after bos, up to the first scored token
        while (!e.is_scored(first_scored)) ++first_scored;
        test_prompts.insert(t.tokenizer().decode(std::span(e.tokens).subspan(1, first_scored - 1)));
        watch.test_examples.insert(e.tokens);
      }
    }
    write(b, test_prompts);

    const std::vector<ComparisonSample> on_a = run_comparison(design, env, {}, &watch);
    design.preset.entries[0].config.data.path = b.string();
    const std::vector<ComparisonSample> on_b = run_comparison(design, env, {});
    QCOMPARE(on_a.size(), std::size_t{4});
    QCOMPARE(on_b.size(), on_a.size());
    for (std::size_t i = 0; i < 3; ++i) {
      QCOMPARE(on_a[i].phase, std::string("lr-pick"));
      QVERIFY(on_a[i].lr == on_b[i].lr);
      QVERIFY2(on_a[i].eval_loss == on_b[i].eval_loss && on_a[i].accuracy == on_b[i].accuracy,
               "a learning-rate trial's score changed with the test split");
    }
    QVERIFY(on_a[3].lr == on_b[3].lr);  // the same choice
    QVERIFY(on_a[3].lr == pick_learning_rate(std::span(on_a).first(3)));
    QCOMPARE(on_a[3].phase, std::string("seed"));
    QVERIFY2(on_a[3].eval_loss != on_b[3].eval_loss, "the seed runs did not see the changed test split");
    // The trials evaluated on the validation split and never held a test example.
    QCOMPARE(watch.pick_splits, (std::vector<std::string>{"validation", "validation", "validation"}));
    QCOMPARE(watch.seed_splits, std::vector<std::string>{"test"});
    QCOMPARE(watch.pick_runs_holding_test_examples, std::size_t{0});
    // The report shows each rate's validation score with its loss (the tie-break) and the choice.
    const std::string text = format_comparison_report(summarize_comparison(design, on_a));
    for (std::size_t i = 0; i < 3; ++i)
      QVERIFY2(text.find(str_printf(", loss %.4f", on_a[i].eval_loss)) != std::string::npos, text.c_str());
    QVERIFY2(text.find("(chosen)") != std::string::npos, text.c_str());
    qInfo("chosen rate %g; validation exact match per rate: %.3f %.3f %.3f", on_a[3].lr, on_a[0].accuracy,
          on_a[1].accuracy, on_a[2].accuracy);
  }
};

QTEST_GUILESS_MAIN(TestCompare)
#include "test_compare.moc"
