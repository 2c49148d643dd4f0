// The fused, chunked classifier and loss (core/model/linear_cross_entropy.h):
// equal to the unfused classifier to fp32 rounding on random data and through
// a whole training step of the tiny model (lm_head and tied embeddings),
// finite differences in double, and the memory it saves in the ledger and
// the planner at SmolLM2-135M's vocabulary.
#include <QtTest>

#include <algorithm>
#include <cmath>

#include "core/adapters/attach.h"
#include "core/cpu/cpu_backend.h"
#include "core/model/linear_cross_entropy.h"
#include "core/model/model.h"
#include "core/plan/planner.h"
#include "model_fixtures.h"

using namespace lwb;
using namespace lwb::test;

namespace {

// fp32 results of differently blocked sums: a few ulps of the largest terms.
constexpr double kFp32Tol = 2e-6;
constexpr double kFdTol = 1e-8;  // double, 4-point stencil with h = 1e-4
const std::filesystem::path kResources = std::filesystem::path(LWB_SOURCE_DIR) / "resources";

Tensor i32_tensor(Backend& be, const std::vector<std::int32_t>& v) {
  Tensor t = make_tensor(be, Shape{static_cast<std::int64_t>(v.size())}, DType::I32);
  be.upload(t, v.data(), v.size() * sizeof(std::int32_t));
  return t;
}

std::vector<std::int32_t> i32_values(Backend& be, const Tensor& t) {
  std::vector<std::int32_t> v(static_cast<std::size_t>(t.numel()));
  be.download(v.data(), t, v.size() * sizeof(std::int32_t));
  return v;
}

// Every fourth target ignored, like prompt tokens.
std::vector<std::int32_t> targets(std::int64_t n, std::int64_t V) {
  std::vector<std::int32_t> t;
  for (std::int64_t i = 0; i < n; ++i)
    t.push_back(i % 4 == 1 ? -1 : static_cast<std::int32_t>((i * 7919 + 3) % V));
  return t;
}

struct ClassifierResult {
  std::vector<double> losses, dh, dW;
  std::vector<std::int32_t> predictions;
};

// One model step's trainable gradients, loss and predictions.
struct StepResult {
  double loss = 0;
  std::vector<double> grads;
  std::vector<std::int32_t> predictions;
  std::vector<std::int32_t> logits_argmax;
};

StepResult model_step(Backend& be, const ModelConfig& mc, Model::Mode mode, std::int64_t chunk_rows,
                      std::int64_t B, std::int64_t T) {
  MemoryLedger ledger;
  Model m(mc, mode, DType::F32);
  if (mode == Model::Mode::Frozen) {
    AdapterConfig a;
    a.targets = {kAllTargets.begin(), kAllTargets.end()};
    attach_adapters(m, a);
  }
  m.set_classifier_chunk_rows(chunk_rows);
  m.materialize(be, ledger, B, T);
  m.init_base_weights(5);
  const TensorArena& params = m.trainable().params();
  for (std::size_t i = 0; i < params.entries().size(); ++i) {  // LoRA B too, so every gradient lives
    const Tensor t = params.slot_tensor(i);
    upload_values(be, t, normal_values(t.numel(), 0.05, 40 + i));
  }
  std::vector<std::int32_t> in, tg = targets(B * T, mc.vocab);
  std::int64_t scored = 0;
  for (std::int64_t i = 0; i < B * T; ++i) {
    in.push_back(static_cast<std::int32_t>((i * 31 + 11) % mc.vocab));
    scored += tg[static_cast<std::size_t>(i)] >= 0;
  }
  m.set_batch(in.data(), tg.data(), B, T);
  m.forward(true, 3);
  StepResult r;
  r.loss = m.loss(scored, true, &r.predictions);
  m.backward(3);
  r.grads = download_values(be, m.trainable().grads().flat());
  const Tensor logits = m.logits();  // after the step: the forward's final norm is unchanged
  const Tensor ids = make_tensor(be, Shape{m.rows()}, DType::I32);
  be.argmax_rows(ids, logits, m.rows(), mc.vocab);
  r.logits_argmax = i32_values(be, ids);
  return r;
}

}  // namespace

class TestLinearCrossEntropy : public QObject {
  Q_OBJECT
  CpuBackend be;

  // The classifier as the model ran it before fusing: all logits, the fused
  // softmax cross-entropy in place, then the two gemms of the backward.
  ClassifierResult unfused(const Tensor& h, const Tensor& W, const Tensor& tg, const Tensor& dW0,
                           std::int64_t n, std::int64_t C, std::int64_t V, double scale) {
    const Tensor logits = make_tensor(be, Shape{n, V}, h.dtype), losses = make_tensor(be, Shape{n}, h.dtype),
                 dh = make_tensor(be, Shape{n, C}, h.dtype), dW = make_tensor(be, Shape{V, C}, h.dtype),
                 ids = make_tensor(be, Shape{n}, DType::I32);
    be.copy(dW, dW0);
    be.gemm(false, true, n, V, C, 1.0, h, C, W, C, 0.0, logits, V);
    be.argmax_rows(ids, logits, n, V);
    be.cross_entropy(losses, logits, logits, tg, n, V, scale);
    be.gemm(false, false, n, C, V, 1.0, logits, V, W, C, 0.0, dh, C);
    be.gemm(true, false, V, C, n, 1.0, logits, V, h, C, 1.0, dW, C);
    return {download_values(be, losses), download_values(be, dh), download_values(be, dW), i32_values(be, ids)};
  }

