// PEFT adapter folders: round trips of every method through the files and
// back into a fresh model (same tensors, same logits), AdaLoRA's sliced
// tensors and rank_pattern, a folder written the way PEFT writes it (F16,
// adapter-name segments), one message per mismatch, refused config fields,
// and the SVD re-factoring used for ReLoRA and merged exports.
#include <QTemporaryDir>
#include <QtTest>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>

#include "core/adapters/adalora.h"
#include "core/adapters/adapter_state.h"
#include "core/adapters/attach.h"
#include "core/adapters/numerical_rank.h"
#include "core/common/errors.h"
#include "core/common/half.h"
#include "core/cpu/cpu_backend.h"
#include "core/io/hf_checkpoint.h"
#include "core/io/peft.h"
#include "core/format/safetensors.h"
#include "core/model/checkpoint.h"
#include "core/model/weights_init.h"
#include "io_fixtures.h"
#include "model_fixtures.h"

using namespace lwb;
using namespace lwb::test;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

std::unique_ptr<Built> build(Backend& be, const AdapterConfig& ac, const ModelConfig& mc = micro_config()) {
  auto b = std::make_unique<Built>();
  b->model = std::make_unique<Model>(mc, model_mode_for(ac), DType::F32);
  attach_adapters(*b->model, ac);
  b->model->materialize(be, b->ledger, 2, 6);
  return b;
}

// New random values for the adapter parameters only.
void randomise_adapters(Model& m, Backend& be, std::uint64_t seed) {
  const TensorArena& params = m.trainable().params();
  for (std::size_t i = 0; i < params.entries().size(); ++i) {
    const Tensor t = params.slot_tensor(i);
    upload_values(be, t, normal_values(t.numel(), 0.3, seed + i));
  }
}

AdapterConfig adapter(const std::string& method, bool rslora = false) {
  AdapterConfig ac;
  ac.method = method;
  ac.r = 4;
  ac.alpha = 8;
  ac.use_rslora = rslora;
  ac.targets = {Target::Q, Target::V, Target::Down};
  ac.set_option("adalora.target_r", 2);
  return ac;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// Masks that keep a different subset per module, including none and all.
std::map<std::string, std::vector<bool>> varied_rank_pattern(const Model& m, const AdapterConfig& ac) {
  std::map<std::string, std::vector<bool>> pattern;
  int i = 0;
  for (int l = 0; l < m.config().layers; ++l)
    for (Target t : ac.targets) {
      std::vector<bool> keep(ac.r);
      for (int j = 0; j < ac.r; ++j) keep[j] = i == 1 ? false : i == 2 ? true : (i + j) % 3 != 0;
      pattern[module_hf_name(l, t)] = keep;
      ++i;
    }
  return pattern;
}

// What the allocator does to a masked triplet: E_i = 0.
void apply_mask(Model& m, Backend& be, const std::map<std::string, std::vector<bool>>& pattern) {
  for (const auto& [module, keep] : pattern) {
    const std::optional<ModuleId> id = parse_module_hf_name(module);
    auto& ada = dynamic_cast<AdaLoraLinear&>(m.linear(id->layer, id->target));
    std::vector<double> e = download_values(be, ada.lora_E);
    for (std::size_t j = 0; j < keep.size(); ++j)
      if (!keep[j]) e[j] = 0;
    upload_values(be, ada.lora_E, e);
  }
}

// A valid LoRA folder on the micro model, for tests that break one thing.
AdapterState lora_state(Backend& be) {
  AdapterConfig ac = adapter("lora");
  ac.r = 2;
  ac.targets = {Target::Q, Target::V};
  auto b = build(be, ac);
  randomise(*b->model, be, 41);
  return extract_adapter(*b->model, ac, "lora-workbench/micro", base_fingerprint(*b->model));
}

}  // namespace

class TestPeft : public QObject {
  Q_OBJECT
  CpuBackend be;

  // Writes lora_state's PEFT folder into `dir`; returns its config to edit.
  json lora_folder_config(const fs::path& dir) {
    io::write_peft_folder(dir, lora_state(be));
    return json::parse(read_text(dir / "adapter_config.json"));
  }

