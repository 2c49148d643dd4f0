// Hugging Face LLaMA checkpoints: export -> config + weights read back into a
// fresh model gives the same logits (untied and tied), a sharded BF16/F32
// checkpoint with an index imports, and configs or weights this engine cannot
// run are refused with the file and field named.
#include <QTemporaryDir>
#include <QtTest>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>

#include "core/common/errors.h"
#include "core/common/half.h"
#include "core/cpu/cpu_backend.h"
#include "core/io/hf_checkpoint.h"
#include "core/format/safetensors.h"
#include "core/model/weights_init.h"
#include "io_fixtures.h"
#include "model_fixtures.h"

using namespace lwb;
using namespace lwb::test;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

std::unique_ptr<Built> build(Backend& be, const ModelConfig& mc) {
  auto b = std::make_unique<Built>();
  b->model = std::make_unique<Model>(mc, Model::Mode::Frozen, DType::F32);
  b->model->materialize(be, b->ledger, 2, 6);
  return b;
}

std::vector<float> host(Backend& be, const Tensor& t) {
  const std::vector<double> v = download_values(be, t);
  return {v.begin(), v.end()};
}

}  // namespace

class TestHfCheckpoint : public QObject {
  Q_OBJECT
  CpuBackend be;

 private slots:
  void round_trip_data() {
    QTest::addColumn<bool>("tied");
    QTest::newRow("untied") << false;
    QTest::newRow("tied") << true;
  }
  void round_trip() {
    QFETCH(bool, tied);
    ModelConfig mc = micro_config();
    mc.tie_embeddings = tied;
    const MicroBatch mb;
    QTemporaryDir tmp;
    const fs::path dir = fs::path(tmp.path().toStdString()) / "export";

    auto src = build(be, mc);
    src->model->init_base_weights(8);
    const std::vector<double> want = micro_logits(*src->model, be, mb);
    io::export_hf_checkpoint(*src->model, dir);

    const json cfg = json::parse(read_text(dir / "config.json"));
    QCOMPARE(cfg["architectures"], json({"LlamaForCausalLM"}));
    QCOMPARE(cfg["model_type"].get<std::string>(), std::string("llama"));
    QCOMPARE(cfg["hidden_act"].get<std::string>(), std::string("silu"));
    QCOMPARE(cfg["torch_dtype"].get<std::string>(), std::string("float32"));
    QCOMPARE(cfg["lwb_tokenizer"].get<std::string>(), std::string("byte"));
    QCOMPARE(cfg["attention_bias"].get<bool>(), false);
    QCOMPARE(cfg["mlp_bias"].get<bool>(), false);
    QCOMPARE(cfg["tie_word_embeddings"].get<bool>(), tied);
    for (const char* f :
         {"hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
          "vocab_size", "rms_norm_eps", "rope_theta", "max_position_embeddings"})
      QVERIFY2(cfg.contains(f), f);
    const io::SafetensorsFile st = io::SafetensorsFile::open(dir / "model.safetensors");
    QCOMPARE(st.find("lm_head.weight") != nullptr, !tied);
    QVERIFY(st.find("model.layers.1.mlp.down_proj.weight"));

    const ModelConfig back = io::read_hf_config(dir);
    QVERIFY(back == mc);
    auto dst = build(be, back);
    io::import_hf_weights(*dst->model, dir);
    QVERIFY(micro_logits(*dst->model, be, mb) == want);
  }

