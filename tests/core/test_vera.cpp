// VeRA: the module's gradient in double, the shared projections held once
// (one tensor for every module, one ledger entry, one pair in the adapter),
// the initialisation, the merge, PEFT's files both ways (with and without
// projections) and what the descriptor declares (form fields, checks, arm).
// Against PEFT itself: tests/core/test_reference.cpp (kind "vera").
#include <QtTest>

#include <QTemporaryDir>

#include <fstream>
#include <nlohmann/json.hpp>

#include "core/adapters/adapter_state.h"
#include "core/adapters/attach.h"
#include "core/adapters/descriptor.h"
#include "core/adapters/vera.h"
#include "core/common/errors.h"
#include "core/cpu/cpu_backend.h"
#include "core/format/safetensors.h"
#include "core/io/peft.h"
#include "model_fixtures.h"

using namespace lwb;
using namespace lwb::test;

namespace {

AdapterConfig vera_config(int r = 4, double dropout = 0) {
  AdapterConfig ac;
  ac.method = "vera";
  ac.r = r;
  ac.dropout = dropout;
  ac.targets.assign(kAllTargets.begin(), kAllTargets.end());
  ac.set_option("vera.projection_prng_key", 77);
  return ac;
}

}  // namespace

class TestVera : public QObject {
  Q_OBJECT
  CpuBackend be;

 private slots:
  // Forward and backward of every module (λ_b, λ_d random so that no
  // gradient is trivially zero; dropout on), in double through the model.
  void gradcheck() {
    MemoryLedger ledger;
    Model m(micro_config(), Model::Mode::Frozen, DType::F64);
    attach_adapters(m, vera_config(4, 0.2));
    m.materialize(be, ledger, 2, 6);
    m.init_adapters(3);
    randomise(m, be, 11, 0.5);
    const double err = model_gradcheck(m, be, MicroBatch{}, "vera");
    qInfo("whole model, VeRA with dropout: worst relative error %.3e", err);
    QVERIFY2(err < kModelTol, qPrintable(QString::number(err)));
  }

  // One vera_A and one vera_B for the whole model, sized by the largest
  // in and out over the targets: every module sees the same memory, the
  // ledger has one entry each, the adapter one key each, and only the
  // vectors train (out + r per module).
  void projections_are_shared_once() {
    const ModelConfig mc = micro_config();
    const AdapterConfig ac = vera_config(4);
    MemoryLedger ledger;
    Model m(mc, Model::Mode::Frozen, DType::F32);
    attach_adapters(m, ac);
    m.materialize(be, ledger, 2, 6);
    m.init_adapters(0);
    const LinearShape extent = adapted_extent(ac, mc);
    QCOMPARE(extent.in, mc.intermediate);
    QCOMPARE(extent.out, mc.intermediate);
    const auto& first = dynamic_cast<const VeraLinear&>(m.linear(0, Target::Q));
    std::int64_t vectors = 0;
    int reporting = 0;
    for (int l = 0; l < mc.layers; ++l)
      for (Target t : kAllTargets) {
        const auto& v = dynamic_cast<const VeraLinear&>(m.linear(l, t));
        QCOMPARE(v.vera_A().raw(), first.vera_A().raw());
        QCOMPARE(v.vera_B().raw(), first.vera_B().raw());
        vectors += v.out() + ac.r;
        for (const AdapterTensorRef& a : v.adapter_tensors()) reporting += a.model_level;
      }
    QCOMPARE(reporting, 2);
    QCOMPARE(first.vera_A().shape, (Shape{4, extent.in}));
    QCOMPARE(first.vera_B().shape, (Shape{extent.out, 4}));
    QCOMPARE(m.trainable_count(), vectors);
    QCOMPARE(ac.trainable_params(mc), vectors);
    int entries = 0;
    for (const LedgerEntry& e : ledger.entries())
      if (e.module == "vera_A" || e.module == "vera_B") {
        QCOMPARE(e.layer, kModelLevel);
        QCOMPARE(e.category, MemCategory::FrozenWeights);
        ++entries;
      }
    QCOMPARE(entries, 2);
    const AdapterState s = extract_adapter(m, ac, "micro", "");
    QVERIFY(s.tensors.contains(model_level_key("vera_A")) && s.tensors.contains(model_level_key("vera_B")));
    QCOMPARE(s.tensors.size(), std::size_t(2 * mc.layers * kTargetCount + 2));
    QVERIFY(adapter_mismatches(s, mc).empty());
  }

