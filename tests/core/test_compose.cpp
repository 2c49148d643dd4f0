// LoRAHub composition: the merge modes against their formulas and dense ΔW,
// refusal of members that cannot be merged, both weight optimisers on known
// functions, the search on the tiny base with quickly trained adapters, the
// store round trip of a composition and the hub demo's reuse of adapters.
#include <QTemporaryDir>
#include <QtTest>

#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <cmath>

#include "core/adapters/attach.h"
#include "core/adapters/numerical_rank.h"
#include "core/compose/hub.h"
#include "core/compose/seeds.h"
#include "core/model/checkpoint.h"
#include "core/model/weights_init.h"
#include "core/backend/backend_registry.h"
#include "core/common/paths.h"
#include "core/source/model_source.h"
#include "tests/core/adapter_fixtures.h"

using namespace lwb;
using namespace lwb::compose;
using lwb::test::kFingerprint;
using lwb::test::random_adapter;
namespace fs = std::filesystem;

namespace {

double rel_diff(const std::vector<double>& a, const std::vector<double>& b) {
  double num = 0, den = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  return std::sqrt(num / den);
}

std::vector<double> as_doubles(const HostTensor& t) { return {t.values.begin(), t.values.end()}; }

const std::string kModule = "model.layers.2.self_attn.q_proj";

// Logits of the tiny shape with a fixed random base and `adapter` attached.
std::vector<double> logits_with(const AdapterState& adapter) {
  const std::unique_ptr<Backend> be = make_backend("cpu");
  MemoryLedger ledger;
  std::vector<double> out;
  {
    Model m(adapter.model, Model::Mode::Frozen);
    attach_adapters(m, adapter.config);
    m.materialize(*be, ledger, 2, 8);
    m.init_base_weights(5);
    load_adapter(m, adapter, "test");
    std::vector<std::int32_t> in(16), tg(16);
    for (int i = 0; i < 16; ++i) {
      in[i] = (i * 37 + 11) % 256;
      tg[i] = (i * 53 + 7) % 256;
    }
    m.set_batch(in.data(), tg.data(), 2, 8);
    m.forward(false, 0);
    out = download_values(*be, m.logits());
  }
  return out;
}

template <class F>
QString error_of(F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return QString::fromStdString(e.what());
  }
  return {};
}

double shifted_quadratic(std::span<const double> w) {
  const double c[] = {0.7, -0.4, 1.1, 0.2};
  double f = 0;
  for (std::size_t i = 0; i < w.size(); ++i) f += (i + 1.0) * (w[i] - c[i]) * (w[i] - c[i]);
  return f;
}

// Rosenbrock's valley with its minimum moved into the box, at (0.8, 0.64).
double rosenbrock(std::span<const double> w) {
  return (0.8 - w[0]) * (0.8 - w[0]) + 10 * (w[1] - w[0] * w[0]) * (w[1] - w[0] * w[0]);
}

}  // namespace

class TestCompose : public QObject {
  Q_OBJECT
  TrainerEnvironment env;
  QTemporaryDir dir;
  std::vector<Member> trained;  // quickly trained on the tiny base
  fs::path base;

  fs::path db(const char* name) const { return fs::path(dir.path().toStdString()) / name; }
  // The hub demo with two members and the given sizes.
  static HubPreset shrunk_hub(std::int64_t steps, std::int64_t n_train, int heldout, int budget) {
    HubPreset p = hub_preset();
    p.member_tasks = {"length", "add"};
    p.training.train.steps = steps;
    p.training.data.n_train = n_train;
    p.training.schedule.warmup_steps = std::max<std::int64_t>(1, steps / 6);
    p.session.heldout = heldout;
    p.search.budget = budget;
    return p;
  }
  ResolvedSource base_source() const { return resolve_base(base.string(), env.data_dir); }

 private slots:
  void initTestCase() {
    env.data_dir = user_data_dir();
    env.notice = [](const std::string& m) { qInfo("%s", m.c_str()); };
    base = ensure_base_model("tiny", env);
    // Three short LoRA runs on tasks unlike the target (count).
    for (const char* task : {"length", "add", "copy"}) {
      ExperimentConfig c = experiment_preset("tiny-lora");
      c.name = std::string("compose-test-") + task;
      c.data.task = task;
      c.data.n_train = 400;
      c.data.n_heldout = 20;
      c.train.steps = 60;
      c.train.eval_every = 0;
      c.train.eval_examples = 20;
      c.schedule.warmup_steps = 5;
      Trainer t(c, env);
      TrainerSink none;
      QCOMPARE(t.run(none).status, RunStatus::Finished);
      trained.push_back({c.name, extract_adapter(t.model(), c.adapter, "lora-workbench/tiny", t.base_fingerprint())});
    }
  }

  // ---- merge modes ------------------------------------------------------------