 private slots:
  void round_trip_data() {
    QTest::addColumn<QString>("method");
    QTest::addColumn<bool>("rslora");
    QTest::newRow("lora") << QString("lora") << false;
    QTest::newRow("rslora") << QString("lora") << true;
    QTest::newRow("dora") << QString("dora") << false;
    QTest::newRow("adalora") << QString("adalora") << false;
    QTest::newRow("relora") << QString("relora") << false;
  }
  void round_trip() {
    QFETCH(QString, method);
    QFETCH(bool, rslora);
    const std::string meth = method.toStdString();
    const AdapterConfig ac = adapter(meth, rslora);
    const MicroBatch mb;
    QTemporaryDir tmp;
    const fs::path dir = tmp.path().toStdString();

    auto src = build(be, ac);
    randomise(*src->model, be, 11);
    std::map<std::string, std::vector<bool>> pattern;
    if (meth == "adalora") {
      pattern = varied_rank_pattern(*src->model, ac);
      apply_mask(*src->model, be, pattern);
    }
    const std::vector<double> want = micro_logits(*src->model, be, mb);
    const AdapterState state =
        extract_adapter(*src->model, ac, "lora-workbench/micro", base_fingerprint(*src->model), pattern, 120);
    io::write_peft_folder(dir, state);
    const AdapterState back = io::read_peft_folder(dir);

    QCOMPARE(back.config.method, meth);
    QCOMPARE(back.config.r, ac.r);
    QCOMPARE(back.config.alpha, ac.alpha);
    QCOMPARE(back.config.use_rslora, rslora);
    QVERIFY(back.config.targets == ac.targets);
    QCOMPARE(back.base_model, state.base_model);
    QCOMPARE(back.base_fingerprint, state.base_fingerprint);
    QVERIFY(back.model == micro_config());
    QVERIFY(back.rank_pattern == pattern);
    QCOMPARE(back.tensors.size(), state.tensors.size());
    for (const auto& [key, t] : state.tensors) {
      const auto it = back.tensors.find(key);
      QVERIFY2(it != back.tensors.end(), key.c_str());
      QVERIFY2(it->second.shape == t.shape, key.c_str());
      std::vector<float> expect = t.values;
      // A masked triplet's A row and B column are not saved; they come back as zeros.
      for (const auto& [module, keep] : pattern)
        for (int j = 0; j < ac.r; ++j) {
          if (keep[j]) continue;
          if (key == peft_key(module, "lora_A")) std::fill_n(expect.begin() + j * t.shape[1], t.shape[1], 0.0f);
          if (key == peft_key(module, "lora_B"))
            for (std::int64_t r = 0; r < t.shape[0]; ++r) expect[r * ac.r + j] = 0.0f;
        }
      QVERIFY2(same_bits(it->second.values, expect), key.c_str());
    }

    auto dst = build(be, back.config);
    dst->model->init_base_weights(11);  // the base randomise() drew
    load_adapter(*dst->model, back, dir.string());
    const std::vector<double> got = micro_logits(*dst->model, be, mb);
    const double rel = relative_diff(got, want);
    qInfo("%s: logits after the round trip differ by %.3e (relative)", QTest::currentDataTag(), rel);
    QVERIFY2(rel <= 1e-6, qPrintable(QString::number(rel)));

    const json cfg = json::parse(read_text(dir / "adapter_config.json"));
    QCOMPARE(cfg["peft_type"].get<std::string>(), std::string(meth == "adalora" ? "ADALORA" : "LORA"));
    QCOMPARE(cfg["use_dora"].get<bool>(), meth == "dora");
    QCOMPARE(cfg["use_rslora"].get<bool>(), rslora);
    QCOMPARE(cfg["target_modules"], json({"down_proj", "q_proj", "v_proj"}));
    QCOMPARE(cfg["task_type"].get<std::string>(), std::string("CAUSAL_LM"));
    QCOMPARE(cfg["bias"].get<std::string>(), std::string("none"));
    const io::SafetensorsFile st = io::SafetensorsFile::open(dir / "adapter_model.safetensors");
    QCOMPARE(st.metadata().at("format"), std::string("pt"));
    if (meth == "dora") {
      const std::string key = peft_key(module_hf_name(0, Target::Q), "lora_magnitude_vector");
      QVERIFY(st.find(key));
      QVERIFY(st.find(key)->shape == std::vector<std::int64_t>{16});
    }
    if (meth != "adalora") {
      QCOMPARE(cfg["r"].get<int>(), ac.r);
      return;
    }
    QCOMPARE(cfg["init_r"].get<int>(), ac.r);
    QCOMPARE(cfg["target_r"].get<int>(), 2);
    QCOMPARE(cfg["total_step"].get<int>(), 120);
    QCOMPARE(cfg["lora_alpha"].get<double>(), ac.alpha);
    for (const char* field : {"tinit", "tfinal", "deltaT", "beta1", "beta2", "orth_reg_weight"})
      QVERIFY2(cfg.contains(field), field);
    for (const auto& [module, keep] : pattern) {
      QCOMPARE(cfg["rank_pattern"][module + ".lora_E"], json(keep));
      const auto k = static_cast<std::int64_t>(std::count(keep.begin(), keep.end(), true));
      const LinearShape sh = linear_shape(micro_config(), parse_module_hf_name(module)->target);
      QVERIFY(st.at(peft_key(module, "lora_A")).shape == (std::vector<std::int64_t>{k, sh.in}));
      QVERIFY(st.at(peft_key(module, "lora_E")).shape == (std::vector<std::int64_t>{k, 1}));
      QVERIFY(st.at(peft_key(module, "lora_B")).shape == (std::vector<std::int64_t>{sh.out, k}));
    }
  }

