// The memory planner: calibrated against the MemoryLedger on the built-in
// presets (workbench profile), computed by hand on a micro config (both
// profiles, every method), and against the LISA paper's LLaMA-2-7B figures
// (pytorch-eager profile).
#include <omp.h>

#include <QtTest>
#include <cmath>

#include "core/adapters/attach.h"
#include "core/adapters/variant.h"
#include "core/common/errors.h"
#include "core/cpu/cpu_backend.h"
#include "core/plan/planner.h"
#include "core/model/model.h"
#include "core/optim/adamw.h"

using namespace lwb;

namespace {

const std::filesystem::path kResources = std::filesystem::path(LWB_SOURCE_DIR) / "resources";

AdapterConfig adapter(const std::string& method, int r, std::vector<Target> targets, double dropout = 0) {
  AdapterConfig a;
  select_method(a, method);
  a.r = r;
  a.set_option("adalora.target_r", r);
  a.targets = std::move(targets);
  a.dropout = dropout;
  return a;
}

std::vector<Target> all_targets() { return {kAllTargets.begin(), kAllTargets.end()}; }

// hidden 8, intermediate 16, 2 layers, 2 heads of 4, 1 kv head, vocab 16:
// C = 8, I = 16, V = 16, H = 2, hd = 4, qd = 8, kvd = 4, L = 2.
ModelConfig hand_config() {
  ModelConfig c;
  c.name = "hand";
  c.hidden = 8;
  c.intermediate = 16;
  c.layers = 2;
  c.heads = 2;
  c.kv_heads = 1;
  c.vocab = 16;
  c.max_seq = 8;
  return c;
}

using Expected = std::array<qint64, kMemCategoryCount>;  // frozen, trainable, acts, grads, optim, workspace

void compare_exact(const MemoryPlan& plan, const Expected& want) {
  for (int c = 0; c < kMemCategoryCount; ++c) {
    const auto got = static_cast<qint64>(plan.totals[static_cast<std::size_t>(c)]);
    if (got != want[static_cast<std::size_t>(c)])
      QFAIL(qPrintable(QString("%1: planner %2 B, by hand %3 B\n%4")
                           .arg(mem_category_name(static_cast<MemCategory>(c)))
                           .arg(got)
                           .arg(want[static_cast<std::size_t>(c)])
                           .arg(QString::fromStdString(format_plan_table(plan)))));
  }
}

}  // namespace

Q_DECLARE_METATYPE(Expected)

class TestPlanner : public QObject {
  Q_OBJECT
  CpuBackend be;

 private slots:
  // ---- calibration: planner (workbench) vs the ledger of a built model -----
  // Sizes in the binary units every view uses (GiB = 2^30 bytes), not GB.
  void sizes_are_in_binary_units() {
    QCOMPARE(format_plan_bytes(512), std::string("512 B"));
    QCOMPARE(format_plan_bytes(1536), std::string("1.50 KiB"));
    QCOMPARE(format_plan_bytes(3.0 * 1024 * 1024 * 1024), std::string("3.00 GiB"));
    QCOMPARE(format_plan_bytes(1e9), std::string("953.67 MiB"));
    QCOMPARE(format_plan_bytes(1.5 * 1024 * 1024, 1), std::string("1.5 MiB"));
    QCOMPARE(format_plan_bytes(-2048), std::string("-2.00 KiB"));
  }