  void sharded_bf16_checkpoint_imports() {
    QTemporaryDir tmp;
    const fs::path dir = tmp.path().toStdString();
    auto src = build(be, micro_config());
    src->model->init_base_weights(9);
    io::export_hf_checkpoint(*src->model, dir);
    fs::remove(dir / "model.safetensors");

    // First half F32, second half BF16 (plus a stale rotary buffer, which is ignored).
    const auto named = src->model->named_base_weights();
    const std::size_t half = named.size() / 2;
    std::vector<std::vector<float>> f32;
    std::vector<std::vector<std::uint16_t>> bf16;
    f32.reserve(named.size());
    bf16.reserve(named.size() + 1);
    std::vector<io::StTensorWrite> shard1, shard2;
    std::map<std::string, std::vector<float>> expect;
    json index = {{"metadata", {{"total_size", 0}}}, {"weight_map", json::object()}};
    for (std::size_t i = 0; i < named.size(); ++i) {
      const auto& [name, t] = named[i];
      const std::vector<std::int64_t> shape(t.shape.dims.begin(), t.shape.dims.begin() + t.shape.ndim);
      std::vector<float> v = host(be, t);
      if (i < half) {
        f32.push_back(v);
        shard1.push_back({name, io::StDType::F32, shape, std::as_bytes(std::span<const float>(f32.back()))});
        index["weight_map"][name] = "model-00001-of-00002.safetensors";
      } else {
        std::vector<std::uint16_t> bits;
        for (float& x : v) {
          bits.push_back(f32_to_bf16(x));
          x = bf16_to_f32(bits.back());
        }
        bf16.push_back(std::move(bits));
        shard2.push_back(
            {name, io::StDType::BF16, shape, std::as_bytes(std::span<const std::uint16_t>(bf16.back()))});
        index["weight_map"][name] = "model-00002-of-00002.safetensors";
      }
      expect[name] = v;
    }
    bf16.push_back(std::vector<std::uint16_t>(2, f32_to_bf16(1.0f)));
    const std::string inv_freq = "model.layers.0.self_attn.rotary_emb.inv_freq";
    shard2.push_back(
        {inv_freq, io::StDType::BF16, {2}, std::as_bytes(std::span<const std::uint16_t>(bf16.back()))});
    index["weight_map"][inv_freq] = "model-00002-of-00002.safetensors";
    io::write_safetensors(dir / "model-00001-of-00002.safetensors", shard1, {{"format", "pt"}});
    io::write_safetensors(dir / "model-00002-of-00002.safetensors", shard2, {{"format", "pt"}});
    write_text(dir / "model.safetensors.index.json", index.dump(2));

    auto dst = build(be, io::read_hf_config(dir));
    io::import_hf_weights(*dst->model, dir);
    for (const auto& [name, t] : dst->model->named_base_weights())
      QVERIFY2(host(be, t) == expect.at(name), name.c_str());

    // A shard outside the folder is refused.
    index["weight_map"]["model.norm.weight"] = "../elsewhere.safetensors";
    write_text(dir / "model.safetensors.index.json", index.dump());
    const QString msg = QString::fromStdString(format_error([&] { io::import_hf_weights(*dst->model, dir); }));
    QVERIFY2(msg.contains("model.safetensors.index.json") && msg.contains("\"../elsewhere.safetensors\""),
             qPrintable(msg));
  }

