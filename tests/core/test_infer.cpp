// The inference engine (core/infer): decode logits with the K/V cache against
// a full recompute by the training model's forward (fp64 and fp32, any mix of
// prefill chunks and decode steps, several sequences of different lengths in
// one call), every adapter kind unmerged and merged against the training
// model carrying it, switching adapters over one base, decode steps over a
// GGUF file's quantised blocks (DecodeWeights) with adapters unmerged on
// top and a changed model refused; the generator's
// batches, turns, sampling, stops, streaming, cancel and errors; batch
// predictions (loss against a float64 recompute, answers against single
// generation, ROUGE-L); greedy
// answers against transformers' generate (tests/reference/
// make_generate_golden.py) with and without PEFT adapters, and SmolLM2-135M
// when its file is present.
#include <QtTest>
#include <QTemporaryDir>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "core/adapters/adapter_state.h"
#include "core/adapters/attach.h"
#include "core/common/errors.h"
#include "core/common/paths.h"
#include "core/compose/merge.h"
#include "core/cpu/cpu_backend.h"
#include "core/data/tokenizer.h"
#include "core/data/unicode.h"
#include "core/format/gguf.h"
#include "core/infer/adapter_set.h"
#include "core/infer/decode_weights.h"
#include "core/infer/decoder.h"
#include "core/infer/generator.h"
#include "core/infer/predict.h"
#include "core/infer/sampler.h"
#include "core/infer/text_stream.h"
#include "core/io/gguf_model.h"
#include "core/io/hf_checkpoint.h"
#include "core/io/peft.h"
#include "core/model/checkpoint.h"
#include "core/source/model_source.h"
#include "core/tensor/rng.h"
#include "expect_throw.h"
#include "model_fixtures.h"

using namespace lwb;
using namespace lwb::infer;
using namespace lwb::test;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

const fs::path kGolden = fs::path(LWB_TEST_DATA_DIR) / "generate";

// GQA with groups of 2, head_dim 8; max_seq above the CPU kernel's 64-row
// blocks, so chunks and positions cross them.
ModelConfig engine_config(int vocab = 61) {
  ModelConfig c;
  c.name = "engine";
  c.hidden = 32;
  c.intermediate = 64;
  c.layers = 2;
  c.heads = 4;
  c.kv_heads = 2;
  c.vocab = vocab;
  c.max_seq = 150;
  return c;
}

std::vector<std::int32_t> random_tokens(std::int64_t n, std::int32_t vocab, std::uint64_t seed) {
  SplitMix rng(seed);
  std::vector<std::int32_t> t(static_cast<std::size_t>(n));
  for (auto& x : t) x = static_cast<std::int32_t>(rng.below(static_cast<std::uint64_t>(vocab)));
  return t;
}

// Logits [B, T, V] of the training model's forward over sequences (padded
// with token 0 to the longest: causality keeps the padding out of the rows
// that matter).
std::vector<double> full_logits(Model& m, Backend& be, const std::vector<std::vector<std::int32_t>>& seqs,
                                std::int64_t T) {
  std::vector<std::int32_t> inputs, targets;
  for (const auto& s : seqs)
    for (std::int64_t t = 0; t < T; ++t) {
      inputs.push_back(t < static_cast<std::int64_t>(s.size()) ? s[static_cast<std::size_t>(t)] : 0);
      targets.push_back(-1);
    }
  m.set_batch(inputs.data(), targets.data(), static_cast<std::int64_t>(seqs.size()), T);
  m.forward(false, 0);
  return download_values(be, m.logits());
}

double row_diff(const std::vector<double>& got, std::size_t got_row, const std::vector<double>& want,
                std::size_t want_row, std::size_t V) {
  const std::vector<double> a(got.begin() + static_cast<std::ptrdiff_t>(got_row * V),
                              got.begin() + static_cast<std::ptrdiff_t>((got_row + 1) * V));
  const std::vector<double> b(want.begin() + static_cast<std::ptrdiff_t>(want_row * V),
                              want.begin() + static_cast<std::ptrdiff_t>((want_row + 1) * V));
  return relative_diff(a, b);
}

// Runs `seqs` through the decoder in a random schedule of calls (each call
// takes, per sequence still running and in a random order, the next 1..40
// tokens or nothing; at most max_rows rows) and returns the worst relative
// difference of the logits of every call's last row per sequence against
// `want` ([B, T, V]).
double run_schedule(Decoder& d, const AdapterSet* adapter, const std::vector<std::vector<std::int32_t>>& seqs,
                    const std::vector<double>& want, std::int64_t T, std::uint64_t seed, int* calls = nullptr) {
  const auto V = static_cast<std::size_t>(d.config().vocab);
  SplitMix rng(seed);
  std::vector<std::size_t> done(seqs.size(), 0);
  double worst = 0;
  int n_calls = 0;
  auto all_done = [&] {
    for (std::size_t b = 0; b < seqs.size(); ++b)
      if (done[b] < seqs[b].size()) return false;
    return true;
  };
  while (!all_done()) {
    std::vector<std::int32_t> tokens, sequences, positions, logit_rows;
    std::vector<std::pair<std::size_t, std::size_t>> checked;  // (sequence, position)
    std::vector<std::size_t> order(seqs.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    for (std::size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng.below(i)]);
    for (std::size_t b : order) {
      const std::size_t left = seqs[b].size() - done[b];
      if (left == 0 || rng.below(4) == 0) continue;
      std::size_t count = rng.below(3) == 0 ? 1 + rng.below(40) : 1;
      count = std::min({count, left, static_cast<std::size_t>(d.max_rows()) - tokens.size()});
      if (count == 0) continue;
      for (std::size_t t = done[b]; t < done[b] + count; ++t) {
        tokens.push_back(seqs[b][t]);
        sequences.push_back(static_cast<std::int32_t>(b));
        positions.push_back(static_cast<std::int32_t>(t));
      }
      done[b] += count;
      logit_rows.push_back(static_cast<std::int32_t>(tokens.size() - 1));
      checked.emplace_back(b, done[b] - 1);
    }
    if (tokens.empty()) continue;
    const Tensor logits = d.forward(DecoderRows{tokens, sequences, positions, logit_rows}, adapter);
    ++n_calls;
    const std::vector<double> got = download_values(d.backend(), logits);
    for (std::size_t k = 0; k < checked.size(); ++k)
      worst = std::max(worst, row_diff(got, k, want, checked[k].first * static_cast<std::size_t>(T) + checked[k].second, V));
  }
  if (calls) *calls = n_calls;
  return worst;
}