  ClassifierResult fused(const Tensor& h, const Tensor& W, const Tensor& tg, const Tensor& dW0,
                         std::int64_t n, std::int64_t C, std::int64_t V, double scale, std::int64_t chunk) {
    const Tensor buf = make_tensor(be, Shape{chunk, V}, h.dtype), losses = make_tensor(be, Shape{n}, h.dtype),
                 dh = make_tensor(be, Shape{n, C}, h.dtype), dW = make_tensor(be, Shape{V, C}, h.dtype),
                 ids = make_tensor(be, Shape{n}, DType::I32);
    be.copy(dW, dW0);
    linear_cross_entropy(be, losses, ids, dh, dW, h, W, tg, buf, n, C, V, scale);
    return {download_values(be, losses), download_values(be, dh), download_values(be, dW), i32_values(be, ids)};
  }

 private slots:
  void chunk_rows_rule() {
    // SmolLM2 at 8x256: N*C/V = 24 rows, raised to the floor.
    QCOMPARE(linear_cross_entropy_chunk_rows(2048, 576, 49152), kMinChunkRows);
    // A small vocabulary: logits the size of the hidden states.
    QCOMPARE(linear_cross_entropy_chunk_rows(4096, 128, 256), std::int64_t{2048});
    QCOMPARE(linear_cross_entropy_chunk_rows(100, 128, 256), std::int64_t{100});  // at most n
    QCOMPARE(linear_cross_entropy_chunk_rows(1, 8, 1 << 20), std::int64_t{1});
  }

  void fused_equals_unfused_on_random_inputs() {
    const std::int64_t n = 37, C = 12, V = 53;
    const Tensor h = random_tensor(be, Shape{n, C}, 1, 1.0, DType::F32);
    const Tensor W = random_tensor(be, Shape{V, C}, 2, 0.5, DType::F32);
    const Tensor dW0 = random_tensor(be, Shape{V, C}, 3, 0.1, DType::F32);  // dW accumulates
    const Tensor tg = i32_tensor(be, targets(n, V));
    const double scale = 1.0 / 27;
    const ClassifierResult ref = unfused(h, W, tg, dW0, n, C, V, scale);
    for (std::int64_t chunk : {std::int64_t{1}, std::int64_t{5}, std::int64_t{16}, n}) {
      const ClassifierResult got = fused(h, W, tg, dW0, n, C, V, scale, chunk);
      const double el = relative_diff(got.losses, ref.losses), edh = relative_diff(got.dh, ref.dh), edw = relative_diff(got.dW, ref.dW);
      qInfo("chunk %lld: losses %.2e, dh %.2e, dW %.2e", static_cast<long long>(chunk), el, edh, edw);
      QVERIFY2(el < kFp32Tol && edh < kFp32Tol && edw < kFp32Tol, qPrintable(QString::number(chunk)));
      QCOMPARE(got.predictions, ref.predictions);
    }
    // Loss only (evaluation): no dh, no dW, the same losses.
    const Tensor buf = make_tensor(be, Shape{8, V}, DType::F32), losses = make_tensor(be, Shape{n}, DType::F32);
    linear_cross_entropy(be, losses, Tensor{}, Tensor{}, Tensor{}, h, W, tg, buf, n, C, V, scale);
    QVERIFY(relative_diff(download_values(be, losses), ref.losses) < kFp32Tol);
  }

  void finite_differences_in_double() {
    const std::int64_t n = 10, C = 6, V = 13, chunk = 3;
    const Tensor h = random_tensor(be, Shape{n, C}, 11), W = random_tensor(be, Shape{V, C}, 12);
    const Tensor dh = make_tensor(be, h.shape, DType::F64), dW = make_tensor(be, W.shape, DType::F64);
    const Tensor buf = make_tensor(be, Shape{chunk, V}, DType::F64), losses = make_tensor(be, Shape{n}, DType::F64);
    const Tensor tg = i32_tensor(be, targets(n, V));
    const double scale = 1.0 / 7;  // the mean over 7 scored rows
    std::vector<GradInput> in{{"h", h, dh}, {"W", W, dW}};
    auto loss = [&] {
      linear_cross_entropy(be, losses, Tensor{}, Tensor{}, Tensor{}, h, W, tg, buf, n, C, V, scale);
      return be.sum(losses) * scale;
    };
    const double err = gradcheck("linear_cross_entropy", be, in, loss, [&] {
      linear_cross_entropy(be, losses, Tensor{}, dh, dW, h, W, tg, buf, n, C, V, scale);
    });
    QVERIFY2(err < kFdTol, qPrintable(QString::number(err)));
  }