  void lorahubOneMemberAtWeightOneIsThatAdapter() {
    std::vector<Member> m = {{"a", random_adapter(1)}, {"b", random_adapter(2)}, {"c", random_adapter(3)}};
    Composer composer(m, MergeMode::LoraHub);
    const double w[] = {1, 0, 0};
    const AdapterState& got = composer.compose(w);
    QCOMPARE(got.tensors.size(), m[0].state.tensors.size());
    for (const auto& [key, t] : m[0].state.tensors) {
      QVERIFY2(got.tensors.count(key), key.c_str());
      QCOMPARE(got.tensors.at(key).shape, t.shape);
      QVERIFY2(got.tensors.at(key).values == t.values, key.c_str());  // bitwise
    }
    QCOMPARE(got.config.scaling(), m[0].state.config.scaling());
    const std::vector<double> want = logits_with(m[0].state), have = logits_with(got);
    QVERIFY(want == have);
  }

  void lorahubWeightsScaleTheFactors() {
    std::vector<Member> m = {{"a", random_adapter(1)}, {"b", random_adapter(2)}, {"c", random_adapter(3)}};
    Composer composer(m, MergeMode::LoraHub);
    const double w = -0.37;
    const double weights[] = {w, 0, 0};
    const AdapterState& got = composer.compose(weights);
    for (const auto& [key, t] : m[0].state.tensors) {
      std::vector<double> scaled = as_doubles(t);
      for (double& v : scaled) v *= w;
      QVERIFY2(rel_diff(as_doubles(got.tensors.at(key)), scaled) <= 1e-7, key.c_str());
    }
    // General weights sum A and B separately (so ΔW has cross terms).
    const double mix[] = {0.5, -1.2, 0.8};
    const AdapterState& sum = composer.compose(mix);
    for (const auto& [key, t] : m[0].state.tensors) {
      std::vector<double> want(t.values.size(), 0.0);
      for (std::size_t i = 0; i < 3; ++i)
        for (std::size_t e = 0; e < want.size(); ++e) want[e] += mix[i] * m[i].state.tensors.at(key).values[e];
      QVERIFY2(rel_diff(as_doubles(sum.tensors.at(key)), want) <= 1e-7, key.c_str());
    }
  }

  void linearFollowsPeft() {
    // Different alphas: linear folds each member's scaling into its factors.
    std::vector<Member> m = {{"a", random_adapter(1, 4, {Target::Q, Target::V}, "lora", 8)},
                             {"b", random_adapter(2, 4, {Target::Q, Target::V}, "lora", 16)}};
    m[1].state.config.use_rslora = true;
    Composer composer(m, MergeMode::Linear);
    const double w[] = {0.6, -0.9};
    const AdapterState& got = composer.compose(w);
    QCOMPARE(got.config.scaling(), 1.0);
    const std::string key_a = peft_key(kModule, "lora_A.weight"), key_b = peft_key(kModule, "lora_B.weight");
    std::vector<double> A(got.tensors.at(key_a).values.size(), 0.0), B(got.tensors.at(key_b).values.size(), 0.0);
    for (int i = 0; i < 2; ++i) {
      const double ws = w[i] * m[i].state.config.scaling();
      for (std::size_t e = 0; e < A.size(); ++e)
        A[e] += (ws < 0 ? -1 : 1) * std::sqrt(std::abs(ws)) * m[i].state.tensors.at(key_a).values[e];
      for (std::size_t e = 0; e < B.size(); ++e)
        B[e] += std::sqrt(std::abs(ws)) * m[i].state.tensors.at(key_b).values[e];
    }
    QVERIFY(rel_diff(as_doubles(got.tensors.at(key_a)), A) <= 1e-7);
    QVERIFY(rel_diff(as_doubles(got.tensors.at(key_b)), B) <= 1e-7);
    // One member at weight 1 keeps its ΔW.
    const double one[] = {0, 1};
    QVERIFY(rel_diff(dense_delta(composer.compose(one), kModule), dense_delta(m[1].state, kModule)) <= 1e-6);
  }

  void catIsTheExactSum() {
    // Ranks, targets, scalings and variants all differ: AdaLoRA enters as B·diag(E)·A.
    std::vector<Member> m = {{"lora", random_adapter(1, 4, {Target::Q, Target::V})},
                             {"rslora", random_adapter(2, 8, {Target::Q, Target::K, Target::O}, "lora", 4)},
                             {"adalora", random_adapter(3, 6, {Target::Q, Target::Up}, "adalora", 12)}};
    m[1].state.config.use_rslora = true;
    Composer composer(m, MergeMode::Cat);
    const double w[] = {0.7, -1.3, 0.4};
    const AdapterState& got = composer.compose(w);
    QCOMPARE(got.config.r, 18);
    QCOMPARE(got.config.scaling(), 1.0);
    QCOMPARE(got.config.targets.size(), std::size_t(5));
    for (const char* module : {"model.layers.0.self_attn.q_proj", "model.layers.1.self_attn.k_proj",
                               "model.layers.3.self_attn.v_proj", "model.layers.2.mlp.up_proj"}) {
      const double err = rel_diff(dense_delta(got, module), dense_delta(m, w, module));
      QVERIFY2(err <= 1e-6, qPrintable(QString("%1: %2").arg(module).arg(err)));
    }
    // The merged adapter loads into a model built from its config.
    QCOMPARE(logits_with(got).size(), std::size_t(2 * 8 * 260));
  }