AdapterConfig adapter_config(const QString& kind) {
  AdapterConfig ac;
  ac.r = 4;
  ac.alpha = 8;
  ac.targets.assign(kAllTargets.begin(), kAllTargets.end());
  select_method(ac, kind == "composition" ? "lora" : kind.toStdString());
  if (kind == "dora") ac.targets = {Target::Q, Target::V, Target::Down};
  if (kind == "adalora") ac.set_option("adalora.target_r", 2);
  return ac;
}

// A model of `c` with adapter `ac` attached, every base and adapter tensor
// random (seeded), materialised for B x T.
std::unique_ptr<Model> adapted_model(Backend& be, MemoryLedger& ledger, const ModelConfig& c, const AdapterConfig& ac,
                                     DType dtype, std::int64_t B, std::int64_t T, std::uint64_t seed) {
  auto m = std::make_unique<Model>(c, model_mode_for(ac), dtype);
  attach_adapters(*m, ac);
  m->materialize(be, ledger, B, T);
  randomise(*m, be, seed, 0.2);
  return m;
}

// A plain model with the base weights of `from`, materialised for 1 x 1 (a
// decoder's base).
std::unique_ptr<Model> base_copy(Backend& be, MemoryLedger& ledger, const Model& from) {
  auto m = std::make_unique<Model>(from.config(), Model::Mode::Frozen, from.dtype());
  m->materialize(be, ledger, 1, 1);
  copy_base_weights(from, *m);
  return m;
}

// The first answer of the golden file's `variant` for prompt i, etc.
json golden() {
  std::ifstream in(kGolden / "golden.json");
  return json::parse(in);
}

std::vector<std::vector<std::int32_t>> golden_prompts(const json& g) {
  return g.at("prompts").get<std::vector<std::vector<std::int32_t>>>();
}

// A batch of one prompt.
std::vector<std::vector<std::int32_t>> one(std::vector<std::int32_t> prompt) { return {std::move(prompt)}; }

bool valid_utf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t n = data::utf8_length(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

fs::path smollm2_path() {
  const char* env = std::getenv("LWB_SMOLLM2_GGUF");
  return env && *env ? fs::path(env) : user_data_dir() / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf";
}

}  // namespace

class TestInfer : public QObject {
  Q_OBJECT

  CpuBackend be;
  data::ByteTokenizer bytes;

  // A random fp32 model with vocabulary 260 (the byte tokenizer's) for the generator's tests.
  struct Setup {
    MemoryLedger ledger;
    std::unique_ptr<Model> model;
    std::unique_ptr<Decoder> decoder;
    std::unique_ptr<Generator> gen;
  };
  std::unique_ptr<Setup> byte_model(std::int64_t sequences = 3, std::int64_t context = 150, std::int64_t max_rows = 0) {
    auto s = std::make_unique<Setup>();
    s->model = std::make_unique<Model>(engine_config(260), Model::Mode::Frozen, DType::F32);
    s->model->materialize(be, s->ledger, 1, 1);
    s->model->init_base_weights(5);
    // Larger weights than the training init: answers vary instead of repeating one token.
    for (auto& [name, t] : s->model->named_base_weights())
      if (t.shape.ndim == 2) upload_values(be, t, normal_values(t.numel(), 0.3, std::hash<std::string>{}(name)));
    s->decoder = std::make_unique<Decoder>(*s->model, DecoderLimits{sequences, context, max_rows}, s->ledger);
    s->gen = std::make_unique<Generator>(*s->decoder, bytes);
    return s;
  }

 private slots:
  // ---- the decoder against the training model's forward --------------------------

  void decodeEqualsFullRecompute_data() {
    QTest::addColumn<int>("dtype");
    QTest::addColumn<int>("max_rows");
    QTest::addColumn<double>("tolerance");
    // fp64: only the summation order differs; fp32: rounding through two layers.
    QTest::newRow("fp64, one call holds a whole prompt") << static_cast<int>(DType::F64) << 300 << 1e-12;
    QTest::newRow("fp64, calls of at most 7 rows") << static_cast<int>(DType::F64) << 7 << 1e-12;
    QTest::newRow("fp32") << static_cast<int>(DType::F32) << 64 << 2e-5;
  }
  void decodeEqualsFullRecompute() {
    QFETCH(int, dtype);
    QFETCH(int, max_rows);
    QFETCH(double, tolerance);
    const ModelConfig c = engine_config();
    const std::vector<std::vector<std::int32_t>> seqs = {random_tokens(140, c.vocab, 1), random_tokens(97, c.vocab, 2),
                                                         random_tokens(3, c.vocab, 3)};
    const std::int64_t T = 140;
    MemoryLedger ledger;
    Model full(c, Model::Mode::Frozen, static_cast<DType>(dtype));
    full.materialize(be, ledger, 3, T);
    full.init_base_weights(9);
    const std::vector<double> want = full_logits(full, be, seqs, T);
    auto base = base_copy(be, ledger, full);
    Decoder d(*base, DecoderLimits{3, 150, max_rows}, ledger);
    for (std::uint64_t schedule = 0; schedule < 3; ++schedule) {
      int calls = 0;
      const double worst = run_schedule(d, nullptr, seqs, want, T, 100 + schedule, &calls);
      qInfo("schedule %llu: %d calls, worst relative difference %.3g", static_cast<unsigned long long>(schedule), calls,
            worst);
      QVERIFY2(worst < tolerance, std::to_string(worst).c_str());
    }
  }

  // A later prompt overwrites what a slot held: positions restart at 0.
  void slotsAreReused() {
    const ModelConfig c = engine_config();
    MemoryLedger ledger;
    Model full(c, Model::Mode::Frozen, DType::F64);
    full.materialize(be, ledger, 2, 60);
    full.init_base_weights(4);
    const std::vector<std::vector<std::int32_t>> first = {random_tokens(60, c.vocab, 7), random_tokens(20, c.vocab, 8)};
    const std::vector<std::vector<std::int32_t>> second = {random_tokens(25, c.vocab, 9), random_tokens(60, c.vocab, 10)};
    const std::vector<double> want1 = full_logits(full, be, first, 60), want2 = full_logits(full, be, second, 60);
    auto base = base_copy(be, ledger, full);
    Decoder d(*base, DecoderLimits{2, 60, 0}, ledger);
    QVERIFY(run_schedule(d, nullptr, first, want1, 60, 1) < 1e-12);
    QVERIFY(run_schedule(d, nullptr, second, want2, 60, 2) < 1e-12);
  }

  // ---- adapters ----------------------------------------------------------------------