  void calibration_against_ledger_data() {
    QTest::addColumn<QString>("preset");
    QTest::addColumn<QString>("method");
    QTest::addColumn<double>("dropout");
    QTest::addColumn<QString>("precision");
    for (const char* preset : {"tiny", "small"})
      for (const char* method : {"full", "lora", "rslora", "dora", "dora-norm-grad", "adalora", "relora", "pissa", "vera"})
        QTest::newRow((std::string(preset) + "/" + method).c_str())
            << QString(preset) << QString(method) << 0.0 << QString("fp32");
    QTest::newRow("tiny/lora-dropout") << QString("tiny") << QString("lora") << 0.1 << QString("fp32");
    QTest::newRow("small/dora-dropout") << QString("small") << QString("dora") << 0.1 << QString("fp32");
    // model.frozen_dtype = bf16: the projections at 2 B, the CPU's widening scratch.
    for (const char* preset : {"tiny", "small"})
      for (const char* method : {"lora", "dora", "adalora"})
        QTest::newRow((std::string(preset) + "/" + method + "-bf16-frozen").c_str())
            << QString(preset) << QString(method) << 0.0 << QString("bf16-frozen");
  }
  void calibration_against_ledger() {
    QFETCH(QString, preset);
    QFETCH(QString, method);
    QFETCH(double, dropout);
    QFETCH(QString, precision);
    const std::int64_t B = 4, T = preset == "tiny" ? 64 : 128;
    PlanInput in;
    in.model = model_preset(preset.toStdString());
    in.adapter = adapter(method.toStdString(), 8, all_targets(), dropout);
    in.batch = B;
    in.seq = T;
    in.threads = omp_get_max_threads();
    in.precision = parse_plan_precision(precision.toStdString());
    in.optimizer = default_optimizer_states(in.precision);
    const MemoryPlan plan = plan_memory(in);

    // The same run as Trainer::prepare builds it.
    MemoryLedger ledger;
    Model model(in.model, model_mode_for(in.adapter), DType::F32,
                precision == "bf16-frozen" ? std::optional(DType::BF16) : std::nullopt);
    attach_adapters(model, in.adapter);
    model.materialize(be, ledger, B, T);
    AdamW optimizer(model.trainable(), AdamWConfig{});
    optimizer.materialize(be, ledger);
    const auto variant = make_variant_controller(in.adapter, ScheduleConfig{}, 1e-3, 100, 1);
    if (variant) variant->attach(model, optimizer, ledger);

    QCOMPARE(plan.trainable_params, model.trainable_count());
    qInfo("%s/%s (%s), batch %lld x %lld, %d threads:", qPrintable(preset), qPrintable(method),
          qPrintable(precision), static_cast<long long>(B), static_cast<long long>(T), in.threads);
    for (int c = 0; c < kMemCategoryCount; ++c) {
      const auto cat = static_cast<MemCategory>(c);
      const double planned = static_cast<double>(plan.totals[static_cast<std::size_t>(c)]);
      const double measured = static_cast<double>(ledger.current(cat));
      const double rel = measured > 0 ? planned / measured - 1 : (planned > 0 ? 1 : 0);
      qInfo("  %-18s planner %12.0f B   ledger %12.0f B   %+.3f%%", mem_category_name(cat), planned, measured,
            100 * rel);
      QVERIFY2(std::abs(rel) <= 0.10, mem_category_name(cat));
    }
    QCOMPARE(plan.total, ledger.total());
  }

  // ---- hand-computed: workbench profile (fp32, 256-byte slots) -------------
  // B = 1, T = 4, N = 4, threads = 1, r = 2 on q and v. Every tensor takes
  // ⌈bytes / 256⌉ slots of 256 B. Slot counts:
  //  base per layer: 2 norms [8] 1 each, q, k, v, o (64, 32, 32, 64 floats)
  //    1 each, gate, up, down (128 floats = 512 B) 2 each: 2 + 4 + 6 = 12
  //    slots = 3072 B; 2 layers 6144; model: embed, lm_head 512 B each, norm
  //    256: 1280. Base total 7424 B.
  //  activations per layer: x_in, x_mid, ln1, ln2 [4, 8] 4; rstd1, rstd2 2;
  //    q, att [4, 8] 2; k, v [4, 4] 2; lse [8] 1; gate, up, h [4, 16] (256 B)
  //    3: 14 slots = 3584 B, 2 layers 7168; model: ids, labels 2, x_final,
  //    lnf 2, rstdf 1, logits [4, 16] 1, losses 1: 7 slots = 1792. 8960 B.
  //  workspace: rope [4, 4] 1, dres, dln, proj 3, dq, datt 2, dk, dv 2,
  //    dgate, dup, dh 3, attention 1·(2·64 + 2·4)·4 floats (two blocks of
  //    64 query rows, then K^T and V^T) = 2176 B (9 slots), adapter
  //    scratch 1, predictions 1: 22 slots = 5632 B.
  //  LoRA per layer: q A [2, 8], B [8, 2], v A [2, 8], B [4, 2]: 4 slots =
  //    1024 B, 2 layers 2048; u [4, 2] per target: 2 slots per layer, 1024 B.
  void hand_computed_workbench_data() {
    QTest::addColumn<QString>("method");
    QTest::addColumn<Expected>("want");
    QTest::newRow("full") << QString("full") << Expected{0, 7424, 8960, 7424, 2 * 7424, 5632};
    QTest::newRow("lora") << QString("lora") << Expected{7424, 2048, 8960 + 1024, 2048, 2 * 2048, 5632};
    QTest::newRow("rslora") << QString("rslora") << Expected{7424, 2048, 8960 + 1024, 2048, 2 * 2048, 5632};
    // DoRA: + magnitudes [8], [4] (1 slot each): 6 slots per layer = 3072 B.
    // Activations + z [4, 8], [4, 4], norm, g per target: 6 slots per layer,
    // 3072 B. Workspace + merge norms 2 slots per layer (1024 B); the adapter
    // scratch is q's N·r + out·in + N·out + 3·out = 8 + 64 + 32 + 24 = 128
    // floats = 512 B, one slot more: 5632 + 1024 + 256 = 6912.
    QTest::newRow("dora") << QString("dora") << Expected{7424, 3072, 9984 + 3072, 3072, 2 * 3072, 6912};
    // Norm with gradient: + W' [8, 8] 1 slot, [4, 8] 1 slot per layer (1024 B);
    // the scratch loses out·in: 8 + 32 + 24 = 64 floats, one slot (5632 + 1024).
    QTest::newRow("dora-norm-grad") << QString("dora-norm-grad")
                                    << Expected{7424, 3072, 13056 + 1024, 3072, 2 * 3072, 6656};
    // AdaLoRA: + E [2] per target: 6 slots per layer = 3072 B; importance and
    // uncertainty EMAs double the optimiser state; workspace + A·Aᵀ [2, 2].
    QTest::newRow("adalora") << QString("adalora") << Expected{7424, 3072, 9984, 3072, 4 * 3072, 5632 + 256};
    // ReLoRA: the same device buffers as LoRA (its starting weights are host
    // copies in the controller).
    QTest::newRow("relora") << QString("relora") << Expected{7424, 2048, 9984, 2048, 2 * 2048, 5632};
  }
  void hand_computed_workbench() {
    QFETCH(QString, method);
    QFETCH(Expected, want);
    PlanInput in;
    in.model = hand_config();
    in.adapter = adapter(method.toStdString(), 2, {Target::Q, Target::V});
    in.batch = 1;
    in.seq = 4;
    in.threads = 1;
    compare_exact(plan_memory(in), want);
  }