  void svdToFullRankIsTheSumAndTruncatesOptimally() {
    std::vector<Member> m = {{"a", random_adapter(1, 4)}, {"b", random_adapter(2, 8, {Target::Q, Target::V},
                                                                                     "lora", 4)}};
    const double w[] = {0.9, -0.6};
    const std::vector<double> sum = dense_delta(m, w, kModule);
    Composer full(m, MergeMode::Svd, 12);  // rank(ΔW_a + ΔW_b) <= 4 + 8
    const double err_full = rel_diff(dense_delta(full.compose(w), kModule), sum);
    QVERIFY2(err_full <= 1e-5, qPrintable(QString::number(err_full)));

    Composer byDefault(m, MergeMode::Svd);  // the largest member rank
    QCOMPARE(byDefault.result_config().r, 8);
    const int k = 3;
    Composer low(m, MergeMode::Svd, k);
    const std::vector<double> approx = dense_delta(low.compose(w), kModule);
    double err2 = 0, norm2 = 0;
    for (std::size_t i = 0; i < sum.size(); ++i) {
      err2 += (approx[i] - sum[i]) * (approx[i] - sum[i]);
      norm2 += sum[i] * sum[i];
    }
    // Eckart-Young: the best rank-k error is the energy of the dropped singular values.
    const LinearShape q = linear_shape(model_preset("tiny"), Target::Q);
    const std::vector<double> sv = singular_values(sum, q.out, q.in);
    double tail = 0;
    for (std::size_t j = k; j < sv.size(); ++j) tail += sv[j] * sv[j];
    QVERIFY2(std::abs(err2 - tail) <= 1e-5 * norm2, qPrintable(QString("%1 vs %2").arg(err2).arg(tail)));

    const QString big = error_of([&] { Composer too_big(m, MergeMode::Svd, 200); });
    QVERIFY2(big.contains("compose.svd_rank") && big.contains("exceeds min(in, out)"), qPrintable(big));
  }

  void incompatibleMembersAreRefused() {
    const Member a{"alpha", random_adapter(1)};
    auto refusal = [&](Member other, MergeMode mode) {
      const std::vector<Member> m = {a, std::move(other)};
      QString msg;
      try {
        check_members(m, mode);
      } catch (const IncompatibleMemberError& e) {
        msg = QString::fromStdString(e.what());
        if (e.adapter() != m[1].name) msg = "wrong adapter named: " + msg;
      }
      return msg;
    };
    Member other{"beta", random_adapter(2)};
    other.state.base_fingerprint = "ffffffffffffffff";
    for (MergeMode mode : {MergeMode::LoraHub, MergeMode::Cat}) {
      const QString msg = refusal(other, mode);
      QVERIFY2(msg.startsWith("adapter \"beta\" cannot be composed") && msg.contains("fingerprint ffffffffffffffff"),
               qPrintable(msg));
    }
    other = {"beta", random_adapter(2)};
    other.state.model.layers = 2;
    QVERIFY(refusal(other, MergeMode::Svd).contains("base model is tiny"));

    const QString targets = refusal({"gamma", random_adapter(3, 4, {Target::Q, Target::K})}, MergeMode::LoraHub);
    QVERIFY2(targets.contains("\"gamma\"") && targets.contains("adapts q,k but \"alpha\" adapts q,v"),
             qPrintable(targets));
    QVERIFY(refusal({"gamma", random_adapter(3, 4, {Target::Q, Target::K})}, MergeMode::Cat).isEmpty());

    for (MergeMode mode : {MergeMode::LoraHub, MergeMode::Linear}) {
      const QString rank = refusal({"delta", random_adapter(4, 8)}, mode);
      QVERIFY2(rank.contains("\"delta\"") && rank.contains("rank is 8 but \"alpha\"'s is 4"), qPrintable(rank));
    }
    QVERIFY(refusal({"delta", random_adapter(4, 8)}, MergeMode::Svd).isEmpty());
    const QString scaling =
        refusal({"eps", random_adapter(5, 4, {Target::Q, Target::V}, "lora", 16)}, MergeMode::LoraHub);
    QVERIFY2(scaling.contains("scaling is 4") && scaling.contains("needs one scaling"), qPrintable(scaling));
    QVERIFY(
        refusal({"eps", random_adapter(5, 4, {Target::Q, Target::V}, "lora", 16)}, MergeMode::Linear).isEmpty());

    for (MergeMode mode : {MergeMode::LoraHub, MergeMode::Cat, MergeMode::Svd}) {
      const QString dora = refusal({"zeta", random_adapter(6, 4, {Target::Q, Target::V}, "dora")}, mode);
      QVERIFY2(dora.contains("\"zeta\"") && dora.contains("DoRA") && dora.contains("magnitude"), qPrintable(dora));
    }

    // AdaLoRA: fine for cat and svd; for lorahub only beside AdaLoRA adapters
    // with the same rank pattern.
    const Member ada{"eta", random_adapter(7, 4, {Target::Q, Target::V}, "adalora", 4)};
    QVERIFY(refusal(ada, MergeMode::Cat).isEmpty());
    const QString family = refusal(ada, MergeMode::LoraHub);
    QVERIFY2(family.contains("its variant is AdaLoRA but \"alpha\"'s is LoRA"), qPrintable(family));
    Member ada2{"theta", random_adapter(8, 4, {Target::Q, Target::V}, "adalora", 4)};
    const std::vector<Member> same = {ada, ada2};
    check_members(same, MergeMode::LoraHub);
    ada2.state.rank_pattern.begin()->second = {true, true, false, true};
    const std::vector<Member> differ = {ada, ada2};
    const QString pattern = error_of([&] { check_members(differ, MergeMode::Linear); });
    QVERIFY2(pattern.contains("\"theta\"") && pattern.contains("rank pattern"), qPrintable(pattern));
  }