  void peft_written_folder_imports_data() {
    QTest::addColumn<bool>("dora");
    QTest::newRow("lora") << false;
    QTest::newRow("dora") << true;
  }
  void peft_written_folder_imports() {
    QFETCH(bool, dora);
    QTemporaryDir tmp;
    const fs::path dir = tmp.path().toStdString();
    // As PEFT's save_pretrained writes it, fields and all.
    write_text(dir / "adapter_config.json", std::string(R"({
  "alpha_pattern": {},
  "auto_mapping": null,
  "base_model_name_or_path": "someone/micro-llama",
  "bias": "none",
  "corda_config": null,
  "eva_config": null,
  "exclude_modules": null,
  "fan_in_fan_out": false,
  "inference_mode": true,
  "init_lora_weights": true,
  "layer_replication": null,
  "layers_pattern": null,
  "layers_to_transform": null,
  "loftq_config": {},
  "lora_alpha": 4,
  "lora_bias": false,
  "lora_dropout": 0.05,
  "megatron_config": null,
  "megatron_core": "megatron.core",
  "modules_to_save": null,
  "peft_type": "LORA",
  "r": 2,
  "rank_pattern": {},
  "revision": null,
  "target_modules": ["v_proj", "q_proj"],
  "task_type": "CAUSAL_LM",
  "trainable_token_indices": null,
  "use_dora": )") + (dora ? "true" : "false") + R"(,
  "use_rslora": false
})");
    // F16 tensors; layer 1 keeps PEFT's in-memory names with the adapter name.
    std::vector<std::vector<std::uint16_t>> storage;
    std::vector<io::StTensorWrite> writes;
    std::map<std::string, std::vector<float>> expect;  // canonical key -> value
    std::uint64_t seed = 5;
    auto add = [&](const std::string& file_key, const std::string& key, std::vector<std::int64_t> shape) {
      std::int64_t n = 1;
      for (auto d : shape) n *= d;
      const std::vector<double> v = normal_values(n, 0.5, seed++);
      std::vector<std::uint16_t> bits;
      std::vector<float> value;
      for (double x : v) {
        bits.push_back(f32_to_f16(static_cast<float>(x)));
        value.push_back(f16_to_f32(bits.back()));
      }
      storage.push_back(std::move(bits));
      writes.push_back(
          {file_key, io::StDType::F16, shape, std::as_bytes(std::span<const std::uint16_t>(storage.back()))});
      expect[key] = value;
    };
    storage.reserve(16);
    for (int l = 0; l < 2; ++l)
      for (Target t : {Target::Q, Target::V}) {
        const std::string m = module_hf_name(l, t);
        const std::string name = l == 0 ? "" : ".default";
        const LinearShape sh = linear_shape(micro_config(), t);
        add(peft_key(m, "lora_A" + name + ".weight"), peft_key(m, "lora_A.weight"), {2, sh.in});
        add(peft_key(m, "lora_B" + name + ".weight"), peft_key(m, "lora_B.weight"), {sh.out, 2});
        if (dora)
          add(peft_key(m, "lora_magnitude_vector" + name + ".weight"), peft_key(m, "lora_magnitude_vector"),
              {sh.out});
      }
    io::write_safetensors(dir / "adapter_model.safetensors", std::move(writes), {{"format", "pt"}});

    const AdapterState s = io::read_peft_folder(dir);
    QCOMPARE(s.config.method, std::string(dora ? "dora" : "lora"));
    QCOMPARE(s.config.r, 2);
    QCOMPARE(s.config.alpha, 4.0);
    QCOMPARE(s.config.dropout, 0.05);
    QVERIFY(s.config.targets == (std::vector<Target>{Target::Q, Target::V}));
    QCOMPARE(s.base_model, std::string("someone/micro-llama"));
    QVERIFY(!s.model_known());  // PEFT writes no model shape
    QCOMPARE(s.tensors.size(), expect.size());
    for (const auto& [key, v] : expect) {
      QVERIFY2(s.tensors.contains(key), key.c_str());
      QVERIFY2(same_bits(s.tensors.at(key).values, v), key.c_str());
    }

    // Against a chosen base it is checked, takes the base's shape and loads.
    const ModelConfig micro = micro_config();
    const AdapterState fitted = io::read_peft_folder(dir, &micro);
    QVERIFY(fitted.model == micro);
    auto b = build(be, fitted.config);
    b->model->init_base_weights(3);
    load_adapter(*b->model, fitted, dir.string());
    ModelConfig small = micro;
    small.layers = 1;
    const std::string msg = format_error([&] { io::read_peft_folder(dir, &small); });
    QVERIFY2(QString::fromStdString(msg).contains("layer 1 but the model has 1 layers"), msg.c_str());
  }