  // ---- hand-computed: pytorch-eager profile (bf16, states bf16) ------------
  // B = 1, T = 4, N = 4, 2 B per element, r = 2 on q and v, no dropout.
  // Parameters: per layer 2·8 + q 64 + k 32 + v 32 + o 64 + 3 · 128 = 592,
  //   model 2·16·8 + 8 = 264; 2·592 + 264 = 1448 → 2896 B.
  // Full, activations per layer: norms 2·(4·N·C + 4·N) + 2·N·C·2 = 2·144 +
  //   128 = 416; q k v input N·C·2 = 64; q, k, v 3·N·qd·2 = 192; probabilities
  //   (4 + 2)·B·H·T² = 6·32 = 192; o input 64; gate/up input 64; SwiGLU
  //   3·N·I·2 = 384; down input N·I·2 = 128: 1504, 2 layers 3008. Model: ids,
  //   labels 2·N·8 = 64; cos, sin 2·N·hd·2 = 64; final norm 4·N·C + 4·N +
  //   N·C·2 = 208; lm_head input 64; log-softmax 4·N·V = 256: 656. 3664 B.
  // Workspace: logits (2 + 8)·N·V = 640, attention backward 6·B·H·T² = 192:
  //   832 B.
  // LoRA: A and B of q 2·(8 + 8) = 32, of v 2·(8 + 4) = 24: 56 per layer,
  //   112 → 224 B. Activations per layer: norms 288 (weights frozen), q k v
  //   input 64 (A reads it), q, k, v 192, probabilities 192, SwiGLU 384,
  //   u = A·x 2 · N·r·2 = 32: 1152, 2 layers 2304; model 64 + 64 + 144 + 256
  //   = 528. 2832 B.
  void hand_computed_eager_data() {
    QTest::addColumn<QString>("method");
    QTest::addColumn<Expected>("want");
    QTest::newRow("full") << QString("full") << Expected{0, 2896, 3664, 2896, 2 * 2896, 832};
    QTest::newRow("lora") << QString("lora") << Expected{2896, 224, 2832, 224, 2 * 224, 832};
    QTest::newRow("rslora") << QString("rslora") << Expected{2896, 224, 2832, 224, 2 * 224, 832};
    // ReLoRA merges in place: the same as LoRA.
    QTest::newRow("relora") << QString("relora") << Expected{2896, 224, 2832, 224, 2 * 224, 832};
    // DoRA: + magnitudes 8 + 4 per layer: 136 parameters = 272 B. Activations
    // + base and LoRA results 2 · N · (8 + 4) · 2 = 192 per layer: 2832 + 384.
    QTest::newRow("dora") << QString("dora") << Expected{2896, 272, 3216, 272, 2 * 272, 832};
    // Norm with gradient: + (in·in + out·in)·2 = (64 + 64 + 64 + 32)·2 = 448
    // per layer: 3216 + 896.
    QTest::newRow("dora-norm-grad") << QString("dora-norm-grad") << Expected{2896, 272, 4112, 272, 2 * 272, 832};
    // AdaLoRA: + E, 2 per target: 120 parameters = 240 B; optimiser m, v 480
    // plus ipt, exp_avg_ipt, exp_avg_unc 720; activations + (r·in + 2·r²)·2 =
    // (16 + 8)·2 per target = 96 per layer: 2832 + 192.
    QTest::newRow("adalora") << QString("adalora") << Expected{2896, 240, 3024, 240, 480 + 720, 832};
  }
  void hand_computed_eager() {
    QFETCH(QString, method);
    QFETCH(Expected, want);
    PlanInput in;
    in.model = hand_config();
    in.adapter = adapter(method.toStdString(), 2, {Target::Q, Target::V});
    in.batch = 1;
    in.seq = 4;
    in.profile = PlanProfile::PytorchEager;
    in.precision = parse_plan_precision("bf16");
    in.optimizer = OptimizerStates::BF16;
    compare_exact(plan_memory(in), want);
  }