  // λ_b = 0 and λ_d = d_initial: the model starts at its base; the
  // projections are the key's draws (float32 values, as PEFT's).
  void init_starts_at_the_base_with_the_keys_projections() {
    const MicroBatch mb;
    MemoryLedger ledger;
    const std::vector<double> base = base_micro_logits(be, ledger, mb, 5);
    AdapterConfig ac = vera_config(4);
    ac.set_option("vera.d_initial", 0.05);
    Model m(micro_config(), Model::Mode::Frozen, DType::F32);
    attach_adapters(m, ac);
    m.materialize(be, ledger, mb.B, mb.T);
    m.init_base_weights(5);
    m.init_adapters(9);
    QCOMPARE(relative_diff(micro_logits(m, be, mb), base), 0.0);
    const auto& v = dynamic_cast<const VeraLinear&>(m.linear(1, Target::Down));
    for (double d : download_values(be, v.lambda_d)) QCOMPARE(d, static_cast<double>(0.05f));
    const VeraProjections p = vera_projections(77, 4, micro_config().intermediate, micro_config().intermediate);
    const std::vector<double> a = download_values(be, v.vera_A());
    QCOMPARE(a.size(), p.A.size());
    for (std::size_t i = 0; i < a.size(); ++i) QCOMPARE(a[i], static_cast<double>(static_cast<float>(p.A[i])));
    // kaiming-uniform bounds: sqrt(6 / fan_in) with fan_in = max_in for A, r for B.
    const double bound_a = std::sqrt(6.0 / micro_config().intermediate), bound_b = std::sqrt(6.0 / 4);
    double max_a = 0, max_b = 0;
    for (double x : p.A) max_a = std::max(max_a, std::abs(x));
    for (double x : p.B) max_b = std::max(max_b, std::abs(x));
    QVERIFY(max_a <= bound_a && max_a > 0.8 * bound_a && max_b <= bound_b && max_b > 0.8 * bound_b);
    // The same key, the same draws; another key, others.
    QVERIFY(vera_projections(77, 4, 24, 24).A == p.A);
    QVERIFY(vera_projections(78, 4, 24, 24).A != p.A);
  }

  // W + diag(λ_b) B diag(λ_d) A in the base gives the adapted model's
  // logits; unmerging restores the base.
  void merge_matches_the_adapter_path() {
    const MicroBatch mb;
    MemoryLedger ledger;
    Model m(micro_config(), Model::Mode::Frozen, DType::F64);
    attach_adapters(m, vera_config(4));
    m.materialize(be, ledger, mb.B, mb.T);
    m.init_adapters(1);
    randomise(m, be, 21, 0.5);
    const std::vector<double> adapted = micro_logits(m, be, mb);
    Model base(micro_config(), Model::Mode::Frozen, DType::F64);
    base.materialize(be, ledger, mb.B, mb.T);
    base.init_base_weights(21);
    const double moved = relative_diff(adapted, micro_logits(base, be, mb));
    QVERIFY2(moved > 1e-2, qPrintable(QString::number(moved)));

    Model merged(micro_config(), Model::Mode::Frozen, DType::F64);
    merged.materialize(be, ledger, mb.B, mb.T);
    merge_adapter_into_base(m, extract_adapter(m, vera_config(4), "micro", ""), merged);
    const double d = relative_diff(micro_logits(merged, be, mb), adapted);
    qInfo("VeRA merged into the base vs the adapter path (F64): %.3e (the adapter moved the logits %.3e)", d, moved);
    // The adapter state holds float32 values.
    QVERIFY2(d < 1e-6, qPrintable(QString::number(d)));

    merge_adapters(m, 1.0);
    merge_adapters(m, -1.0);
    QVERIFY(relative_diff(micro_logits(m, be, mb), adapted) < 1e-12);
  }