  void adaptersMatchTrainingModel_data() {
    QTest::addColumn<QString>("kind");
    for (const char* k : {"lora", "rslora", "dora", "adalora", "relora", "composition"}) QTest::newRow(k) << k;
  }
  void adaptersMatchTrainingModel() {
    QFETCH(QString, kind);
    const ModelConfig c = engine_config();
    const AdapterConfig ac = adapter_config(kind);
    const std::int64_t T = 90;
    MemoryLedger ledger;
    auto ref = adapted_model(be, ledger, c, ac, DType::F64, 2, T, 21);
    // States hold float32: the reference runs the same rounded values.
    AdapterState state = extract_adapter(*ref, ac, "lora-workbench/engine", "");
    load_adapter(*ref, state, "rounded");
    if (kind == "adalora") {
      // Masked ranks, as the rank allocator leaves them: E = 0 for some triplets.
      for (auto& [key, t] : state.tensors)
        if (key.ends_with("lora_E"))
          for (std::size_t i = 0; i < t.values.size(); i += 2) t.values[i] = 0;
      load_adapter(*ref, state, "masked");
    }
    if (kind == "composition") {
      // LoRAHub: A = sum w_i A_i, B = sum w_i B_i of two adapters.
      auto other = adapted_model(be, ledger, c, ac, DType::F64, 1, 1, 22);
      std::vector<compose::Member> members = {{"one", state},
                                              {"two", extract_adapter(*other, ac, "lora-workbench/engine", "")}};
      compose::Composer composer(members, compose::MergeMode::LoraHub);
      const std::vector<double> w = {0.7, -0.4};
      state = composer.compose(w);
      load_adapter(*ref, state, "composition");
    }
    const std::vector<std::vector<std::int32_t>> seqs = {random_tokens(T, c.vocab, 5), random_tokens(41, c.vocab, 6)};
    const std::vector<double> want = full_logits(*ref, be, seqs, T);
    auto base = base_copy(be, ledger, *ref);
    Decoder d(*base, DecoderLimits{2, T, 0}, ledger);
    const AdapterSet set(d, state, kind.toStdString());
    const double unmerged = run_schedule(d, &set, seqs, want, T, 3);
    qInfo("%s unmerged: worst relative difference %.3g", qPrintable(kind), unmerged);
    QVERIFY2(unmerged < 1e-12, std::to_string(unmerged).c_str());
    // The adapter matters: the base alone is far off.
    QVERIFY(run_schedule(d, nullptr, seqs, want, T, 3) > 1e-3);

    auto merged = merged_model(*base, state, ledger);
    Decoder dm(*merged, DecoderLimits{2, T, 0}, ledger);
    const double m = run_schedule(dm, nullptr, seqs, want, T, 4);
    qInfo("%s merged: worst relative difference %.3g", qPrintable(kind), m);
    QVERIFY2(m < 1e-12, std::to_string(m).c_str());
  }

  // Decode steps over a GGUF file's Q8_0 blocks (DecodeWeights): the base
  // imported from the file, an adapter unmerged on top, against the float64
  // training model carrying the same (dequantised) weights and adapter. The
  // blocks give the fp32 weights to the bit, so only fp32 rounding differs.
  // A model whose weights differ from the file's (merged) is refused.
  void quantizedDecodeSteps_data() {
    QTest::addColumn<QString>("kind");
    for (const char* k : {"lora", "dora"}) QTest::newRow(k) << k;
  }
  void quantizedDecodeSteps() {
    QFETCH(QString, kind);
    const ModelConfig c = engine_config();
    const AdapterConfig ac = adapter_config(kind);
    const std::int64_t T = 90;
    MemoryLedger ledger;
    QTemporaryDir dir;
    const fs::path file = fs::path(dir.path().toStdString()) / "engine.gguf";
    {
      Model src(c, Model::Mode::Frozen, DType::F32);
      src.materialize(be, ledger, 1, 1);
      src.init_base_weights(13);
      for (auto& [name, t] : src.named_base_weights())
        if (t.shape.ndim == 2) upload_values(be, t, normal_values(t.numel(), 0.3, std::hash<std::string>{}(name)));
      io::export_gguf(src, file, io::GgufExportType::Q8_0);
    }
    const format::GgufFile f = format::GgufFile::open(file);
    auto ref = adapted_model(be, ledger, c, ac, DType::F64, 2, T, 21);
    io::import_gguf_weights(*ref, f);
    AdapterState state = extract_adapter(*ref, ac, "lora-workbench/engine", "");
    load_adapter(*ref, state, "rounded");
    const std::vector<std::vector<std::int32_t>> seqs = {random_tokens(T, c.vocab, 5), random_tokens(41, c.vocab, 6)};
    const std::vector<double> want = full_logits(*ref, be, seqs, T);

    Model base(c, Model::Mode::Frozen, DType::F32);
    base.materialize(be, ledger, 1, 1);
    io::import_gguf_weights(base, f);
    const auto small_batch = DecodeWeights::make(base, &f, ledger);
    QVERIFY(small_batch);
    QCOMPARE(small_batch->quantized_matrices(), kTargetCount * c.layers + 1);
    Decoder d(base, DecoderLimits{2, T, 0}, ledger, small_batch);
    const AdapterSet set(d, state, kind.toStdString());
    for (std::uint64_t schedule = 0; schedule < 2; ++schedule) {
      const double worst = run_schedule(d, &set, seqs, want, T, 30 + schedule);
      qInfo("%s unmerged over Q8_0 blocks: worst relative difference %.3g", qPrintable(kind), worst);
      QVERIFY2(worst < 2e-5, std::to_string(worst).c_str());
    }

    auto merged = merged_model(base, state, ledger);
    EXPECT_THROW_WITH(std::invalid_argument, DecodeWeights::make(*merged, &f, ledger), "differs from the model's");
    EXPECT_THROW_WITH(std::invalid_argument, Decoder(*merged, DecoderLimits{1, T, 0}, ledger, small_batch),
                      "made for another model");
  }