  // tests/data/reference/<kind>.safetensors hold what transformers + PEFT
  // computed (see tests/reference/make_reference.py): the adapter under the
  // exact keys of get_peft_model_state_dict, the base under HF names, F64.
  // Written out as the two folders PEFT and transformers would save, they
  // import and reproduce PEFT's logits (F32 model; float32 round-off only).
  void peft_reference_folders_reproduce_peft_logits_data() {
    QTest::addColumn<QString>("kind");
    for (const char* kind : {"lora", "rslora", "dora", "adalora"}) QTest::newRow(kind) << kind;
  }
  void peft_reference_folders_reproduce_peft_logits() {
    QFETCH(QString, kind);
    const io::SafetensorsFile ref = io::SafetensorsFile::open(std::string(LWB_TEST_DATA_DIR) + "/reference/" +
                                                              kind.toStdString() + ".safetensors");
    const json info = json::parse(ref.metadata().at("config"));
    QTemporaryDir tmp;
    const fs::path base_dir = fs::path(tmp.path().toStdString()) / "base";
    const fs::path adapter_dir = fs::path(tmp.path().toStdString()) / "adapter";
    fs::create_directories(base_dir);
    fs::create_directories(adapter_dir);

    json model = info["model"];
    model["model_type"] = "llama";
    model["architectures"] = {"LlamaForCausalLM"};
    write_text(base_dir / "config.json", model.dump());
    json cfg = {{"task_type", "CAUSAL_LM"},
                {"target_modules", info["targets"]},
                {"lora_dropout", 0.0},
                {"bias", "none"},
                {"fan_in_fan_out", false},
                {"modules_to_save", nullptr},
                {"layers_to_transform", nullptr},
                {"alpha_pattern", json::object()},
                {"init_lora_weights", true},
                {"inference_mode", true},
                {"base_model_name_or_path", "tiny-llama-f64"}};
    for (const auto& [k, v] : info["adapter"].items())
      if (k != "scaling") cfg[k] = v;
    cfg["peft_type"] = kind == "adalora" ? "ADALORA" : "LORA";
    cfg["rank_pattern"] = kind == "adalora" ? json(nullptr) : json::object();
    write_text(adapter_dir / "adapter_config.json", cfg.dump(2));
    std::vector<io::StTensorWrite> base, adapter;
    for (const io::StTensorInfo& t : ref.tensors()) {
      const io::StTensorWrite w{t.name, t.dtype, t.shape, ref.bytes(t)};
      if (t.name.starts_with("model.") || t.name.starts_with("lm_head.")) base.push_back(w);
      if (t.name.starts_with("base_model.")) adapter.push_back(w);
    }
    io::write_safetensors(base_dir / "model.safetensors", base, {{"format", "pt"}});
    io::write_safetensors(adapter_dir / "adapter_model.safetensors", adapter, {{"format", "pt"}});

    const ModelConfig mc = io::read_hf_config(base_dir);
    const AdapterState s = io::read_peft_folder(adapter_dir, &mc);
    QCOMPARE(s.tensors.size(), adapter.size());
    Built b;
    b.model = std::make_unique<Model>(mc, model_mode_for(s.config), DType::F32);
    attach_adapters(*b.model, s.config);
    const std::int64_t B = info["batch"][0], T = info["batch"][1];
    b.model->materialize(be, b.ledger, B, T);
    io::import_hf_weights(*b.model, base_dir);
    load_adapter(*b.model, s, adapter_dir.string());

    const io::StTensorInfo& ids_info = ref.at("input_ids");
    std::vector<std::int64_t> ids(static_cast<std::size_t>(ids_info.numel()));
    std::memcpy(ids.data(), ref.bytes(ids_info).data(), ids.size() * sizeof(std::int64_t));
    const std::vector<std::int32_t> inputs(ids.begin(), ids.end()), targets(ids.size(), -1);
    b.model->set_batch(inputs.data(), targets.data(), B, T);
    b.model->forward(false, 0);
    const std::vector<double> got = download_values(be, b.model->logits());
    const io::StTensorInfo& logits_info = ref.at("logits");
    std::vector<double> want(static_cast<std::size_t>(logits_info.numel()));
    std::memcpy(want.data(), ref.bytes(logits_info).data(), want.size() * sizeof(double));
    const double rel = relative_diff(got, want);
    qInfo("%s: logits vs transformers + PEFT %.3e (relative)", qPrintable(kind), rel);
    QVERIFY2(rel <= 1e-4, qPrintable(QString::number(rel)));
  }