  // Mixed precision, 8-bit states, dropout and checkpointing on the hand config.
  void hand_computed_eager_options() {
    PlanInput in;
    in.model = hand_config();
    in.batch = 1;
    in.seq = 4;
    in.profile = PlanProfile::PytorchEager;
    in.adapter = adapter("full", 2, {Target::Q, Target::V});
    // Mixed: bf16 weights + fp32 masters (2 + 4 B), bf16 gradients, fp32 moments.
    in.precision = parse_plan_precision("mixed");
    in.optimizer = default_optimizer_states(in.precision);
    MemoryPlan p = plan_memory(in);
    QCOMPARE(p.totals[1], std::size_t{1448 * 6});
    QCOMPARE(p.totals[3], std::size_t{1448 * 2});
    QCOMPARE(p.totals[4], std::size_t{1448 * 8});
    // 8-bit states: every tensor here is under 4096 elements, so fp32.
    in.optimizer = OptimizerStates::Int8;
    QCOMPARE(plan_memory(in).totals[4], std::size_t{1448 * 8});
    // Checkpointing: each layer keeps its input N·C·2 = 64 B; one layer's
    // 1504 B come back as workspace.
    in.checkpointing = true;
    p = plan_memory(in);
    QCOMPARE(p.totals[2], std::size_t{2 * 64 + 656});
    QCOMPARE(p.totals[5], std::size_t{832 + 1504});
    // LoRA, dropout, mixed (fp32 adapter): no master copy (already fp32);
    // per layer the q k v input is no longer read by A, each target keeps its
    // dropped fp32 input and mask N·8·(4 + 1) = 160 B and u N·r·4 = 32 B:
    // 1152 - 64 - 32 + 2·160 + 2·32 = 1440; 2 layers + model 528 = 3408.
    in.checkpointing = false;
    in.adapter = adapter("lora", 2, {Target::Q, Target::V}, 0.1);
    p = plan_memory(in);
    QCOMPARE(p.totals[1], std::size_t{112 * 4});
    QCOMPARE(p.totals[2], std::size_t{3408});
  }