  // Base, A and B in turn over one base, in any order: each call matches its
  // own reference, and the base weights are never touched.
  void switchAdaptersWithoutReloading() {
    const ModelConfig c = engine_config();
    const std::int64_t T = 40;
    MemoryLedger ledger;
    AdapterConfig lora = adapter_config("lora");
    AdapterConfig dora = adapter_config("dora");
    auto ref_a = adapted_model(be, ledger, c, lora, DType::F64, 1, T, 31);
    auto ref_b = adapted_model(be, ledger, c, dora, DType::F64, 1, T, 32);
    copy_base_weights(*ref_a, *ref_b);
    auto base = base_copy(be, ledger, *ref_a);
    Model plain(c, Model::Mode::Frozen, DType::F64);
    plain.materialize(be, ledger, 1, T);
    copy_base_weights(*ref_a, plain);
    const std::string fingerprint = base_fingerprint(*base);
    Decoder d(*base, DecoderLimits{1, T, 0}, ledger);
    const AdapterState state_a = extract_adapter(*ref_a, lora, "", ""), state_b = extract_adapter(*ref_b, dora, "", "");
    load_adapter(*ref_a, state_a, "rounded");
    load_adapter(*ref_b, state_b, "rounded");
    const AdapterSet a(d, state_a, "A", fingerprint);
    const AdapterSet b(d, state_b, "B", fingerprint);
    const std::vector<std::vector<std::int32_t>> seq = {random_tokens(T, c.vocab, 2)};
    const std::vector<double> want_a = full_logits(*ref_a, be, seq, T), want_b = full_logits(*ref_b, be, seq, T),
                              want_base = full_logits(plain, be, seq, T);
    for (int round = 0; round < 2; ++round) {
      QVERIFY(run_schedule(d, &b, seq, want_b, T, 10 + round) < 1e-12);
      QVERIFY(run_schedule(d, nullptr, seq, want_base, T, 20 + round) < 1e-12);
      QVERIFY(run_schedule(d, &a, seq, want_a, T, 30 + round) < 1e-12);
    }
    QCOMPARE(base_fingerprint(*base), fingerprint);
  }

  void adapterRefusals() {
    const ModelConfig c = engine_config();
    MemoryLedger ledger;
    const AdapterConfig ac = adapter_config("lora");
    auto ref = adapted_model(be, ledger, c, ac, DType::F32, 1, 1, 3);
    AdapterState state = extract_adapter(*ref, ac, "x", "0123456789abcdef");
    auto base = base_copy(be, ledger, *ref);
    Decoder d(*base, DecoderLimits{1, 16, 0}, ledger);
    EXPECT_THROW_WITH(FormatError, AdapterSet(d, state, "mine", "fedcba9876543210"), "trained on another base");
    ModelConfig wider = c;
    wider.hidden = 48;
    wider.heads = 6;
    wider.kv_heads = 3;
    Model other(wider, Model::Mode::Frozen);
    other.materialize(be, ledger, 1, 1);
    Decoder d2(other, DecoderLimits{1, 16, 0}, ledger);
    EXPECT_THROW_WITH(FormatError, AdapterSet(d2, state, "mine"), "adapter \"mine\"");
    Decoder d3(*base, DecoderLimits{1, 16, 0}, ledger);
    const AdapterSet set(d, state, "mine");
    const std::vector<std::int32_t> one = {1};
    EXPECT_THROW_WITH(std::invalid_argument, d3.forward(DecoderRows{one, std::vector<std::int32_t>{0},
                                                                    std::vector<std::int32_t>{0}, {}},
                                                        &set),
                      "another decoder");
  }

  void decoderLimits() {
    MemoryLedger ledger;
    Model m(engine_config(), Model::Mode::Frozen);
    m.materialize(be, ledger, 1, 1);
    EXPECT_THROW_WITH(ConfigError, Decoder(m, DecoderLimits{1, 151, 0}, ledger), "generate.context");
    EXPECT_THROW_WITH(ConfigError, Decoder(m, DecoderLimits{0, 16, 0}, ledger), "generate.batch");
    EXPECT_THROW_WITH(ConfigError, Decoder(m, DecoderLimits{4, 16, 2}, ledger), "generate.max_rows");
    Decoder d(m, DecoderLimits{2, 16, 8}, ledger);
    const std::vector<std::int32_t> tok = {3}, slot = {0}, pos = {16}, bad_tok = {61}, bad_slot = {2}, zero = {0};
    EXPECT_THROW_WITH(std::invalid_argument, d.forward(DecoderRows{tok, slot, pos, {}}), "position 16");
    EXPECT_THROW_WITH(std::invalid_argument, d.forward(DecoderRows{bad_tok, slot, zero, {}}), "token 61");
    EXPECT_THROW_WITH(std::invalid_argument, d.forward(DecoderRows{tok, bad_slot, zero, {}}), "slot 2");
    const std::vector<std::int32_t> nine(9, 1), nine_zero(9, 0);
    std::vector<std::int32_t> nine_pos(9);
    for (int i = 0; i < 9; ++i) nine_pos[static_cast<std::size_t>(i)] = i;
    EXPECT_THROW_WITH(std::invalid_argument, d.forward(DecoderRows{nine, nine_zero, nine_pos, {}}), "9 rows");
    // The cache and the buffers are in the ledger.
    bool cache = false;
    for (const LedgerEntry& e : ledger.entries()) cache = cache || e.module == "kv_cache.k";
    QVERIFY(cache);
  }

  // ---- the generator --------------------------------------------------------------------

  void batchEqualsSingle() {
    const std::vector<std::vector<std::int32_t>> prompts = {random_tokens(3, 256, 1), random_tokens(70, 256, 2),
                                                            random_tokens(17, 256, 3)};
    GenerateOptions o;
    o.max_new_tokens = 20;
    o.tokenizer_stops = false;
    auto batch = byte_model(3, 150, 32);  // the prefill takes several calls
    const auto together = batch->gen->generate(prompts, o);
    for (std::size_t i = 0; i < prompts.size(); ++i) {
      auto single = byte_model(1);
      const auto alone = single->gen->generate(std::span(prompts).subspan(i, 1), o);
      QCOMPARE(together[i].tokens, alone[0].tokens);
      QCOMPARE(together[i].tokens.size(), std::size_t{20});
      QCOMPARE(together[i].reason, FinishReason::Length);
      QCOMPARE(together[i].text, alone[0].text);
    }
    QCOMPARE(batch->gen->stats().prefill_tokens, std::int64_t{90});
    QCOMPARE(batch->gen->stats().decode_tokens, std::int64_t{3 * 19});
  }