  // ---- weight search ----------------------------------------------------------

  void optimizersFindKnownMinima_data() {
    QTest::addColumn<int>("optimizer");
    QTest::addColumn<int>("quadratic_budget");
    // COBYLA converges within LoRAHub's budget of 40; CMA-ES spends its first
    // generations learning the step size and needs a few hundred.
    QTest::newRow("cobyla") << static_cast<int>(Optimizer::Cobyla) << 40;
    QTest::newRow("cmaes") << static_cast<int>(Optimizer::CmaEs) << 200;
  }
  void optimizersFindKnownMinima() {
    QFETCH(int, optimizer);
    QFETCH(int, quadratic_budget);
    SearchOptions o;
    o.optimizer = static_cast<Optimizer>(optimizer);
    o.seed = 11;
    // A shifted, scaled quadratic in 3 dimensions, minimum 0 at (0.7, -0.4, 1.1).
    o.budget = quadratic_budget;
    const SearchResult q = minimize(shifted_quadratic, {0, 0, 0}, o);
    QVERIFY(static_cast<int>(q.trace.size()) <= o.budget);
    QCOMPARE(q.trace.front().weights, std::vector<double>(3, 0.0));
    QVERIFY2(q.best_objective < 0.05, qPrintable(QString::number(q.best_objective)));
    // Rosenbrock's curved valley in 2 dimensions.
    o.budget = 300;
    const SearchResult r = minimize(rosenbrock, {0, 0}, o);
    QVERIFY2(std::abs(r.best_weights[0] - 0.8) < 0.05 && std::abs(r.best_weights[1] - 0.64) < 0.08,
             qPrintable(QString("%1 %2").arg(r.best_weights[0]).arg(r.best_weights[1])));
  }

  void optimizersRespectTheBoxAndAreDeterministic_data() { optimizersFindKnownMinima_data(); }
  void optimizersRespectTheBoxAndAreDeterministic() {
    QFETCH(int, optimizer);
    SearchOptions o;
    o.optimizer = static_cast<Optimizer>(optimizer);
    o.seed = 3;
    o.budget = 400;
    // The unconstrained minimum (2.5, -2.2, 0.3, 1.9) lies outside [-1.5, 1.5].
    auto outside = [](std::span<const double> w) {
      const double c[] = {2.5, -2.2, 0.3, 1.9};
      double f = 0;
      for (std::size_t i = 0; i < 4; ++i) f += (w[i] - c[i]) * (w[i] - c[i]);
      return f;
    };
    std::vector<Trial> seen;
    const SearchResult a = minimize(outside, {0, 0, 0, 0}, o, [&](const Trial& t) { seen.push_back(t); });
    QCOMPARE(seen.size(), a.trace.size());
    for (const Trial& t : a.trace)
      for (double w : t.weights) QVERIFY2(w >= -1.5 && w <= 1.5, qPrintable(QString::number(w)));
    const double want[] = {1.5, -1.5, 0.3, 1.5};
    for (int i = 0; i < 4; ++i)
      QVERIFY2(std::abs(a.best_weights[i] - want[i]) < 0.2,
               qPrintable(QString("w%1 = %2").arg(i).arg(a.best_weights[i])));

    const SearchResult b = minimize(outside, {0, 0, 0, 0}, o);
    QCOMPARE(b.trace.size(), a.trace.size());
    for (std::size_t i = 0; i < a.trace.size(); ++i) {
      QCOMPARE(b.trace[i].weights, a.trace[i].weights);
      QCOMPARE(b.trace[i].objective, a.trace[i].objective);
    }
    if (o.optimizer == Optimizer::CmaEs) {
      o.seed = 4;
      QVERIFY(minimize(outside, {0, 0, 0, 0}, o).trace[1].weights != a.trace[1].weights);
    }
  }

  void searchStopsWhenCancelled_data() { optimizersFindKnownMinima_data(); }
  void searchStopsWhenCancelled() {
    QFETCH(int, optimizer);
    SearchOptions o;
    o.optimizer = static_cast<Optimizer>(optimizer);
    std::atomic<bool> stop{false};
    const SearchResult r = minimize(
        shifted_quadratic, {0, 0}, o, [&](const Trial& t) { stop = t.iteration == 4; }, &stop);
    QVERIFY(r.cancelled);
    QCOMPARE(static_cast<int>(r.trace.size()), 5);
    QVERIFY(r.best_objective <= r.trace.front().objective);
  }

  // ---- on the tiny base -------------------------------------------------------