  void mismatches_are_listed_with_file_and_key() {
    AdapterState s = lora_state(be);
    const std::string q0a = peft_key(module_hf_name(0, Target::Q), "lora_A.weight");
    const std::string v1b = peft_key(module_hf_name(1, Target::V), "lora_B.weight");
    const std::string k0a = peft_key(module_hf_name(0, Target::K), "lora_A.weight");
    const std::string q5a = peft_key(module_hf_name(5, Target::Q), "lora_A.weight");
    s.tensors[q0a] = HostTensor{{2, 8}, std::vector<float>(16, 0.5f)};
    s.tensors.erase(v1b);
    s.tensors[k0a] = HostTensor{{2, 16}, std::vector<float>(32, 0.5f)};
    s.tensors[q5a] = HostTensor{{2, 16}, std::vector<float>(32, 0.5f)};

    const std::vector<std::string> problems = adapter_mismatches(s, micro_config());
    QCOMPARE(problems.size(), std::size_t(4));

    QTemporaryDir tmp;
    const fs::path dir = tmp.path().toStdString();
    io::write_peft_folder(dir, s);
    const ModelConfig micro = micro_config();
    const QString msg = QString::fromStdString(format_error([&] { io::read_peft_folder(dir, &micro); }));
    qInfo("%s", qPrintable(msg));
    QVERIFY2(msg.contains("adapter_model.safetensors"), qPrintable(msg));
    QVERIFY2(msg.contains(QString::fromStdString("\"" + q0a + "\" has shape [2, 8] vs expected [2, 16]")),
             qPrintable(msg));
    QVERIFY2(msg.contains(QString::fromStdString("missing tensor \"" + v1b + "\" (expected shape [8, 2])")),
             qPrintable(msg));
    QVERIFY2(msg.contains(QString::fromStdString("unexpected tensor \"" + k0a + "\"")), qPrintable(msg));
    QVERIFY2(msg.contains(QString::fromStdString("\"" + q5a + "\" is for layer 5 but the model has 2 layers")),
             qPrintable(msg));

    // A rank above min(in, out): k_proj of the micro model is [8 x 16].
    AdapterState big;
    big.config.r = 10;
    big.config.targets = {Target::K};
    for (int l = 0; l < 2; ++l) {
      const std::string m = module_hf_name(l, Target::K);
      big.tensors[peft_key(m, "lora_A.weight")] = HostTensor{{10, 16}, std::vector<float>(160)};
      big.tensors[peft_key(m, "lora_B.weight")] = HostTensor{{8, 10}, std::vector<float>(80)};
    }
    const std::vector<std::string> rank = adapter_mismatches(big, micro);
    QCOMPARE(rank.size(), std::size_t(1));
    QVERIFY2(rank[0].find("rank 10 exceeds min(in, out) = 8 of k_proj") != std::string::npos, rank[0].c_str());
    const QString fits =
        QString::fromStdString(format_error([&] { check_adapter_fits(big, micro, "my-adapter"); }));
    QVERIFY2(fits.startsWith("my-adapter: ") && fits.contains("rank 10"), qPrintable(fits));
    QVERIFY(adapter_mismatches(lora_state(be), micro).empty());
  }

  void unsupported_config_fields_are_refused_data() {
    QTest::addColumn<QString>("field");
    QTest::addColumn<QString>("value");
    QTest::addColumn<QString>("expect");
    QTest::newRow("peft_type") << "peft_type"
                               << R"("IA3")"
                               << "only LORA";
    QTest::newRow("regex targets") << "target_modules"
                                   << R"(".*\\.(q|v)_proj")"
                                   << "regular expression";
    QTest::newRow("unknown target") << "target_modules"
                                    << R"(["q_proj", "lm_head"])"
                                    << "lm_head";
    QTest::newRow("rank_pattern") << "rank_pattern"
                                  << R"({"model.layers.0.self_attn.q_proj": 4})"
                                  << "per-module ranks";
    QTest::newRow("alpha_pattern") << "alpha_pattern"
                                   << R"({"q_proj": 16})"
                                   << "per-module lora_alpha";
    QTest::newRow("fan_in_fan_out") << "fan_in_fan_out"
                                    << "true"
                                    << "expected false";
    QTest::newRow("bias") << "bias"
                          << R"("lora_only")"
                          << "only \"none\"";
    QTest::newRow("layers_to_transform") << "layers_to_transform"
                                         << "[0]"
                                         << "subset of layers";
    QTest::newRow("modules_to_save") << "modules_to_save"
                                     << R"(["lm_head"])"
                                     << "extra modules";
    QTest::newRow("pissa") << "init_lora_weights"
                           << R"("pissa_niter_4")"
                           << "changes the base weights";
    QTest::newRow("r type") << "r"
                            << R"("eight")"
                            << "must be an integer";
    // 2^32 + 8: read into an int it would wrap to 8.
    QTest::newRow("r out of range") << "r"
                                    << "4294967304"
                                    << "must be an integer from 1 to 2147483647, got 4294967304";
    QTest::newRow("r negative") << "r"
                                << "-8"
                                << "must be an integer from 1 to 2147483647, got -8";
  }
  void unsupported_config_fields_are_refused() {
    QFETCH(QString, field);
    QFETCH(QString, value);
    QFETCH(QString, expect);
    QTemporaryDir tmp;
    const fs::path dir = tmp.path().toStdString();
    json cfg = lora_folder_config(dir);
    cfg[field.toStdString()] = json::parse(value.toStdString());
    write_text(dir / "adapter_config.json", cfg.dump());
    const QString msg = QString::fromStdString(format_error([&] { io::read_peft_folder(dir); }));
    QVERIFY2(msg.startsWith(QString::fromStdString((dir / "adapter_config.json").string() + ": field \"" +
                                                   field.toStdString() + "\"")),
             qPrintable(msg));
    QVERIFY2(msg.contains(expect), qPrintable(msg));

    // The same through the store's blobs: the label names the source.
    const std::vector<std::uint8_t> weights = io::peft_safetensors_bytes(lora_state(be));
    const QString blob =
        QString::fromStdString(format_error([&] { io::read_peft_blobs(cfg.dump(), weights, "store adapter 3"); }));
    QVERIFY2(blob.startsWith("store adapter 3 (adapter_config.json): field"), qPrintable(blob));
  }