  // A second turn runs only its new tokens, at the positions that follow.
  void turnsContinueTheCache() {
    auto s = byte_model(1);
    GenerateOptions o;
    o.max_new_tokens = 12;
    o.tokenizer_stops = false;
    const std::vector<std::int32_t> p1 = random_tokens(30, 256, 4);
    const auto first = s->gen->generate(one(p1), o);
    QCOMPARE(first[0].reused_tokens, std::int64_t{0});
    std::vector<std::int32_t> p2 = p1;
    p2.insert(p2.end(), first[0].tokens.begin(), first[0].tokens.end());
    const std::vector<std::int32_t> turn = random_tokens(9, 256, 5);
    p2.insert(p2.end(), turn.begin(), turn.end());
    const auto second = s->gen->generate(one(p2), o);
    // Everything but the last answer token (sampled, never fed) was in the cache.
    QCOMPARE(second[0].reused_tokens, std::int64_t(p1.size() + first[0].tokens.size() - 1));
    QCOMPARE(s->gen->stats().prefill_tokens, std::int64_t{10});
    auto fresh = byte_model(1);
    QCOMPARE(second[0].tokens, fresh->gen->generate(one(p2), o)[0].tokens);

    // A prompt that diverges reuses the common start only.
    std::vector<std::int32_t> p3(p1.begin(), p1.begin() + 20);
    p3.push_back((p1[20] + 1) % 256);
    const auto third = s->gen->generate(one(p3), o);
    QCOMPARE(third[0].reused_tokens, std::int64_t{20});
    QCOMPARE(third[0].tokens, fresh->gen->generate(one(p3), o)[0].tokens);

    // Another adapter never reuses the cache.
    const AdapterConfig ac = adapter_config("lora");
    MemoryLedger ledger;
    auto ref = adapted_model(be, ledger, engine_config(260), ac, DType::F32, 1, 1, 8);
    const AdapterSet set(*s->decoder, extract_adapter(*ref, ac, "", ""), "A");
    o.adapter = &set;
    QCOMPARE(s->gen->generate(one(p3), o)[0].reused_tokens, std::int64_t{0});
    QCOMPARE(s->gen->generate(one(p3), o)[0].reused_tokens, std::int64_t(p3.size() - 1));
    s->gen->reset();
    QCOMPARE(s->gen->generate(one(p3), o)[0].reused_tokens, std::int64_t{0});
  }

  void samplingIsSeeded() {
    const std::vector<std::vector<std::int32_t>> prompts = {random_tokens(5, 256, 6), random_tokens(9, 256, 7)};
    GenerateOptions o;
    o.max_new_tokens = 24;
    o.tokenizer_stops = false;
    o.sampling.greedy = false;
    o.sampling.temperature = 1.5;
    o.sampling.seed = 42;
    auto s = byte_model(2);
    const auto a = s->gen->generate(prompts, o);
    const auto b = s->gen->generate(prompts, o);
    QCOMPARE(a[0].tokens, b[0].tokens);
    QCOMPARE(a[1].tokens, b[1].tokens);
    // A sequence's draws are its own: alone it samples the same.
    QCOMPARE(s->gen->generate(std::span(prompts).first(1), o)[0].tokens, a[0].tokens);
    o.sampling.seed = 43;
    const auto c = s->gen->generate(prompts, o);
    QVERIFY(c[0].tokens != a[0].tokens || c[1].tokens != a[1].tokens);
    // top_k = 1 is greedy.
    o.sampling.top_k = 1;
    const auto k1 = s->gen->generate(prompts, o);
    GenerateOptions g = o;
    g.sampling = SamplingConfig{};
    QCOMPARE(k1[0].tokens, s->gen->generate(prompts, g)[0].tokens);
  }

  void samplerFilters() {
    // Probabilities at T = 1: 0.41, 0.37, 0.14, 0.05, 0.02, 0.01 (ids 0..5).
    std::vector<float> logits = {3.0f, 2.9f, 1.9f, 0.9f, 0.0f, -0.7f};
    std::vector<double> p(logits.size());
    double z = 0;
    for (std::size_t i = 0; i < logits.size(); ++i) z += p[i] = std::exp(logits[i]);
    for (double& x : p) x /= z;
    auto frequencies = [&](SamplingConfig sc) {
      sc.greedy = false;
      Sampler s(sc, 6, 0);
      std::vector<double> f(6, 0);
      const int n = 20000;
      for (int i = 0; i < n; ++i) {
        std::vector<float> l = logits;
        f[static_cast<std::size_t>(s.next(l))] += 1.0 / n;
      }
      return f;
    };
    auto expect_kept = [&](const std::vector<double>& f, std::size_t kept, const char* what) {
      double mass = 0;
      for (std::size_t i = 0; i < kept; ++i) mass += p[i];
      for (std::size_t i = 0; i < f.size(); ++i) {
        const double want = i < kept ? p[i] / mass : 0.0;
        QVERIFY2(std::abs(f[i] - want) < 0.015, (std::string(what) + ": id " + std::to_string(i) + " drawn " +
                                                 std::to_string(f[i]) + ", expected " + std::to_string(want))
                                                    .c_str());
      }
    };
    expect_kept(frequencies(SamplingConfig{}), 6, "plain");
    SamplingConfig k;
    k.top_k = 2;
    expect_kept(frequencies(k), 2, "top_k 2");
    SamplingConfig tp;
    tp.top_p = 0.8;  // 0.41 + 0.37 < 0.8: the third joins
    expect_kept(frequencies(tp), 3, "top_p 0.8");
    tp.top_p = 0.4;
    expect_kept(frequencies(tp), 1, "top_p 0.4");
    SamplingConfig mp;
    mp.min_p = 0.3;  // 0.14 / 0.41 > 0.3 keeps id 2; 0.05 / 0.41 does not
    expect_kept(frequencies(mp), 3, "min_p 0.3");
    SamplingConfig t;
    t.temperature = 0.5;
    const auto ft = frequencies(t);
    double zt = 0;
    for (float l : logits) zt += std::exp(2 * l);
    QVERIFY(std::abs(ft[0] - std::exp(6.0) / zt) < 0.015);

    // Repetition penalty (CTRL, as transformers): positive logits divided, negative multiplied.
    SamplingConfig r;
    r.repetition_penalty = 1.5;
    Sampler greedy(r, 6, 0);
    greedy.add_context(0);
    std::vector<float> l = logits;
    QCOMPARE(greedy.next(l), 1);
    QCOMPARE(l[0], 2.0f);
    std::vector<float> neg = {-1.0f, -1.2f, -3.0f, -4.0f, -5.0f, -6.0f};
    QCOMPARE(greedy.next(neg), 1);
    QCOMPARE(neg[0], -1.5f);
    // Greedy ties go to the lowest id, as torch.argmax.
    Sampler plain(SamplingConfig{}, 6, 0);
    std::vector<float> tie = {0.0f, 2.0f, 1.0f, 2.0f, 0.0f, 0.0f};
    QCOMPARE(plain.next(tie), 1);
  }