  void searchLowersTheFewShotObjective_data() { optimizersFindKnownMinima_data(); }
  void searchLowersTheFewShotObjective() {
    QFETCH(int, optimizer);
    SessionOptions so;
    so.task = "count";
    so.heldout = 40;
    CompositionSession session(trained, so, base_source());
    QCOMPARE(static_cast<int>(session.shots().size()), kDefaultShots);
    SearchOptions o;
    o.optimizer = static_cast<Optimizer>(optimizer);
    o.budget = 20;
    const SearchResult r = session.search(o);
    const double at_zero = session.objective(std::vector<double>(3, 0.0));
    QCOMPARE(r.trace.front().objective, at_zero);
    qInfo("%s: few-shot objective %.4f at w = 0, %.4f at the best weights", optimizer_name(o.optimizer), at_zero,
          r.best_objective);
    QVERIFY(r.best_objective < at_zero - 1e-3);
    QCOMPARE(session.objective(r.best_weights), r.best_objective);  // re-uploading gives the same model

    const Evaluation e = session.evaluate(r.best_weights);
    QCOMPARE(e.rows.size(), std::size_t(5));
    QCOMPARE(e.zero_shot().heldout.examples, std::int64_t(40));
    QCOMPARE(e.rows[1].label, trained[0].name);
    // The zero-shot row is the base alone and each member row the adapter alone.
    double l1 = 0;
    for (double w : r.best_weights) l1 += std::abs(w);
    QVERIFY(std::abs(e.composition().few_shot.loss + kDefaultL1 * l1 / 3 - r.best_objective) < 1e-9);
    QVERIFY(std::isfinite(e.best_member().heldout.loss));
  }

  // Zero-shot is the base alone and a member row is that adapter alone, as
  // the trainer's own evaluation scores them on the same held-out examples.
  void zeroShotAndMembersMatchTheTrainersEvaluation() {
    SessionOptions so;
    so.task = "count";
    so.heldout = 32;
    CompositionSession session(trained, so, base_source());
    ExperimentConfig c = experiment_preset("tiny-lora");  // the members' config
    c.data.task = "count";
    c.data.n_train = 50;
    c.data.n_heldout = 32;
    Trainer trainer(c, env);
    trainer.prepare();  // a fresh LoRA (B = 0) adds nothing to the base

    const double none[] = {0, 0, 0};
    const Score zero = session.score(none, session.heldout());
    const EvalResult base_alone = trainer.evaluate(32);
    QCOMPARE(zero.examples, base_alone.examples);
    QVERIFY2(std::abs(zero.loss - base_alone.loss) <= 1e-6 * base_alone.loss,
             qPrintable(QString("%1 vs %2").arg(zero.loss).arg(base_alone.loss)));
    QCOMPARE(zero.accuracy, base_alone.accuracy);

    load_adapter(trainer.model(), trained[1].state, "test");
    const double second[] = {0, 1, 0};
    const Score member = session.score(second, session.heldout());
    const EvalResult member_alone = trainer.evaluate(32);
    QVERIFY2(std::abs(member.loss - member_alone.loss) <= 1e-6 * member_alone.loss,
             qPrintable(QString("%1 vs %2").arg(member.loss).arg(member_alone.loss)));
    QCOMPARE(member.accuracy, member_alone.accuracy);
    QVERIFY(member.loss != zero.loss);
  }

  void wrongBaseIsRefused() {
    Member m = trained[0];
    m.state.base_fingerprint = "0123456789abcdef";
    std::vector<Member> one = {m};
    SessionOptions so;
    so.task = "count";
    const QString msg = error_of([&] { CompositionSession session(one, so, base_source()); });
    QVERIFY2(msg.contains("\"compose-test-length\"") && msg.contains("fingerprint 0123456789abcdef"), qPrintable(msg));
  }

  // ---- the store --------------------------------------------------------------