  // 100,000 levels of arrays in a field: parsed, a value nested that deep
  // overflows the stack when copied or quoted; refused before parsing.
  void deep_nesting_is_refused() {
    QTemporaryDir tmp;
    const fs::path dir = tmp.path().toStdString();
    std::string text = lora_folder_config(dir).dump();
    text.insert(text.size() - 1, R"(, "r_deep": )" + std::string(100000, '[') + std::string(100000, ']'));
    write_text(dir / "adapter_config.json", text);
    QCOMPARE(QString::fromStdString(format_error([&] { io::read_peft_folder(dir); })),
             QString::fromStdString((dir / "adapter_config.json").string() + ": JSON nested deeper than 64 levels"));
  }

  // A number beyond double's range (found by tests/fuzz/fuzz_peft_config):
  // nlohmann refuses it with out_of_range, not parse_error, which escaped the
  // reader; it is a FormatError naming the top-level field that holds it.
  void out_of_range_numbers_are_refused_naming_the_field_data() {
    QTest::addColumn<QString>("field");
    QTest::addColumn<QString>("value");
    QTest::newRow("lora_alpha") << "lora_alpha" << "1e400";
    QTest::newRow("negative r") << "r" << "-1E+999";
    QTest::newRow("nested in rank_pattern") << "rank_pattern" << R"({"q_proj": [1, 2e308]})";
  }
  void out_of_range_numbers_are_refused_naming_the_field() {
    QFETCH(QString, field);
    QFETCH(QString, value);
    QTemporaryDir tmp;
    const fs::path dir = tmp.path().toStdString();
    json cfg = lora_folder_config(dir);
    // json cannot hold the number itself: a placeholder is replaced in the text.
    cfg[field.toStdString()] = "VALUE";
    std::string text = cfg.dump();
    text.replace(text.find("\"VALUE\""), 7, value.toStdString());
    write_text(dir / "adapter_config.json", text);
    const QString msg = QString::fromStdString(format_error([&] { io::read_peft_folder(dir); }));
    QVERIFY2(msg.startsWith(QString::fromStdString((dir / "adapter_config.json").string() + ": field \"" +
                                                   field.toStdString() + "\" holds a number out of range")),
             qPrintable(msg));
  }

  // Weights whose lwb.method names a variant without a PEFT form (full
  // fine-tuning) beside a config without peft_type called that variant's
  // missing reader (std::bad_function_call; found by fuzz_peft_config).
  void a_method_without_peft_form_is_refused_naming_peft_type() {
    AdapterState full = lora_state(be);
    full.config.method = "full";
    const std::vector<std::uint8_t> weights = io::peft_safetensors_bytes(full);
    json cfg = json::parse(io::peft_config_json(lora_state(be)));
    cfg.erase("peft_type");
    const QString msg =
        QString::fromStdString(format_error([&] { io::read_peft_blobs(cfg.dump(), weights, "store adapter 3"); }));
    QVERIFY2(msg.startsWith("store adapter 3 (adapter_config.json): field \"peft_type\" is missing; only LORA"),
             qPrintable(msg));
  }

  void non_finite_weights_are_refused_naming_the_tensor() {
    QTemporaryDir tmp;
    const fs::path dir = tmp.path().toStdString();
    AdapterState s = lora_state(be);
    const std::string key = peft_key(module_hf_name(1, Target::V), "lora_B.weight");
    s.tensors.at(key).values[0] = NAN;
    s.tensors.at(key).values[3] = -INFINITY;
    io::write_peft_folder(dir, s);
    const ModelConfig micro = micro_config();
    const QString msg = QString::fromStdString(format_error([&] { io::read_peft_folder(dir, &micro); }));
    QVERIFY2(msg.contains("adapter_model.safetensors") &&
                 msg.contains(QString::fromStdString("tensor \"" + key + "\" holds 2 NaN or infinite value(s) of 16")),
             qPrintable(msg));
  }