  void stopsAndStreaming() {
    auto s = byte_model(1);
    const std::vector<std::vector<std::int32_t>> prompt = {random_tokens(12, 256, 9)};
    GenerateOptions o;
    o.max_new_tokens = 40;
    o.tokenizer_stops = false;
    const Completion ref = s->gen->generate(prompt, o)[0];
    QCOMPARE(ref.tokens.size(), std::size_t{40});

    // A stop id ends the answer at its first appearance, the id included.
    o.stop_ids = {ref.tokens[5]};
    const std::size_t first = static_cast<std::size_t>(std::find(ref.tokens.begin(), ref.tokens.end(), ref.tokens[5]) - ref.tokens.begin());
    const Completion by_id = s->gen->generate(prompt, o)[0];
    QCOMPARE(by_id.reason, FinishReason::Stop);
    QCOMPARE(by_id.tokens, std::vector<std::int32_t>(ref.tokens.begin(), ref.tokens.begin() + static_cast<std::ptrdiff_t>(first) + 1));
    TextStream before(bytes, {});
    for (std::size_t i = 0; i < first; ++i) before.push(ref.tokens[i]);
    before.finish();
    QCOMPARE(by_id.text, std::string(before.text()));
    o.stop_ids.clear();

    // A stop string of three characters from the middle of the answer (so
    // over several byte tokens): the text ends before its first appearance,
    // and no streamed delta ever showed any of it.
    std::size_t at = 0;
    for (int chars = 0; chars < 4; ++chars) at += data::utf8_length(ref.text, at);
    std::size_t len = 0;
    for (int chars = 0; chars < 3; ++chars) len += data::utf8_length(ref.text, at + len);
    const std::string stop = ref.text.substr(at, len);
    o.stop_strings = {stop};
    std::string streamed;
    int events = 0, finished = 0;
    o.on_token = [&](const TokenEvent& e) {
      QVERIFY(valid_utf8(e.text));
      streamed += e.text;
      ++events;
      finished += e.finished;
    };
    const Completion by_string = s->gen->generate(prompt, o)[0];
    QCOMPARE(by_string.reason, FinishReason::StopString);
    QCOMPARE(by_string.text, ref.text.substr(0, ref.text.find(stop)));
    QCOMPARE(streamed, by_string.text);
    QCOMPARE(finished, 1);
    QCOMPARE(events, static_cast<int>(by_string.tokens.size()) + 1);
    QVERIFY(by_string.tokens.size() < ref.tokens.size());
    QCOMPARE(by_string.tokens, std::vector<std::int32_t>(ref.tokens.begin(), ref.tokens.begin() + static_cast<std::ptrdiff_t>(by_string.tokens.size())));

    // Without stops the streamed text is the whole answer.
    o.stop_strings.clear();
    streamed.clear();
    const Completion whole = s->gen->generate(prompt, o)[0];
    QCOMPARE(streamed, whole.text);
    QCOMPARE(whole.text, ref.text);
  }

  void textStream() {
    auto push_all = [&](TextStream& ts, const std::string& s) {
      std::string out;
      for (unsigned char c : s) out += ts.push(c);
      return out;
    };
    {  // a character split over two tokens is held until complete
      TextStream ts(bytes, {});
      QCOMPARE(std::string(ts.push(0xC3)), std::string());
      QCOMPARE(std::string(ts.push(0xA9)), std::string("\xC3\xA9"));
      QCOMPARE(std::string(ts.push(0xFF)), std::string("\xEF\xBF\xBD"));  // never valid: U+FFFD
      QCOMPARE(std::string(ts.push(0xE2)), std::string());
      QCOMPARE(std::string(ts.finish()), std::string("\xEF\xBF\xBD"));   // left unfinished
      QCOMPARE(std::string(ts.text()), std::string("\xC3\xA9\xEF\xBF\xBD\xEF\xBF\xBD"));
    }
    {  // a stop string's start is held back until it diverges or completes
      TextStream ts(bytes, {"END", "\xC3\xA9!"});
      QCOMPARE(push_all(ts, "abcEN"), std::string("abc"));
      QCOMPARE(std::string(ts.push('x')), std::string("ENx"));
      QCOMPARE(push_all(ts, "yE"), std::string("y"));
      QCOMPARE(push_all(ts, "ND more"), std::string());
      QVERIFY(ts.stopped());
      QCOMPARE(ts.stop_string(), std::string("END"));
      QCOMPARE(std::string(ts.text()), std::string("abcENxy"));
    }
    {  // a multi-byte stop string over tokens that split its first character
      TextStream ts(bytes, {"\xC3\xA9!"});
      QCOMPARE(push_all(ts, "ok \xC3"), std::string("ok "));
      QCOMPARE(std::string(ts.push(0xA9)), std::string());
      QCOMPARE(std::string(ts.push('!')), std::string());
      QVERIFY(ts.stopped());
      QCOMPARE(std::string(ts.text()), std::string("ok "));
    }
    {  // special tokens add no text
      TextStream ts(bytes, {});
      QCOMPARE(std::string(ts.push(data::ByteTokenizer::kBos)), std::string());
      QCOMPARE(std::string(ts.push('a')), std::string("a"));
    }
  }