  void bad_arguments() {
    const Tensor h = random_tensor(be, Shape{4, 3}, 1, 1.0, DType::F32), W = random_tensor(be, Shape{5, 3}, 2, 1.0, DType::F32);
    const Tensor losses = make_tensor(be, Shape{4}, DType::F32), tg = i32_tensor(be, {0, 1, 2, 3});
    const Tensor wrong = make_tensor(be, Shape{2, 4}, DType::F32), dW = make_tensor(be, W.shape, DType::F32);
    QVERIFY_THROWS_EXCEPTION(std::invalid_argument,
                             linear_cross_entropy(be, losses, {}, {}, {}, h, W, tg, wrong, 4, 3, 5, 1.0));
    const Tensor buf = make_tensor(be, Shape{2, 5}, DType::F32);
    QVERIFY_THROWS_EXCEPTION(std::invalid_argument,
                             linear_cross_entropy(be, losses, {}, {}, dW, h, W, tg, buf, 4, 3, 5, 1.0));
  }

  // A whole step of the tiny model, chunked (13 rows, not a divisor) against
  // one chunk of every row (the unfused classifier): full fine-tuning with a
  // separate lm_head and with tied embeddings, and LoRA (frozen lm_head).
  void tiny_model_step_data() {
    QTest::addColumn<bool>("tied");
    QTest::addColumn<bool>("full");
    QTest::newRow("full, lm_head") << false << true;
    QTest::newRow("full, tied embeddings") << true << true;
    QTest::newRow("lora") << false << false;
  }
  void tiny_model_step() {
    QFETCH(bool, tied);
    QFETCH(bool, full);
    ModelConfig mc = model_preset("tiny");
    mc.tie_embeddings = tied;
    const Model::Mode mode = full ? Model::Mode::Full : Model::Mode::Frozen;
    const std::int64_t B = 3, T = 24;
    const StepResult ref = model_step(be, mc, mode, B * T, B, T);
    const StepResult got = model_step(be, mc, mode, 13, B, T);
    const double eg = relative_diff(got.grads, ref.grads);
    qInfo("loss %.9g vs %.9g, gradients %.2e", got.loss, ref.loss, eg);
    QVERIFY(std::abs(got.loss - ref.loss) < kFp32Tol * std::abs(ref.loss));
    QVERIFY2(eg < 1e-5, qPrintable(QString::number(eg)));
    QCOMPARE(got.predictions, ref.predictions);
    // The predictions of the fused pass are those of the full logits.
    QCOMPARE(got.predictions, got.logits_argmax);
  }

  // SmolLM2-135M's classifier at 8x256 (one layer: the classifier's buffers
  // do not depend on the depth): before fusing, the ledger held [N, V] logits.
  void ledger_and_planner_at_smollm2_vocabulary() {
    ModelConfig mc = load_plan_model("smollm2-135m", kResources);
    const std::int64_t B = 8, T = 256, N = B * T;
    const std::size_t before = static_cast<std::size_t>(N * mc.vocab) * 4 + static_cast<std::size_t>(N) * 4;
    ModelConfig one_layer = mc;
    one_layer.layers = 1;
    std::size_t ledger_bytes = 0;
    MemoryLedger ledger;
    {
      Model m(one_layer, Model::Mode::Frozen, DType::F32);
      m.materialize(be, ledger, B, T);
      for (const LedgerEntry& e : ledger.entries())
        if (e.layer == kModelLevel && e.category == MemCategory::Activations &&
            (e.module == "logits" || e.module == "loss"))
          ledger_bytes += e.bytes;
    }
    qInfo("loss activations: %zu B in the ledger, %zu B before (%.1fx less)", ledger_bytes, before,
          static_cast<double>(before) / static_cast<double>(ledger_bytes));
    QVERIFY(ledger_bytes > 0);
    QVERIFY(ledger_bytes * 8 <= before);

    // The planner counts the same declarations, for the whole model.
    PlanInput in;
    in.model = mc;
    in.adapter.targets = {kAllTargets.begin(), kAllTargets.end()};
    in.batch = B;
    in.seq = T;
    const MemoryPlan plan = plan_memory(in);
    std::size_t planned = 0;
    for (const PlanTerm& t : plan.terms)
      if (t.layer == kModelLevel && t.category == MemCategory::Activations && (t.what == "logits" || t.what == "loss"))
        planned += t.bytes;
    QCOMPARE(planned, ledger_bytes);
  }
};

QTEST_GUILESS_MAIN(TestLinearCrossEntropy)
#include "test_linear_cross_entropy.moc"