  // ---- LLaMA-2-7B against the LISA paper (Figure 3) -----------------------
  void llama2_7b_lisa_figures() {
    const ModelConfig m = load_plan_model("llama-2-7b", kResources);
    QCOMPARE(m.param_count(), std::int64_t{6'738'415'616});
    const MemoryPlan full = plan_memory(lisa_llama2_7b_input(m, "full"));
    const MemoryPlan lora = plan_memory(lisa_llama2_7b_input(m, "lora"));
    QCOMPARE(full.trainable_params, std::int64_t{6'738'415'616});
    // Rank 128 on all seven projections: 32 · 128 · (4 · 8192 + 3 · 15104).
    QCOMPARE(lora.trainable_params, std::int64_t{319'815'680});
    qInfo("\n%s\n%s\n%s", format_plan_table(full).c_str(), format_plan_table(lora).c_str(),
          format_plan_comparison({full, lora}).c_str());
    auto gb = [](double b) { return b / 1e9; };
    const auto opt = static_cast<std::size_t>(MemCategory::OptimizerState);
    const auto grad = static_cast<std::size_t>(MemCategory::Gradients);
    const struct {
      const char* what;
      double planned, published;
    } checks[] = {
        {"full fine-tuning", gb(static_cast<double>(full.total)), 60},
        {"LoRA", gb(static_cast<double>(lora.total)), 23},
        {"optimiser-state saving", gb(static_cast<double>(full.totals[opt]) - static_cast<double>(lora.totals[opt])),
         25},
        {"gradient saving", gb(static_cast<double>(full.totals[grad]) - static_cast<double>(lora.totals[grad])), 14},
    };
    for (const auto& c : checks) {
      qInfo("%-24s planner %6.2f GB   LISA %4.0f GB   %+.1f%%", c.what, c.planned, c.published,
            100 * (c.planned / c.published - 1));
      QVERIFY2(std::abs(c.planned / c.published - 1) <= 0.10, c.what);
    }
  }

  // Published parameter counts of the shipped configs.
  void shipped_configs() {
    const std::map<std::string, std::int64_t> published = {{"llama-2-7b", 6'738'415'616},
                                                           {"llama-2-13b", 13'015'864'320},
                                                           {"llama-3-8b", 8'030'261'248},
                                                           {"mistral-7b", 7'241'732'096},
                                                           {"smollm2-135m", 134'515'008},
                                                           {"tinyllama-1.1b", 1'100'048'384}};
    std::vector<std::string> names;
    for (const auto& [name, count] : published) names.push_back(name);
    QCOMPARE(shipped_model_names(kResources), names);
    for (const auto& [name, count] : published) {
      const ModelConfig m = load_plan_model(name, kResources);
      QCOMPARE(m.name, name);
      QCOMPARE(m.param_count(), count);
    }
    // A path works as well as a name; presets need no resources.
    QCOMPARE(load_plan_model((kResources / "models" / "mistral-7b.json").string(), {}).kv_heads, 8);
    QCOMPARE(load_plan_model("small", {}).hidden, 512);
    QVERIFY_THROWS_EXCEPTION(ConfigError, load_plan_model("llama-9", kResources));
  }

  void plan_structure() {
    PlanInput in = lisa_llama2_7b_input(load_plan_model("llama-3-8b", kResources), "dora");
    const MemoryPlan p = plan_memory(in);
    QCOMPARE(p.rows.size(), std::size_t{33});
    std::size_t sum = 0;
    for (const auto& row : p.rows)
      for (std::size_t b : row.bytes) sum += b;
    QCOMPARE(sum, p.total);
    for (const PlanTerm& t : p.terms) {
      QVERIFY(!t.what.empty());
      QVERIFY(!t.formula.empty());
      QVERIFY(t.bytes > 0);
    }
    QVERIFY(format_plan_layers(p).find("0-31 each") != std::string::npos);
  }

  void refused_settings() {
    PlanInput in;
    in.model = model_preset("tiny");
    in.seq = 64;
    in.checkpointing = true;
    QVERIFY_THROWS_EXCEPTION(ConfigError, plan_memory(in));  // the engine has no checkpointing
    in.checkpointing = false;
    in.optimizer = OptimizerStates::Int8;
    QVERIFY_THROWS_EXCEPTION(ConfigError, plan_memory(in));
    in.optimizer = OptimizerStates::F32;
    in.seq = 256;  // tiny's maximum is 128
    QVERIFY_THROWS_EXCEPTION(ConfigError, plan_memory(in));
    QVERIFY_THROWS_EXCEPTION(ConfigError, parse_plan_precision("fp8"));
    // bf16-frozen: nothing is frozen in full fine-tuning; ReLoRA merges into the base.
    in.seq = 64;
    in.precision = parse_plan_precision("bf16-frozen");
    QCOMPARE(default_optimizer_states(in.precision), OptimizerStates::F32);
    in.adapter = adapter("full", 8, all_targets());
    QVERIFY_THROWS_EXCEPTION(ConfigError, plan_memory(in));
    in.adapter = adapter("relora", 8, all_targets());
    QVERIFY_THROWS_EXCEPTION(ConfigError, plan_memory(in));
    in.adapter = adapter("lora", 8, all_targets());
    QCOMPARE(plan_precision_name(plan_memory(in).input.precision), std::string("bf16-frozen"));
  }
};

QTEST_APPLESS_MAIN(TestPlanner)
#include "test_planner.moc"