  // The model config in a file's metadata is a claim: checked against a base,
  // the adapter is that base's (a claim of hidden 1e9 must not reach the store).
  void a_checked_adapter_belongs_to_the_base_not_to_its_metadata() {
    QTemporaryDir tmp;
    const fs::path dir = tmp.path().toStdString();
    AdapterState s = lora_state(be);
    s.model.hidden = 1000000000;
    io::write_peft_folder(dir, s);
    const ModelConfig micro = micro_config();
    const AdapterState back = io::read_peft_folder(dir, &micro);
    QVERIFY(back.model == micro);
  }

  // 30,000 stray tensors must not make a message of megabytes (a window
  // label or a terminal would have to show it).
  void long_mismatch_lists_are_cut() {
    AdapterState s = lora_state(be);
    for (int i = 0; i < 30000; ++i) s.tensors["stray." + std::to_string(i)] = HostTensor{{0}, {}};
    const std::string msg = format_error([&] { check_adapter_fits(s, micro_config(), "stray.safetensors"); });
    qInfo("message of %zu bytes for 30000 mismatches", msg.size());
    QVERIFY(msg.size() < 8000);
    QVERIFY2(msg.find("... and 29980 more") != std::string::npos, msg.c_str());
    const std::string huge(10 << 20, 'x');
    QVERIFY(FormatError("f", huge).what() != nullptr && std::string(FormatError("f", huge).what()).size() < 8000);
  }

  void pickled_weights_are_refused() {
    QTemporaryDir tmp;
    const fs::path dir = tmp.path().toStdString();
    io::write_peft_folder(dir, lora_state(be));
    fs::rename(dir / "adapter_model.safetensors", dir / "adapter_model.bin");
    const QString msg = QString::fromStdString(format_error([&] { io::read_peft_folder(dir); }));
    QVERIFY2(msg.contains("adapter_model.bin: only safetensors is supported; convert with"), qPrintable(msg));
  }

  void adalora_pattern_must_match_the_sliced_tensors() {
    const AdapterConfig ac = adapter("adalora");
    auto b = build(be, ac);
    randomise(*b->model, be, 2);
    const auto pattern = varied_rank_pattern(*b->model, ac);
    const AdapterState s = extract_adapter(*b->model, ac, "x", "y", pattern, 50);
    QTemporaryDir tmp;
    const fs::path dir = tmp.path().toStdString();
    io::write_peft_folder(dir, s);
    json cfg = json::parse(read_text(dir / "adapter_config.json"));
    const std::string key = module_hf_name(0, Target::Q) + ".lora_E";
    cfg["rank_pattern"][key] = json({true, true, true, true});  // the file keeps fewer
    write_text(dir / "adapter_config.json", cfg.dump());
    const QString msg = QString::fromStdString(format_error([&] { io::read_peft_folder(dir); }));
    QVERIFY2(msg.contains("q_proj.lora_A\" has 2 rows but rank_pattern keeps 4 of init_r = 4"), qPrintable(msg));
    QVERIFY_THROWS_EXCEPTION(ConfigError,
                             extract_adapter(*b->model, ac, "x", "y", {{"model.layers.0.mlp.up_proj", {true}}}));
  }

  void lora_from_delta_reproduces_a_low_rank_update() {
    const ModelConfig mc = micro_config();
    const int k = 3;
    std::map<std::string, HostTensor> deltas;
    std::uint64_t seed = 70;
    for (int l = 0; l < mc.layers; ++l)
      for (Target t : {Target::Q, Target::Down}) {
        const LinearShape sh = linear_shape(mc, t);
        const std::vector<double> u = normal_values(std::int64_t(sh.out) * k, 1.0, seed++);
        const std::vector<double> v = normal_values(std::int64_t(k) * sh.in, 1.0, seed++);
        HostTensor d{{sh.out, sh.in}, std::vector<float>(std::size_t(sh.out) * sh.in)};
        for (int o = 0; o < sh.out; ++o)
          for (int i = 0; i < sh.in; ++i) {
            double acc = 0;
            for (int j = 0; j < k; ++j) acc += u[o * k + j] * v[j * sh.in + i];
            d.values[std::size_t(o) * sh.in + i] = static_cast<float>(acc);
          }
        deltas[module_hf_name(l, t)] = std::move(d);
      }

    for (int R : {k, k - 1}) {
      const LoraFromDelta res = lora_from_delta(deltas, R, mc, "lora-workbench/micro", "abc");
      QCOMPARE(res.state.config.r, R);
      QCOMPARE(res.state.config.alpha, double(R));
      QCOMPARE(res.state.config.scaling(), 1.0);
      QVERIFY(res.state.config.targets == (std::vector<Target>{Target::Q, Target::Down}));
      for (const auto& [name, d] : deltas) {
        const HostTensor& A = res.state.tensors.at(peft_key(name, "lora_A.weight"));
        const HostTensor& B = res.state.tensors.at(peft_key(name, "lora_B.weight"));
        const int out = int(d.shape[0]), in = int(d.shape[1]);
        double diff = 0, norm = 0;
        for (int o = 0; o < out; ++o)
          for (int i = 0; i < in; ++i) {
            double acc = 0;
            for (int j = 0; j < R; ++j) acc += double(B.values[o * R + j]) * A.values[j * in + i];
            const double w = d.values[std::size_t(o) * in + i];
            diff += (acc - w) * (acc - w);
            norm += w * w;
          }
        const double actual = std::sqrt(diff / norm);
        const double reported = res.relative_error.at(name);
        if (R == k) {
          QVERIFY2(actual <= 1e-5 && reported <= 1e-5, qPrintable(QString("%1 %2").arg(actual).arg(reported)));
          continue;
        }
        const std::vector<double> sv =
            singular_values(std::vector<double>(d.values.begin(), d.values.end()), out, in);
        double total = 0;
        for (double x : sv) total += x * x;
        const double expected = sv[k - 1] / std::sqrt(total);
        QVERIFY2(reported > 1e-3 && std::abs(reported - expected) <= 1e-6 * expected + 1e-9,
                 qPrintable(QString("%1 %2").arg(reported).arg(expected)));
        QVERIFY2(std::abs(actual - reported) <= 1e-5, qPrintable(QString("%1 %2").arg(actual).arg(reported)));
      }
    }

    std::map<std::string, HostTensor> partial = deltas;
    partial.erase(module_hf_name(1, Target::Q));
    QVERIFY_THROWS_EXCEPTION(ConfigError, lora_from_delta(partial, 2, mc, "", ""));
    QVERIFY_THROWS_EXCEPTION(ConfigError, lora_from_delta(deltas, 17, mc, "", ""));  // q_proj is 16 x 16
  }