  void compositionRoundTripsThroughTheStore() {
    const fs::path file = db("compose.sqlite3");
    std::vector<std::string> names;
    std::vector<std::int64_t> ids;
    {
      Store store(file);
      for (const Member& m : trained) {
        ids.push_back(store.save_adapter(m.name, std::nullopt, m.state, "task:test", NAN, NAN));
        names.push_back(m.name);
      }
      ComposeRequest req;
      req.name = "for-count";
      req.adapters = names;
      req.session.task = "count";
      req.session.heldout = 20;
      req.search.budget = 8;
      req.search.optimizer = Optimizer::CmaEs;
      const ComposeOutcome out = compose_and_store(store, req, env);
      QVERIFY(out.composition.id > 0);
      QVERIFY(out.search.best_objective <= out.search.trace.front().objective);

      const Composition c = store.load_composition(out.composition.id);
      QCOMPARE(c.name, std::string("for-count"));
      QCOMPARE(c.mode, std::string("lorahub"));
      QCOMPARE(c.optimizer, std::string("cma-es"));
      QCOMPARE(c.target_task, std::string("count"));
      QCOMPARE(c.base_fingerprint, trained[0].state.base_fingerprint);
      QCOMPARE(c.members.size(), std::size_t(3));
      for (std::size_t i = 0; i < 3; ++i) {
        QCOMPARE(c.members[i].adapter_id, ids[i]);
        QCOMPARE(c.members[i].weight, out.search.best_weights[i]);
        QCOMPARE(c.members[i].x, 240.0 * static_cast<double>(i));
        QCOMPARE(c.members[i].y, 0.0);
      }
      QCOMPARE(c.trials.size(), std::size_t(8));
      for (std::size_t i = 0; i < 8; ++i) {
        QCOMPARE(c.trials[i].iteration, std::int64_t(i));
        QCOMPARE(c.trials[i].weights, out.search.trace[i].weights);
        QCOMPARE(c.trials[i].objective, out.search.trace[i].objective);
      }
      const Evaluation e = evaluation_from_json(c.scores_json, "test");
      QCOMPARE(e.rows.size(), out.evaluation.rows.size());
      QCOMPARE(e.composition().heldout.loss, out.evaluation.composition().heldout.loss);
      QCOMPARE(e.zero_shot().heldout.accuracy, out.evaluation.zero_shot().heldout.accuracy);
      QCOMPARE(e.rows[2].label, names[1]);

      // Reopened: the same members, and the same weights give the same scores.
      std::vector<Member> members = load_members(store, c);
      QCOMPARE(members[2].name, names[2]);
      SessionOptions so = req.session;
      CompositionSession reopened(std::move(members), so, base_source());
      std::vector<double> w;
      for (const CompositionMember& m : c.members) w.push_back(m.weight);
      QCOMPARE(reopened.score(w, reopened.heldout()).loss, e.composition().heldout.loss);

      // Names are unique; a member in use cannot be deleted.
      QVERIFY(error_of([&] { compose_and_store(store, req, env); }).contains("already exists"));
      const QString used = error_of([&] { store.delete_adapter(ids[1]); });
      QVERIFY2(used.contains("is used by composition(s) \"for-count\""), qPrintable(used));
      QCOMPARE(store.list_adapters().size(), std::size_t(3));

      // A composition built on the canvas whose adapter was deleted meanwhile
      // is refused when saved.
      Composition draft = c;
      draft.id = 0;
      draft.name = "draft";
      const std::int64_t spare = store.save_adapter("spare", std::nullopt, trained[0].state, "task:test", NAN, NAN);
      draft.members[0].adapter_id = spare;
      store.delete_adapter(spare);
      QVERIFY(error_of([&] { store.save_composition(draft); }).contains("not in the library"));
      QVERIFY(error_of([&] { load_members(store, draft); }).contains("member 1 (adapter id"));
    }
    // A file edited with foreign keys off loses a member: opening says which.
    sqlite3* raw = nullptr;
    QCOMPARE(sqlite3_open(file.c_str(), &raw), SQLITE_OK);
    const std::string sql =
        "PRAGMA foreign_keys = OFF; DELETE FROM adapters WHERE id = " + std::to_string(ids[1]) + ";";
    QCOMPARE(sqlite3_exec(raw, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(raw);
    Store store(file);
    const Composition c = store.load_composition(store.list_compositions().front().id);
    const QString gone = error_of([&] { load_members(store, c); });
    QVERIFY2(gone.contains("composition \"for-count\": member 2 (adapter id " + QString::number(ids[1]) +
                           ") is no longer in the adapter library"),
             qPrintable(gone));
  }

  // Three seeds: each searched and evaluated on its own examples, all three
  // kept in the stored composition, and the reported mean and interval are
  // those of the three rows.
  void compositionOverThreeSeeds() {
    Store store(db("seeds.sqlite3"));
    std::vector<std::string> names;
    for (const Member& m : trained) {
      store.save_adapter(m.name, std::nullopt, m.state, "task:test", NAN, NAN);
      names.push_back(m.name);
    }
    ComposeRequest req;
    req.name = "three-seeds";
    req.adapters = names;
    req.session.task = "count";
    req.session.heldout = 20;
    req.search.budget = 5;
    req.search.optimizer = Optimizer::CmaEs;
    req.search.seed = 7;
    req.seeds = 3;
    std::vector<std::string> notices;
    SourceEnvironment noted = env;
    noted.notice = [&](const std::string& m) { notices.push_back(m); };
    int trials = 0;
    const ComposeOutcome out = compose_and_store(store, req, noted, [&](const Trial&) { ++trials; });
    QVERIFY(!out.cancelled);
    QCOMPARE(trials, 3 * 5);
    QCOMPARE(std::count_if(notices.begin(), notices.end(), [](const std::string& n) { return n.starts_with("seed "); }),
             std::ptrdiff_t(3));

    const Composition c = store.load_composition(out.composition.id);
    const Evaluation e = evaluation_from_json(c.scores_json, "test");
    QCOMPARE(e.seeds.size(), std::size_t(3));
    for (std::size_t k = 0; k < 3; ++k) {
      QCOMPARE(e.seeds[k].seed, std::uint64_t(7 + k));
      QCOMPARE(e.seeds[k].data_seed, req.session.data_seed + k);
      QCOMPARE(e.seeds[k].trace.size(), std::size_t(5));
      QCOMPARE(e.seeds[k].rows.size(), e.rows.size());
    }
    // The composition is the first seed: its weights, trace and rows.
    QCOMPARE(c.trials.size(), std::size_t(5));
    for (std::size_t i = 0; i < c.members.size(); ++i)
      QCOMPARE(c.members[i].weight, e.seeds[0].rows.back().weights[i]);
    QCOMPARE(e.rows.back().heldout.loss, e.seeds[0].rows.back().heldout.loss);
    // Each seed drew its own examples: zero-shot scores differ between seeds.
    QVERIFY(e.seeds[0].rows.front().heldout.loss != e.seeds[1].rows.front().heldout.loss);

    // Seed 2 alone, as a single run with its data seed and search seed, gives
    // that seed's row: the seeds are reproducible one by one.
    ComposeRequest one = req;
    one.name = "seed-two-alone";
    one.seeds = 1;
    one.session.data_seed = req.session.data_seed + 1;
    one.search.seed = 8;
    const ComposeOutcome alone = compose_and_store(store, one, env);
    QVERIFY(alone.evaluation.seeds.empty());
    QCOMPARE(alone.evaluation.composition().heldout.loss, e.seeds[1].rows.back().heldout.loss);
    QCOMPARE(alone.evaluation.composition().weights, e.seeds[1].rows.back().weights);

    // The intervals: mean, sd and t-interval of the three held-out losses,
    // computed here by hand (t_0.975 with 2 degrees of freedom is 4.302653).
    const std::vector<RowIntervals> spread = seed_intervals(e);
    QCOMPARE(spread.size(), e.rows.size());
    const RowIntervals& comp = spread.back();
    QCOMPARE(comp.label, std::string("composition"));
    QCOMPARE(comp.heldout_loss.n, 3);
    double l[3], mean = 0, ss = 0;
    for (int k = 0; k < 3; ++k) mean += (l[k] = e.seeds[static_cast<std::size_t>(k)].rows.back().heldout.loss) / 3;
    for (double v : l) ss += (v - mean) * (v - mean);
    const double sd = std::sqrt(ss / 2);
    QVERIFY(std::abs(comp.heldout_loss.mean - mean) <= 1e-12 * std::abs(mean));
    QVERIFY(std::abs(comp.heldout_loss.sd - sd) <= 1e-9 * sd);
    QVERIFY(std::abs(comp.heldout_loss.half_width() - 4.302653 * sd / std::sqrt(3.0)) <= 1e-5 * sd);
    // Without seeds a row is one value, no spread.
    QCOMPARE(seed_intervals(alone.evaluation).back().heldout_loss.n, 1);

    const std::vector<std::string> summary = seed_summary(e);
    QCOMPARE(summary.size(), std::size_t(5));
    QVERIFY2(summary[0].starts_with("3 seeds (7, 8, 9)"), summary[0].c_str());
    QVERIFY2(summary[1].starts_with("composition − zero-shot: "), summary[1].c_str());
    QVERIFY(seed_summary(alone.evaluation).empty());

    ComposeRequest bad = req;
    bad.name = "bad";
    for (int n : {0, 11}) {
      bad.seeds = n;
      QVERIFY(error_of([&] { compose_and_store(store, bad, env); }).contains("compose.seeds"));
    }
  }

  void unknownAdaptersAndTasksAreNamed() {
    Store store(db("unknown.sqlite3"));
    ComposeRequest req;
    req.name = "x";
    req.adapters = {"nope"};
    req.session.task = "count";
    QVERIFY(error_of([&] { compose_and_store(store, req, env); }).contains("no adapter named \"nope\""));
    store.save_adapter("one", std::nullopt, trained[0].state, "task:test", NAN, NAN);
    req.adapters = {"one", "one"};
    QVERIFY(error_of([&] { compose_and_store(store, req, env); }).contains("\"one\" is listed twice"));
    req.adapters = {"one"};
    req.session.task = "juggle";
    QVERIFY(error_of([&] { compose_and_store(store, req, env); }).contains("unknown task \"juggle\""));
    QVERIFY(store.list_compositions().empty());
  }

  // An adapter with NaN weights (a diverged run's, or an old library's) is
  // skipped and named: it would make the composition, and its own score, NaN.
  void nonFiniteMembersAreSkippedAndNamed() {
    Store store(db("non-finite.sqlite3"));
    AdapterState broken = trained[1].state;
    broken.tensors.begin()->second.values[0] = NAN;
    store.save_adapter("sound", std::nullopt, trained[0].state, "task:test", NAN, NAN);
    store.save_adapter("broken", std::nullopt, broken, "task:test", NAN, NAN);
    std::vector<std::string> notices;
    TrainerEnvironment noted = env;
    noted.notice = [&](const std::string& m) { notices.push_back(m); };
    ComposeRequest req;
    req.name = "without-the-broken-one";
    req.adapters = {"sound", "broken"};
    req.session.task = "count";
    req.session.heldout = 10;
    req.search.budget = 3;
    const ComposeOutcome out = compose_and_store(store, req, noted);
    QCOMPARE(out.composition.members.size(), std::size_t(1));
    QVERIFY(std::isfinite(out.evaluation.composition().heldout.loss));
    QCOMPARE(out.evaluation.best_member().label, std::string("sound"));
    bool named = false;
    for (const std::string& n : notices)
      named |= n.find("adapter \"broken\" skipped: tensor \"" + broken.tensors.begin()->first + "\" holds 1 NaN") == 0;
    QVERIFY(named);
    req.name = "only-the-broken-one";
    req.adapters = {"broken"};
    QVERIFY(error_of([&] { compose_and_store(store, req, noted); }).contains("no member is left to compose"));
    // Dropped onto a canvas (check_members), it is refused by name.
    std::vector<Member> members = {trained[0], {"broken", broken}};
    QVERIFY(error_of([&] { check_members(members, MergeMode::LoraHub); }).contains("adapter \"broken\""));
  }

  // A member that scores NaN is never the best single member.
  void theBestMemberHasAFiniteLoss() {
    Evaluation e;
    e.task = "count";
    ScoreRow nan_row, good;
    nan_row.kind = good.kind = ScoreRow::Kind::Member;
    nan_row.label = "nan";
    nan_row.heldout.loss = NAN;
    good.label = "good";
    good.heldout.loss = 3.5;
    e.rows = {ScoreRow{}, nan_row, good, ScoreRow{}};
    QCOMPARE(e.best_member().label, std::string("good"));
  }

  // ---- the hub demo, shrunk ---------------------------------------------------

  void hubTrainsOnceThenReuses() {
    Store store(db("hub.sqlite3"));
    QCOMPARE(hub_preset().target, std::string("count"));
    const std::vector<std::string> tasks = hub_preset().member_tasks;
    QCOMPARE(tasks.size(), std::size_t(9));
    QVERIFY(std::find(tasks.begin(), tasks.end(), "count") == tasks.end());
    const HubPreset p = shrunk_hub(30, 300, 20, 10);
    // Each member's training reaches the caller's progress, its place among
    // the members told, the trainer prepared (its model built).
    std::vector<std::string> member_progress;
    TrainerSink quiet;
    HubCallbacks cb;
    cb.training_sink = [&](const std::string& adapter, Trainer& trainer, int index, int total) -> TrainerSink* {
      member_progress.push_back(adapter + " " + std::to_string(index) + "/" + std::to_string(total) + " " +
                                std::to_string(trainer.model().trainable_count() > 0));
      return &quiet;
    };
    const HubReport first = run_hub(store, p, env, cb);
    QCOMPARE(first.trained.size(), std::size_t(2));
    QCOMPARE(member_progress, (std::vector<std::string>{first.trained[0] + " 1/2 1", first.trained[1] + " 2/2 1"}));
    QVERIFY(first.reused.empty());
    const std::string fp = checkpoint_metadata(base, "lwb.fingerprint");
    QCOMPARE(first.trained[0], hub_adapter_name("length", fp));
    QCOMPARE(first.outcome.composition.name, std::string("hub-count"));
    QVERIFY(first.outcome.search.best_objective < first.outcome.search.trace.front().objective);
    QCOMPARE(store.list_runs().size(), std::size_t(2));  // the member runs are recorded

    const HubReport second = run_hub(store, p, env);
    QVERIFY(second.trained.empty());
    QCOMPARE(second.reused.size(), std::size_t(2));
    QCOMPARE(second.outcome.composition.id, first.outcome.composition.id);  // replaced, not duplicated
    QCOMPARE(store.list_compositions().size(), std::size_t(1));
    QCOMPARE(store.list_adapters().size(), std::size_t(2));
  }

  // A fetched base (SmolLM2) has no cached checkpoint with a recorded
  // fingerprint: the hub takes it from the weights, as the trainer does, and
  // its members name the file as their base, so that the composition loads it.
  void hubRunsOnAFetchedBase() {
    const QByteArray gguf = qgetenv("LWB_SMOLLM2_GGUF");
    if (gguf.isEmpty())
      QSKIP("set LWB_SMOLLM2_GGUF to SmolLM2-135M-Instruct's GGUF (./run.sh fetch smollm2) to run this");
    QTemporaryDir data;
    const fs::path models = fs::path(data.path().toStdString()) / "models";
    fs::create_directories(models);
    fs::create_symlink(fs::absolute(gguf.toStdString()), models / "SmolLM2-135M-Instruct.Q4_1.gguf");
    TrainerEnvironment fetched = env;
    fetched.data_dir = data.path().toStdString();
    Store store(models.parent_path() / "hub.sqlite3");
    HubPreset p = shrunk_hub(2, 20, 3, 3);
    p.training.model.preset = "smollm2-135m";
    p.training.train.batch = 2;
    p.training.train.eval_examples = 2;
    const HubReport first = run_hub(store, p, fetched);
    QCOMPARE(first.trained.size(), std::size_t(2));
    LoadedBase loaded;
    load_base("smollm2-135m", fetched, loaded);
    QCOMPARE(first.trained[0], hub_adapter_name("length", loaded.fingerprint));
    for (const AdapterRow& row : store.list_adapters()) QCOMPARE(row.base_fingerprint, loaded.fingerprint);
    QCOMPARE(first.outcome.composition.name, std::string("hub-count"));
    QVERIFY(std::isfinite(first.outcome.evaluation.composition().heldout.loss));
    QCOMPARE(run_hub(store, p, fetched).reused.size(), std::size_t(2));
  }
};

QTEST_GUILESS_MAIN(TestCompose)
#include "test_compose.moc"