  // PEFT's folder both ways: config fields and tensors round-trip; with
  // save_projection false the file holds only the vectors, and reading it
  // against the base draws the projections again, identical to the saved ones.
  void peft_folder_round_trip() {
    const ModelConfig mc = micro_config();
    MemoryLedger ledger;
    AdapterConfig ac = vera_config(4, 0.1);
    ac.set_option("vera.d_initial", 0.2);
    Model m(mc, Model::Mode::Frozen, DType::F32);
    attach_adapters(m, ac);
    m.materialize(be, ledger, 1, 1);
    m.init_adapters(0);
    randomise(m, be, 3, 0.5);
    const AdapterState s = extract_adapter(m, ac, "micro", "fp");

    QTemporaryDir dir;
    const std::filesystem::path with = dir.filePath("with").toStdString();
    io::write_peft_folder(with, s);
    const nlohmann::json j = nlohmann::json::parse(io::peft_config_json(s));
    QCOMPARE(j["peft_type"].get<std::string>(), std::string("VERA"));
    QCOMPARE(j["projection_prng_key"].get<int>(), 77);
    QCOMPARE(j["save_projection"].get<bool>(), true);
    QCOMPARE(j["vera_dropout"].get<double>(), 0.1);
    QCOMPARE(j["d_initial"].get<double>(), 0.2);
    QVERIFY(!j.contains("lora_alpha"));
    const AdapterState back = io::read_peft_folder(with, &mc);
    QCOMPARE(back.config.method, std::string("vera"));
    QCOMPARE(back.config.option("vera.projection_prng_key"), 77.0);
    QCOMPARE(back.config.option("vera.d_initial"), 0.2);
    QCOMPARE(back.config.dropout, 0.1);
    QCOMPARE(back.tensors.size(), s.tensors.size());
    for (const auto& [key, t] : s.tensors) QVERIFY2(back.tensors.at(key).values == t.values, key.c_str());

    AdapterState lean = s;
    lean.config.set_option("vera.save_projection", 0);
    const std::filesystem::path without = dir.filePath("without").toStdString();
    io::write_peft_folder(without, lean);
    const io::SafetensorsFile file = io::SafetensorsFile::open(without / "adapter_model.safetensors");
    QVERIFY(!file.find(model_level_key("vera_A")) && !file.find(model_level_key("vera_B")));
    QCOMPARE(file.tensors().size(), s.tensors.size() - 2);
    const AdapterState drawn = io::read_peft_folder(without, &mc);
    for (const auto& [key, t] : s.tensors) QVERIFY2(drawn.tensors.at(key).values == t.values, key.c_str());
    // Without the base (and no model shape in the file) the projections'
    // size is unknown: refused, saying what to do.
    AdapterState shapeless = lean;
    shapeless.model.layers = 0;
    const std::filesystem::path bare = dir.filePath("bare").toStdString();
    io::write_peft_folder(bare, shapeless);
    try {
      io::read_peft_folder(bare);
      QFAIL("a VeRA file without projections read without its base");
    } catch (const FormatError& e) {
      QVERIFY2(std::string(e.what()).find("projection_prng_key") != std::string::npos, e.what());
    }
    // save_projection true but no projections in the file: PEFT refuses it too.
    const std::filesystem::path broken = dir.filePath("broken").toStdString();
    std::filesystem::create_directories(broken);
    std::filesystem::copy_file(without / "adapter_model.safetensors", broken / "adapter_model.safetensors");
    std::ofstream(broken / "adapter_config.json") << io::peft_config_json(s);
    QVERIFY_THROWS_EXCEPTION(FormatError, io::read_peft_folder(broken, &mc));
  }

  // PEFT's default r = 256 exceeds small models' k and v projections; VeRA's
  // shared projections make any r a real shape, so such an adapter trains,
  // checks its gradient and is accepted against its base, where LoRA's same
  // rank is refused.
  void rank_beyond_a_targets_shape() {
    const ModelConfig mc = micro_config();
    const int r = 20;  // above every micro target's min(in, out) (8 for k and v, 16 for the rest)
    vera_config(r).validate(mc);
    AdapterConfig lora = vera_config(r);
    lora.method = "lora";
    QVERIFY_THROWS_EXCEPTION(ConfigError, lora.validate(mc));
    MemoryLedger ledger;
    Model m(mc, Model::Mode::Frozen, DType::F64);
    attach_adapters(m, vera_config(r));
    m.materialize(be, ledger, 2, 6);
    m.init_adapters(3);
    randomise(m, be, 13, 0.5);
    const double err = model_gradcheck(m, be, MicroBatch{}, "vera r > min(in, out)");
    qInfo("VeRA r = %d on micro: worst relative error %.3e", r, err);
    QVERIFY2(err < kModelTol, qPrintable(QString::number(err)));
    const AdapterState s = extract_adapter(m, vera_config(r), "micro", "");
    const std::vector<std::string> problems = adapter_mismatches(s, mc);
    QVERIFY2(problems.empty(), problems.empty() ? "" : problems.front().c_str());
  }

  void descriptor_declares_its_form_checks_and_arm() {
    int fields = 0;
    for (const AdapterField& f : adapter_fields()) {
      if (!f.key.starts_with("adapter.vera.")) continue;
      AdapterConfig c = vera_config();
      QVERIFY(f.applies(c));
      QVERIFY2(f.help.size() >= 40, f.key.c_str());
      c.method = "lora";
      QVERIFY(!f.applies(c));
      ++fields;
    }
    QCOMPARE(fields, 3);
    // The shared settings VeRA has no use for are not offered.
    for (const AdapterField& f : adapter_fields())
      if (f.key == "adapter.alpha" || f.key == "adapter.init" || f.key == "adapter.use_rslora")
        QVERIFY2(!f.applies(vera_config()), f.key.c_str());
    AdapterConfig c = vera_config();
    c.set_option("vera.d_initial", 0);
    QVERIFY_THROWS_EXCEPTION(ConfigError, c.validate(micro_config()));
    c = vera_config();
    c.set_option("vera.projection_prng_key", -1);
    QVERIFY_THROWS_EXCEPTION(ConfigError, c.validate(micro_config()));
    QCOMPARE(c.scaling(), 1.0);  // no alpha: λ_b and λ_d carry the scale
    vera_config().check_bf16_frozen();
    const VariantDescriptor& v = vera_config().variant();
    QVERIFY(v.caps.resumable && v.caps.bf16_base && !v.caps.composable);
    QCOMPARE(v.compare_arms.size(), std::size_t(1));
    QCOMPARE(v.compare_arms[0].lr_factor, 10.0);
    QVERIFY(v.compare_arms[0].lr_note.find("2310.11454") != std::string::npos);
  }
};

QTEST_APPLESS_MAIN(TestVera)
#include "test_vera.moc"