  void unsupported_configs_are_refused_data() {
    QTest::addColumn<QString>("field");
    QTest::addColumn<QString>("value");
    QTest::addColumn<QString>("expect");
    QTest::newRow("model_type") << "model_type"
                                << R"("gpt2")"
                                << "expected \"llama\"";
    QTest::newRow("rope_scaling") << "rope_scaling"
                                  << R"({"type": "linear", "factor": 2.0})"
                                  << "not supported";
    QTest::newRow("attention_bias") << "attention_bias"
                                    << "true"
                                    << "without bias";
    QTest::newRow("mlp_bias") << "mlp_bias"
                              << "true"
                              << "without bias";
    QTest::newRow("hidden_act") << "hidden_act"
                                << R"("gelu")"
                                << "expected \"silu\"";
    QTest::newRow("hidden_size") << "hidden_size"
                                 << "null"
                                 << "is missing";
    QTest::newRow("head_dim") << "head_dim"
                              << "8"
                              << "hidden_size / num_attention_heads = 4";
    QTest::newRow("rope_parameters") << "rope_parameters"
                                     << R"({"rope_type": "yarn", "factor": 4.0})"
                                     << "rope_type \"yarn\"";
    // 2^32 + 16 would wrap to 16 in an int; 1e12 to -727379968.
    QTest::newRow("hidden_size beyond int") << "hidden_size"
                                            << "4294967312"
                                            << "must be an integer from 1 to 2147483647, got 4294967312";
    QTest::newRow("vocab_size beyond int") << "vocab_size"
                                           << "1000000000000"
                                           << "must be an integer from 1 to 2147483647, got 1000000000000";
  }
  void unsupported_configs_are_refused() {
    QFETCH(QString, field);
    QFETCH(QString, value);
    QFETCH(QString, expect);
    QTemporaryDir tmp;
    const fs::path dir = tmp.path().toStdString();
    auto src = build(be, micro_config());
    src->model->init_base_weights(1);
    io::export_hf_checkpoint(*src->model, dir);
    json cfg = json::parse(read_text(dir / "config.json"));
    cfg[field.toStdString()] = json::parse(value.toStdString());
    write_text(dir / "config.json", cfg.dump());
    const QString msg = QString::fromStdString(format_error([&] { io::read_hf_config(dir); }));
    QVERIFY2(msg.startsWith(
                 QString::fromStdString((dir / "config.json").string() + ": field \"" + field.toStdString())),
             qPrintable(msg));
    QVERIFY2(msg.contains(expect), qPrintable(msg));
  }

  void mistral_without_sliding_window_and_defaults() {
    QTemporaryDir tmp;
    const fs::path dir = fs::path(tmp.path().toStdString()) / "my-mistral";
    fs::create_directories(dir);
    write_text(dir / "config.json", R"({"model_type": "mistral", "hidden_size": 16, "intermediate_size": 24,
      "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 11, "sliding_window": null})");
    const ModelConfig c = io::read_hf_config(dir);
    QCOMPARE(c.name, std::string("my-mistral"));
    QCOMPARE(c.kv_heads, 4);
    QCOMPARE(c.norm_eps, 1e-6);
    QCOMPARE(c.max_seq, 2048);
    QCOMPARE(c.tokenizer, std::string("hf"));
    write_text(dir / "config.json", R"({"model_type": "mistral", "hidden_size": 16, "intermediate_size": 24,
      "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 11, "sliding_window": 512})");
    const QString msg = QString::fromStdString(format_error([&] { io::read_hf_config(dir); }));
    QVERIFY2(msg.contains("field \"sliding_window\" is 512"), qPrintable(msg));
  }

