// PiSSA in PEFT's unconverted form, both ways, against PEFT itself
// (tests/reference/make_pissa_unconverted_golden.py): a folder PEFT saved
// without path_initial_model_for_weight_conversion (init_lora_weights
// "pissa", A and B relative to the residual base) read onto the ORIGINAL base
// gives the logits of PEFT's own from_pretrained; our unconverted export reads
// back the same way and, with the residual base beside it, is a plain LoRA of
// that residual; "pissa_niter_K" is refused saying why; nothing applies an
// unconverted folder to a base as a plain LoRA.
#include <QTemporaryDir>
#include <QtTest>

#include <cmath>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/adapters/adapter_state.h"
#include "core/common/errors.h"
#include "core/format/safetensors.h"
#include "core/io/peft.h"
#include "core/model/weights_init.h"
#include "core/store/adapter_transfer.h"
#include "core/store/store.h"
#include "model_fixtures.h"

using namespace lwb;
using test::relative_diff;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

const fs::path kGolden = fs::path(LWB_TEST_DATA_DIR) / "reference" / "pissa_unconverted";
// PEFT's float64 logits vs the engine's: the base and adapter are float32
// (as PEFT holds them), the residual comes from our double SVD of the same
// float32 W (PEFT's is float32) and the merge runs in fp32, so agreement is
// to fp32 rounding; measured 1.2e-6.
constexpr double kVsPeft = 1e-5;

std::string read_text(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

struct Golden {
  std::vector<std::int32_t> inputs, targets;
  std::int64_t B = 0, T = 0;
  std::vector<double> logits;
  Golden() {
    const io::SafetensorsFile f = io::SafetensorsFile::open(kGolden / "logits.safetensors");
    const io::StTensorInfo& ids = f.at("input_ids");
    B = ids.shape[0];
    T = ids.shape[1];
    std::vector<std::int64_t> raw(static_cast<std::size_t>(B * T));
    std::memcpy(raw.data(), f.bytes(ids).data(), raw.size() * sizeof(std::int64_t));
    for (std::int64_t v : raw) inputs.push_back(static_cast<std::int32_t>(v));
    targets.assign(inputs.size(), -1);
    const io::StTensorInfo& l = f.at("logits");
    logits.resize(static_cast<std::size_t>(l.numel()));
    std::memcpy(logits.data(), f.bytes(l).data(), logits.size() * sizeof(double));
  }
};

// The logits of `base` with `adapter` merged in (fp32 merge, F64 forward).
std::vector<double> adapted_logits(const Model& base, const AdapterState& adapter, const Golden& g) {
  Backend& be = base.backend();
  MemoryLedger ledger;
  Model merged(base.config(), Model::Mode::Frozen, DType::F64);
  merged.materialize(be, ledger, g.B, g.T);
  merge_adapter_into_base(base, adapter, merged);
  merged.set_batch(g.inputs.data(), g.targets.data(), g.B, g.T);
  merged.forward(false, 0);
  return download_values(be, merged.logits());
}

std::vector<float> file_tensor(const fs::path& folder, const std::string& key) {
  return io::SafetensorsFile::open(folder / "adapter_model.safetensors").read_f32(key);
}

}  // namespace

class TestPissaPeft : public QObject {
  Q_OBJECT
  const Golden golden_;
  SourceEnvironment env_;
  LoadedBase base_;
  QTemporaryDir tmp_;

 private slots:
  void initTestCase() {
    QVERIFY(tmp_.isValid());
    env_.data_dir = tmp_.path().toStdString();
    load_base((kGolden / "base").string(), env_, base_);
  }

  // PEFT's folder is read as PiSSA (rank 4, exact SVD), marked as relative to
  // the residual, and refused as it is by everything that applies adapters.
  void unconverted_folder_is_refused_as_it_is() {
    const AdapterState s = io::read_peft_folder(kGolden / "adapter", &base_.model->config());
    QCOMPARE(s.config.method, std::string("pissa"));
    QCOMPARE(s.config.r, 4);
    QCOMPARE(s.config.option("pissa.randomized"), 0.0);
    QVERIFY(s.needs_original_base);
    try {
      check_adapter_fits(s, base_.model->config(), "golden");
      QFAIL("an unconverted PiSSA adapter was accepted as it is");
    } catch (const FormatError& e) {
      const std::string what = e.what();
      QVERIFY2(what.find("PiSSA") != std::string::npos && what.find("import") != std::string::npos, e.what());
    }
  }

  // Rewritten against the original base's own SVD it is the converted rank-2r
  // LoRA, and the original base with it gives PEFT's logits.
  void unconverted_folder_gives_peefts_logits_on_the_original_base() {
    AdapterState s = io::read_peft_folder(kGolden / "adapter", &base_.model->config());
    to_kept_form(s, *base_.model, "golden");
    QVERIFY(!s.needs_original_base);
    QCOMPARE(s.config.method, std::string("lora"));
    QCOMPARE(s.config.r, 8);
    QCOMPARE(s.config.alpha, 16.0);
    QVERIFY(s.trained_as);
    QCOMPARE(s.trained_as->method, std::string("pissa"));
    const double d = relative_diff(adapted_logits(*base_.model, s, golden_), golden_.logits);
    qInfo("unconverted PiSSA folder from PEFT on the original base vs PeftModel.from_pretrained: %.3e", d);
    QVERIFY2(d < kVsPeft, qPrintable(QString::number(d)));
  }