  void cancelFromAnotherThread() {
    auto s = byte_model(1);
    GenerateOptions o;
    o.max_new_tokens = 100;
    o.tokenizer_stops = false;
    std::atomic<bool> cancel{false};
    std::atomic<int> seen{0};
    o.cancel = &cancel;
    // The third token waits until the other thread has cancelled: the check
    // before the next forward call sees it.
    o.on_token = [&](const TokenEvent& e) {
      if (e.finished || ++seen != 3) return;
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
      while (!cancel && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
    };
    std::thread canceller([&] {
      while (seen < 3) std::this_thread::yield();
      cancel = true;
    });
    const auto r = s->gen->generate(one(random_tokens(8, 256, 1)), o);
    canceller.join();
    QCOMPARE(r[0].reason, FinishReason::Cancelled);
    QCOMPARE(r[0].tokens.size(), std::size_t{3});
    // Cancelled before anything ran: no token.
    QCOMPARE(s->gen->generate(one(random_tokens(8, 256, 2)), o)[0].tokens.size(), std::size_t{0});
  }

  void contextFull() {
    auto s = byte_model(1, 20);
    GenerateOptions o;
    o.max_new_tokens = 10;
    o.tokenizer_stops = false;
    // 18 prompt tokens + 2 fed answer tokens fill the 20 positions; the third answer token cannot be fed.
    const auto r = s->gen->generate(one(random_tokens(18, 256, 3)), o);
    QCOMPARE(r[0].reason, FinishReason::Context);
    QCOMPARE(r[0].tokens.size(), std::size_t{3});
    const auto full = s->gen->generate(one(random_tokens(20, 256, 4)), o);
    QCOMPARE(full[0].tokens.size(), std::size_t{1});
  }

  void generatorErrors() {
    auto s = byte_model(2, 20);
    GenerateOptions o;
    const std::vector<std::vector<std::int32_t>> none, empty = {{}}, three = {{1}, {2}, {3}};
    EXPECT_THROW_WITH(DataError, s->gen->generate(none, o), "no prompt");
    EXPECT_THROW_WITH(DataError, s->gen->generate(empty, o), "the prompt is empty");
    EXPECT_THROW_WITH(DataError, s->gen->generate(three, o), "3 prompts");
    EXPECT_THROW_WITH(DataError, s->gen->generate(one(random_tokens(21, 256, 1)), o),
                      "21 tokens, more than the context of 20 tokens");
    EXPECT_THROW_WITH(DataError, s->gen->generate(std::vector<std::vector<std::int32_t>>{{1}, {260}}, o),
                      "prompt 2 holds token id 260");
    o.max_new_tokens = 0;
    EXPECT_THROW_WITH(ConfigError, s->gen->generate(std::vector<std::vector<std::int32_t>>{{1}}, o),
                      "generate.max_new_tokens");
    o.max_new_tokens = 4;
    o.sampling.greedy = false;
    o.sampling.top_p = 1.5;
    EXPECT_THROW_WITH(ConfigError, s->gen->generate(std::vector<std::vector<std::int32_t>>{{1}}, o), "sampling.top_p");
    o.sampling.top_p = 1;
    o.sampling.temperature = 0;
    EXPECT_THROW_WITH(ConfigError, s->gen->generate(std::vector<std::vector<std::int32_t>>{{1}}, o),
                      "sampling.temperature");
    o.sampling = SamplingConfig{};
    o.stop_strings = {""};
    EXPECT_THROW_WITH(ConfigError, s->gen->generate(std::vector<std::vector<std::int32_t>>{{1}}, o), "generate.stop");
  }

  // ---- against transformers ------------------------------------------------------------

  // ---- predictions ------------------------------------------------------------------

  void rougeL() {
    // LCS "the cat on the mat": 5 of 6 words each way.
    QVERIFY(std::abs(rouge_l("the cat sat on the mat", "the cat is on the mat") - 5.0 / 6) < 1e-12);
    // LCS 2 ("a c"): P = 2/2, R = 2/4.
    QVERIFY(std::abs(rouge_l("a c", "a b c d") - 2 * 1.0 * 0.5 / 1.5) < 1e-12);
    QCOMPARE(rouge_l("  same\twords\n", "same words"), 1.0);
    QCOMPARE(rouge_l("x y", "a b"), 0.0);
    QCOMPARE(rouge_l("", "a"), 0.0);
    QCOMPARE(rouge_l(" ", ""), 1.0);
  }

  // Each example's loss is the mean cross-entropy of its completion and eos
  // under the adapted model (recomputed here in float64 from the training
  // model's logits, so equal to float32 rounding); each answer is the one generated for that prompt
  // alone, however the batches fall.
  void predictScoresEachExample() {
    const ModelConfig c = engine_config(260);
    const AdapterConfig ac = adapter_config("lora");
    MemoryLedger ledger;
    auto ref = adapted_model(be, ledger, c, ac, DType::F64, 1, 150, 31);
    const AdapterState state = extract_adapter(*ref, ac, "lora-workbench/engine", "");
    load_adapter(*ref, state, "rounded");
    // Generation runs float32 models: the base is the reference's, rounded.
    auto base = std::make_unique<Model>(c, Model::Mode::Frozen, DType::F32);
    base->materialize(be, ledger, 1, 1);
    copy_base_weights(*ref, *base);
    std::vector<data::Example> examples;
    const char* pairs[][2] = {{"abc", "def"}, {"hello there", "x"}, {"q", "a longer answer here"}, {"1+1=", "2"},
                              {"name:", "lora"}};
    for (const auto& p : pairs) examples.push_back(data::make_example(bytes, p[0], p[1]));
    PredictOptions o;
    o.batch = 2;
    o.extra_tokens = 3;
    std::vector<std::int64_t> progress;
    o.progress = [&](std::int64_t done, std::int64_t total) {
      QCOMPARE(total, std::int64_t{5});
      progress.push_back(done);
    };
    const std::vector<Prediction> rows = predict(*base, "", &state, "lora", bytes, examples, o);
    QCOMPARE(rows.size(), examples.size());
    QCOMPARE(progress, (std::vector<std::int64_t>{2, 4, 5}));

    Decoder d(*base, DecoderLimits{1, 150, 0}, ledger);
    const AdapterSet set(d, state, "lora");
    Generator gen(d, bytes);
    for (std::size_t i = 0; i < examples.size(); ++i) {
      const data::Example& e = examples[i];
      const auto T = static_cast<std::int64_t>(e.tokens.size());
      const auto prompt_len = static_cast<std::int64_t>(e.prompt_length());
      const std::vector<double> logits = full_logits(*ref, be, {e.tokens}, T);
      double sum = 0;
      for (std::int64_t t = prompt_len - 1; t + 1 < T; ++t) {
        const double* row = logits.data() + t * c.vocab;
        const double top = *std::max_element(row, row + c.vocab);
        double z = 0;
        for (int v = 0; v < c.vocab; ++v) z += std::exp(row[v] - top);
        sum += top + std::log(z) - row[e.tokens[static_cast<std::size_t>(t + 1)]];
      }
      const double want = sum / static_cast<double>(T - prompt_len);
      QVERIFY2(std::abs(rows[i].loss - want) < 1e-5 * want, (std::to_string(rows[i].loss) + " vs " + std::to_string(want)).c_str());
      QCOMPARE(rows[i].prompt, std::string(pairs[i][0]));
      QCOMPARE(rows[i].reference, std::string(pairs[i][1]));

      GenerateOptions g;
      g.max_new_tokens = static_cast<int>(T - prompt_len) + o.extra_tokens;
      g.adapter = &set;
      gen.reset();
      const std::vector<std::vector<std::int32_t>> prompt = {{e.tokens.begin(), e.tokens.begin() + prompt_len}};
      QCOMPARE(rows[i].prediction, gen.generate(prompt, g)[0].text);
      QCOMPARE(rows[i].rouge_l, rouge_l(rows[i].prediction, rows[i].reference));
      QCOMPARE(rows[i].exact, rows[i].prediction == rows[i].reference);
    }
    const PredictionSummary sum = summarize(rows);
    QCOMPARE(sum.examples, std::int64_t{5});
    double mean_loss = 0;
    for (const Prediction& r : rows) mean_loss += r.loss / 5;
    QVERIFY(std::abs(sum.loss - mean_loss) < 1e-12);

    // The base alone scores differently; bad inputs are named.
    const std::vector<Prediction> plain = predict(*base, "", nullptr, "base", bytes, examples, o);
    QVERIFY(std::abs(plain[0].loss - rows[0].loss) > 1e-6);
    std::vector<data::Example> bad = {examples[0], data::Example{{1, 2, 3}, {0, 0, 0}}};  // nothing scored: no completion
    EXPECT_THROW_WITH(DataError, predict(*base, "", &state, "lora", bytes, bad, o), "example 2 has no prompt or no completion");
    AdapterState other = state;
    other.base_fingerprint = "0123456789abcdef";
    EXPECT_THROW_WITH(FormatError, predict(*base, "fedcba9876543210", &other, "mine", bytes, examples, o),
                      "trained on another base model");
    // Cancelled before it starts: nothing predicted.
    std::atomic<bool> stop{true};
    o.cancel = &stop;
    QVERIFY(predict(*base, "", &state, "lora", bytes, examples, o).empty());
  }

  void greedyMatchesTransformers_data() {
    QTest::addColumn<QString>("variant");
    QTest::addColumn<bool>("merged");
    for (const char* v : {"base", "lora", "dora", "adalora"}) QTest::newRow(v) << v << false;
    for (const char* v : {"lora", "dora", "adalora"})
      QTest::newRow((std::string(v) + " merged").c_str()) << v << true;
  }
  void greedyMatchesTransformers() {
    QFETCH(QString, variant);
    QFETCH(bool, merged);
    const json g = golden();
    const auto prompts = golden_prompts(g);
    const json& want = g.at(variant.toStdString());
    MemoryLedger ledger;
    const ModelConfig c = io::read_hf_config(kGolden / "tiny_llama");
    QCOMPARE(c.tokenizer, std::string("byte"));
    auto base = std::make_unique<Model>(c, Model::Mode::Frozen);
    base->materialize(be, ledger, 1, 1);
    io::import_hf_weights(*base, kGolden / "tiny_llama");
    std::optional<AdapterState> state;
    if (variant != "base") state = io::read_peft_folder(kGolden / variant.toStdString(), &c);
    std::unique_ptr<Model> model = merged ? merged_model(*base, *state, ledger) : std::move(base);
    Decoder d(*model, DecoderLimits{static_cast<std::int64_t>(prompts.size()), 64, 0}, ledger);
    std::optional<AdapterSet> set;
    if (state && !merged) set.emplace(d, *state, variant.toStdString());
    Generator gen(d, bytes);
    GenerateOptions o;
    o.max_new_tokens = g.at("max_new_tokens").get<int>();
    o.tokenizer_stops = false;  // the golden has no eos
    o.adapter = set ? &*set : nullptr;
    const auto batch = gen.generate(prompts, o);
    for (std::size_t i = 0; i < prompts.size(); ++i) {
      QCOMPARE(batch[i].tokens, want.at("batch")[i].get<std::vector<std::int32_t>>());
      gen.reset();
      const auto single = gen.generate(std::span(prompts).subspan(i, 1), o);
      QCOMPARE(single[0].tokens, want.at("single")[i].get<std::vector<std::int32_t>>());
    }
  }

  // SmolLM2-135M-Instruct (the GGUF of the README's `fetch smollm2`): a chat
  // rendered with the file's own template, tokenized by its own vocabulary,
  // answered greedily, against transformers loading the same file.
  void smollm2MatchesTransformers() {
    const fs::path path = smollm2_path();
    if (!fs::exists(path))
      QSKIP(qPrintable(QString("%1 not found (set LWB_SMOLLM2_GGUF or put it in %2)")
                           .arg(QString::fromStdString(path.filename().string()),
                                QString::fromStdString((user_data_dir() / "models").string()))));
    std::ifstream in(kGolden / "smollm2_greedy.json");
    const json g = json::parse(in);
    const format::GgufFile f = format::GgufFile::open(path);
    // The file's own vocabulary and template, as the generate command reads them.
    const ResolvedSource source = resolve_base(path.string(), user_data_dir(), "LWB_SMOLLM2_GGUF");
    const auto tokenizer = load_tokenizer(source);
    const std::optional<data::ChatTemplate> tmpl = load_chat_template(source, "auto", *tokenizer);
    QVERIFY(tmpl);
    std::vector<data::ChatMessage> messages;
    for (const json& m : g.at("messages")) messages.push_back({m.at("role"), m.at("content")});
    data::ChatOptions co;
    co.add_generation_prompt = true;
    const std::string text = tmpl->render(messages, co);
    QCOMPARE(text, g.at("prompt_text").get<std::string>());
    const std::vector<std::int32_t> ids = tokenizer->encode(text, {.add_special = false, .parse_special = true});
    QCOMPARE(ids, g.at("prompt_ids").get<std::vector<std::int32_t>>());

    MemoryLedger ledger;
    Model model(io::read_gguf_config(f), Model::Mode::Frozen);
    model.materialize(be, ledger, 1, 1);
    io::import_gguf_weights(model, f);
    // Decode steps on the file's Q4_1 and Q8_0 blocks, as the generate command runs them.
    const auto small_batch = DecodeWeights::make(model, &f, ledger);
    QVERIFY(small_batch);
    QCOMPARE(small_batch->quantized_matrices(), kTargetCount * model.config().layers + 1);
    Decoder d(model, DecoderLimits{1, 256, 0}, ledger, small_batch);
    Generator gen(d, *tokenizer);
    GenerateOptions o;
    const auto want = g.at("generated").get<std::vector<std::int32_t>>();
    const auto margins = g.at("margins").get<std::vector<double>>();
    o.max_new_tokens = static_cast<int>(want.size());
    o.tokenizer_stops = false;
    const Completion got = gen.generate(one(ids), o)[0];
    std::size_t agree = 0;
    while (agree < want.size() && agree < got.tokens.size() && got.tokens[agree] == want[agree]) ++agree;
    // Up to the first step transformers itself finds close (its two best
    // logits within 1e-2), float differences must not change a token.
    std::size_t clear = 0;
    while (clear < margins.size() && margins[clear] > 1e-2) ++clear;
    qInfo("SmolLM2-135M greedy: %zu of %zu tokens agree with transformers (the first near tie at step %zu); "
          "prefill %.1f tok/s, decode %.1f tok/s here; answer: %s",
          agree, want.size(), clear, gen.stats().prefill_tokens / gen.stats().prefill_seconds,
          gen.stats().decode_tokens / gen.stats().decode_seconds, got.text.c_str());
    QVERIFY2(agree >= clear, (std::to_string(agree) + " < " + std::to_string(clear)).c_str());
  }
};

QTEST_APPLESS_MAIN(TestInfer)
#include "test_infer.moc"