  // The model is sized from config.json before any weight is read: sizes no
  // model has are refused there (fuzz_hf_config found param_count overflowing
  // on the first config below; the second would have made 10^9 layers).
  void absurd_sizes_are_refused() {
    QTemporaryDir tmp;
    const fs::path dir = tmp.path().toStdString();
    write_text(dir / "config.json", read_text(fs::path(LWB_SOURCE_DIR) / "tests/fuzz/corpus/hf_config/huge_sizes.json"));
    QString msg = QString::fromStdString(format_error([&] { io::read_hf_config(dir); }));
    QVERIFY2(msg.contains("config.json: model.hidden: must be an integer from 1 to 65536, got 1073741824"),
             qPrintable(msg));
    write_text(dir / "config.json", R"({"model_type": "llama", "hidden_size": 16, "intermediate_size": 24,
      "num_hidden_layers": 1000000000, "num_attention_heads": 4, "vocab_size": 11})");
    msg = QString::fromStdString(format_error([&] { io::read_hf_config(dir); }));
    QVERIFY2(msg.contains("config.json: model.layers: must be an integer from 1 to 4096, got 1000000000"),
             qPrintable(msg));
  }

  // fuzz_hf_config: a field nested 100,000 levels deep parsed, then
  // overflowed the stack when the message quoted it; now refused before parsing.
  void deep_nesting_is_refused() {
    QTemporaryDir tmp;
    const fs::path dir = tmp.path().toStdString();
    write_text(dir / "config.json", R"({"model_type": "llama", "hidden_act": )" + std::string(100000, '[') +
                                        std::string(100000, ']') + "}");
    const QString msg = QString::fromStdString(format_error([&] { io::read_hf_config(dir); }));
    QVERIFY2(msg.endsWith("config.json: JSON nested deeper than 64 levels"), qPrintable(msg));
  }

  void weight_problems_are_listed_together() {
    QTemporaryDir tmp;
    const fs::path dir = tmp.path().toStdString();
    auto src = build(be, micro_config());
    src->model->init_base_weights(2);
    std::vector<std::vector<float>> data;
    std::vector<io::StTensorWrite> writes;
    const auto named = src->model->named_base_weights();
    data.reserve(named.size() + 2);
    for (const auto& [name, t] : named) {
      if (name == "model.norm.weight") continue;  // missing
      std::vector<std::int64_t> shape(t.shape.dims.begin(), t.shape.dims.begin() + t.shape.ndim);
      if (name == "model.layers.0.self_attn.q_proj.weight") shape = {8, 32};  // wrong shape, same size
      data.push_back(host(be, t));
      writes.push_back({name, io::StDType::F32, shape, std::as_bytes(std::span<const float>(data.back()))});
    }
    data.push_back(std::vector<float>(4, 1.0f));
    writes.push_back({"model.layers.0.self_attn.q_proj.bias",
                      io::StDType::F32,
                      {4},
                      std::as_bytes(std::span<const float>(data.back()))});
    io::write_safetensors(dir / "model.safetensors", writes, {{"format", "pt"}});
    const QString msg = QString::fromStdString(format_error([&] { io::import_hf_weights(*src->model, dir); }));
    qInfo("%s", qPrintable(msg));
    QVERIFY2(msg.startsWith(QString::fromStdString((dir / "model.safetensors").string() + ": ")), qPrintable(msg));
    QVERIFY2(msg.contains("missing tensor \"model.norm.weight\" (expected shape [16])"), qPrintable(msg));
    QVERIFY2(msg.contains("\"model.layers.0.self_attn.q_proj.weight\" has shape [8, 32] vs expected [16, 16]"),
             qPrintable(msg));
    QVERIFY2(msg.contains("unexpected tensor \"model.layers.0.self_attn.q_proj.bias\""), qPrintable(msg));

    // A base with NaN or infinite weights can neither train nor run.
    auto good = build(be, micro_config());
    good->model->init_base_weights(3);
    io::export_hf_checkpoint(*good->model, dir);
    std::vector<std::vector<float>> values;
    std::vector<io::StTensorWrite> finite_but_one;
    for (const auto& [name, t] : good->model->named_base_weights()) {
      values.push_back(host(be, t));
      if (name == "model.layers.1.mlp.up_proj.weight") values.back()[5] = INFINITY;
      finite_but_one.push_back({name, io::StDType::F32,
                                std::vector<std::int64_t>(t.shape.dims.begin(), t.shape.dims.begin() + t.shape.ndim),
                                std::as_bytes(std::span<const float>(values.back()))});
    }
    io::write_safetensors(dir / "model.safetensors", finite_but_one, {{"format", "pt"}});
    const QString inf = QString::fromStdString(format_error([&] { io::import_hf_weights(*good->model, dir); }));
    QVERIFY2(inf.contains("tensor \"model.layers.1.mlp.up_proj.weight\" holds 1 NaN or infinite value(s)"),
             qPrintable(inf));

    fs::remove(dir / "model.safetensors");
    write_text(dir / "pytorch_model.bin", "not a zip");
    const QString bin = QString::fromStdString(format_error([&] { io::import_hf_weights(*src->model, dir); }));
    QVERIFY2(bin.contains("pytorch_model.bin: only safetensors"), qPrintable(bin));
  }
};

QTEST_APPLESS_MAIN(TestHfCheckpoint)
#include "test_hf_checkpoint.moc"