  // Through the library: import, then the unconverted export gives back
  // PEFT's A and B bit for bit with its config, and reads back to the same
  // logits; with the residual base, the adapter is a plain LoRA of it.
  void library_import_and_unconverted_export_round_trip() {
    const fs::path root = tmp_.path().toStdString();
    Store store(root / "store.sqlite3");
    const std::int64_t id =
        import_adapter_peft(store, kGolden / "adapter", "pissa-peft", (kGolden / "base").string(), "", env_);
    const AdapterState kept = store.load_adapter(id);
    QCOMPARE(kept.config.r, 8);
    QVERIFY(kept.trained_as);
    QCOMPARE(kept.trained_as->method, std::string("pissa"));
    const std::vector<double> via_library = adapted_logits(*base_.model, kept, golden_);
    QVERIFY(relative_diff(via_library, golden_.logits) < kVsPeft);

    const fs::path out = root / "unconverted";
    export_adapter_unconverted(store, id, out, UnconvertedExport{}, env_);
    const json config = json::parse(read_text(out / "adapter_config.json"));
    QCOMPARE(config["init_lora_weights"].get<std::string>(), std::string("pissa"));
    QCOMPARE(config["r"].get<int>(), 4);
    QCOMPARE(config["lora_alpha"].get<double>(), 8.0);
    QCOMPARE(config["peft_type"].get<std::string>(), std::string("LORA"));
    for (const char* key : {"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight",
                            "base_model.model.model.layers.1.mlp.down_proj.lora_B.weight"})
      QCOMPARE(file_tensor(out, key), file_tensor(kGolden / "adapter", key));

    AdapterState back = io::read_peft_folder(out, &base_.model->config());
    QVERIFY(back.needs_original_base);
    to_kept_form(back, *base_.model, out.string());
    const double d = relative_diff(adapted_logits(*base_.model, back, golden_), via_library);
    qInfo("our unconverted export read back vs the imported adapter: %.3e", d);
    QVERIFY2(d < 1e-12, qPrintable(QString::number(d)));

    // The residual base and its plain LoRA, as PEFT's example saves them.
    UnconvertedExport with_residual;
    with_residual.residual_dir = root / "residual";
    export_adapter_unconverted(store, id, root / "on-residual", with_residual, env_);
    const json plain = json::parse(read_text(root / "on-residual" / "adapter_config.json"));
    QVERIFY(plain["init_lora_weights"].get<bool>());
    QCOMPARE(plain["r"].get<int>(), 4);
    QCOMPARE(plain["base_model_name_or_path"].get<std::string>(), fs::absolute(root / "residual").string());
    LoadedBase residual;
    load_base((root / "residual").string(), env_, residual);
    const AdapterState on_residual = io::read_peft_folder(root / "on-residual", &residual.model->config());
    QVERIFY(!on_residual.needs_original_base);
    QCOMPARE(on_residual.config.method, std::string("lora"));
    const double r = relative_diff(adapted_logits(*residual.model, on_residual, golden_), golden_.logits);
    qInfo("residual base + its plain LoRA vs PEFT's logits: %.3e", r);
    QVERIFY2(r < kVsPeft, qPrintable(QString::number(r)));

    // An adapter without an unconverted form says so.
    AdapterState lora = io::read_peft_folder(root / "on-residual");
    const std::int64_t plain_id = store.save_adapter("plain", std::nullopt, lora, "", NAN, NAN);
    try {
      export_adapter_unconverted(store, plain_id, root / "nothing", UnconvertedExport{}, env_);
      QFAIL("a plain LoRA was exported in an unconverted form");
    } catch (const ConfigError& e) {
      QVERIFY2(std::string(e.what()).find("unconverted form") != std::string::npos, e.what());
    }
    QVERIFY(!fs::exists(root / "nothing" / "adapter_config.json"));
  }

  // "pissa_niter_K": read and written as such, but its residual came from a
  // randomized SVD, so it is refused onto the original base, saying why and
  // what to do instead.
  void randomized_form_is_refused_onto_the_original_base() {
    const fs::path dir = fs::path(tmp_.path().toStdString()) / "niter";
    fs::create_directories(dir);
    json config = json::parse(read_text(kGolden / "adapter" / "adapter_config.json"));
    config["init_lora_weights"] = "pissa_niter_4";
    std::ofstream(dir / "adapter_config.json") << config.dump();
    fs::copy_file(kGolden / "adapter" / "adapter_model.safetensors", dir / "adapter_model.safetensors");
    AdapterState s = io::read_peft_folder(dir, &base_.model->config());
    QCOMPARE(s.config.option("pissa.randomized"), 1.0);
    QCOMPARE(s.config.option("pissa.niter"), 4.0);
    QCOMPARE(json::parse(io::peft_config_json(s))["init_lora_weights"].get<std::string>(),
             std::string("pissa_niter_4"));
    try {
      to_kept_form(s, *base_.model, dir.string());
      QFAIL("a pissa_niter_K adapter was applied to the original base");
    } catch (const FormatError& e) {
      const std::string what = e.what();
      QVERIFY2(what.find("randomized SVD") != std::string::npos &&
                   what.find("path_initial_model_for_weight_conversion") != std::string::npos &&
                   what.find("residual model") != std::string::npos,
               e.what());
    }

    config["init_lora_weights"] = "pissa_niter_x";
    std::ofstream(dir / "adapter_config.json") << config.dump();
    QVERIFY_THROWS_EXCEPTION(FormatError, io::read_peft_folder(dir, &base_.model->config()));
  }
};

QTEST_GUILESS_MAIN(TestPissaPeft)
#include "test_pissa_peft.moc"