  void relora_run_exports_as_lora_of_the_original_base() {
    // Two ReLoRA cycles: the first merged into the base, the second live.
    const MicroBatch mb;
    QTemporaryDir tmp;
    const fs::path start = fs::path(tmp.path().toStdString()) / "start.safetensors";
    AdapterConfig ac = adapter("relora");
    ac.r = 2;
    auto run = build(be, ac);
    randomise(*run->model, be, 21);
    save_base_checkpoint(*run->model, start);
    merge_adapters(*run->model);
    randomise_adapters(*run->model, be, 900);
    const std::vector<double> want = micro_logits(*run->model, be, mb);
    const AdapterState live = extract_adapter(*run->model, ac, "lora-workbench/micro", "run-base");

    // The merged checkpoint computes what the adapted model does.
    Built merged;
    merged.model = std::make_unique<Model>(micro_config(), Model::Mode::Frozen, DType::F32);
    merged.model->materialize(be, merged.ledger, 2, 6);
    merge_adapter_into_base(*run->model, live, *merged.model);
    const double merged_rel = relative_diff(micro_logits(*merged.model, be, mb), want);
    QVERIFY2(merged_rel <= 1e-5, qPrintable(QString::number(merged_rel)));
    QVERIFY(micro_logits(*run->model, be, mb) == want);  // the source model is untouched

    // Both cycles together have rank 4: a rank-4 LoRA on the original base reproduces the run.
    std::map<std::string, HostTensor> deltas;
    Built original;
    original.model = std::make_unique<Model>(micro_config(), Model::Mode::Frozen, DType::F32);
    original.model->materialize(be, original.ledger, 2, 6);
    load_base_checkpoint(*original.model, start);
    for (int l = 0; l < 2; ++l)
      for (Target t : ac.targets) {
        const Linear& now = merged.model->linear(l, t);
        const std::vector<double> w = download_values(be, now.weight),
                                  w0 = download_values(be, original.model->linear(l, t).weight);
        HostTensor d{{now.out(), now.in()}, std::vector<float>(w.size())};
        for (std::size_t i = 0; i < w.size(); ++i) d.values[i] = static_cast<float>(w[i] - w0[i]);
        deltas.emplace(now.hf_name(), std::move(d));
      }
    const LoraFromDelta res = lora_from_delta(deltas, 4, micro_config(), "lora-workbench/micro", "start-base");
    for (const auto& [name, err] : res.relative_error) QVERIFY2(err <= 1e-5, qPrintable(QString::number(err)));
    auto fresh = build(be, res.state.config);
    fresh->model->init_base_weights(21);
    load_adapter(*fresh->model, res.state, "relora export");
    const double rel = relative_diff(micro_logits(*fresh->model, be, mb), want);
    qInfo("ReLoRA (2 cycles of r=2) as one r=4 LoRA on the original base: logits differ by %.3e", rel);
    QVERIFY2(rel <= 1e-5, qPrintable(QString::number(rel)));
    // At the live rank the truncation loses the first cycle's share.
    const LoraFromDelta cut = lora_from_delta(deltas, 2, micro_config(), "", "");
    for (const auto& [name, err] : cut.relative_error) QVERIFY2(err > 1e-3, qPrintable(QString::number(err)));
  }
};

QTEST_APPLESS_MAIN(TestPeft)
#include "test_peft.moc"
