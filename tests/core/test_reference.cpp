// The engine against Hugging Face transformers + PEFT (llm.c's test_gpt2
// pattern). tests/reference/make_reference.py builds a tiny LLaMA (hidden 32,
// 2 layers, 4 heads / 2 kv heads, vocab 64) in float64, puts LoRA, rsLoRA,
// DoRA or AdaLoRA on all seven linears with random non-zero adapter tensors,
// and dumps base weights, adapter tensors (PEFT keys), a batch, the logits,
// the loss, every adapter gradient and the losses of ten AdamW steps to
// tests/data/reference/<kind>.safetensors. Here the engine loads the same
// tensors on the CPU backend, in F64 and in F32, and must reproduce all of it.
//
// PiSSA (init_lora_weights="pissa"): the engine initialises from the
// original base and is compared with PEFT's A, B and residual (sign-aligned
// per singular triplet; PEFT runs the SVD in float32); then PEFT's exact
// values are loaded and the rest compares as for the other kinds, and the
// trained adapter's conversion to a rank-2r LoRA of the original base is
// compared with what PEFT's save_pretrained(path_initial_model_for_weight_conversion)
// wrote.
//
// VeRA (peft_type VERA): the shared projections come from the dump (PEFT's
// float64 draws) like every adapter tensor; besides the rows above, the
// engine's generator must give PEFT's projections for the key bit for bit
// (float32 and float64), a folder PEFT saved after training must load here
// with the trained model's logits, and the folders the engine writes
// (vera_ours/, vera_ours_noproj/ without projections) must give PEFT's
// logits when PEFT loads them (the script records those).
//
// Conventions bridged here:
//  - HF labels are shifted inside the loss (logits[:, t] scored against
//    labels[:, t + 1]); our targets are aligned with the inputs, so
//    targets[b, t] = labels[b, t + 1] (-100 -> -1) and targets[b, T - 1] = -1.
//  - PEFT keys are "base_model.model." + hf_name() + "." + suffix, the
//    suffixes being what adapter_tensors() returns.
//  - AdaLoRA's orthogonal regulariser is not part of Model::loss: it comes from
//    AdaLoraController::regularize(), which adds its gradient to the grads.
//    PEFT adds it to the loss whenever labels are given; the dump holds both
//    the cross-entropy alone (loss_ce) and PEFT's total (loss_total).
#include <QtTest>

#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>

#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/adapters/adalora.h"
#include "core/adapters/adalora_allocator.h"
#include "core/adapters/adapter_state.h"
#include "core/adapters/attach.h"
#include "core/adapters/variant.h"
#include "core/adapters/vera.h"
#include "core/cpu/cpu_backend.h"
#include "core/io/peft.h"
#include "core/format/safetensors.h"
#include "core/model/model.h"
#include "core/model/weights_init.h"
#include "core/optim/adamw.h"

using namespace lwb;

namespace {

// Tolerances on relative errors ||engine - reference|| / ||reference||.
//
// F64: the dump is float64 end to end (the script replaces HF's four float32
// islands - RoPE angles, RMSNorm statistics, eager softmax, the loss's
// .float() - by the same formulas in float64, and records how far stock HF
// is from that: ~1e-7 on the logits). What remains is float64 round-off
// through two layers and different summation orders (OpenBLAS vs torch):
// measured 5e-16..3e-15 on everything, ten AdamW steps included. 1e-10 leaves
// five orders of margin and still catches what is not round-off (measured by
// editing a copy of the dump): AdaLoRA without the +1e-5 of
// alpha / (ranknum + 1e-5) gives 1.3e-6 on the logits, rope_theta off by
// one part in 1e7 gives 2e-10..1e-9.
struct Tolerances {
  double logits, loss, grads, train;
};
constexpr Tolerances kF64{1e-10, 1e-10, 1e-10, 1e-10};
// A dump made with --stock (HF's float32 islands kept) is float32-accurate
// only: measured 8e-8..1.3e-7 on logits, up to 8.5e-7 on a gradient tensor.
constexpr Tolerances kF64Stock{2e-6, 2e-6, 2e-6, 2e-6};
// F32: float32 round-off (6e-8 per operation) over reductions of up to 64
// terms and two layers: measured 2.4e-7..3.1e-7 on logits, up to 1.7e-6 on
// one gradient tensor (AdaLoRA's lora_E, a sum over a whole row of A and a
// column of B). Training losses: up to 1.2e-5 for rsLoRA (scaling 4, so a
// parameter error moves the output twice as far as with LoRA) and ~1e-6 for
// the others; AdamW's m / sqrt(v) passes gradient errors on unshrunk for
// elements whose gradient is tiny. 1e-4, the usual float32 budget, is 8x the
// worst of these; a wrong formula shows up at 1e-3 or more (a scaling or
// convention error moves logits by whole percent).
constexpr Tolerances kF32{1e-4, 1e-4, 1e-4, 1e-4};
// PiSSA's initialisation against PEFT's float32 one (see matches_peft).
constexpr double kPissaInit = 1e-4;

const std::vector<std::string> kKinds = {"lora", "rslora", "dora", "adalora", "pissa", "vera"};

double rel_error(const std::vector<double>& a, const std::vector<double>& ref) {
  double d2 = 0, r2 = 0;
  for (std::size_t i = 0; i < ref.size(); ++i) {
    d2 += (a[i] - ref[i]) * (a[i] - ref[i]);
    r2 += ref[i] * ref[i];
  }
  if (r2 == 0) return d2 == 0 ? 0 : INFINITY;
  return std::sqrt(d2 / r2);
}
double rel_error(double a, double ref) { return std::abs(a - ref) / std::abs(ref); }

// Structural mismatches between the dump and the engine (a missing key, a
// wrong shape) end the row with a message.
void require(bool ok, const std::string& message) {
  if (!ok) throw std::runtime_error(message);
}

// One dump file.
struct Reference {
  io::SafetensorsFile file;
  QJsonObject config, model, adapter;
  double loss_ce = 0, loss_total = 0, orth_reg = 0;
  bool float64_reference = true;

  explicit Reference(const std::string& kind)
      : file(io::SafetensorsFile::open(std::string(LWB_TEST_DATA_DIR) + "/reference/" + kind +
                                       ".safetensors")) {
    const auto& meta = file.metadata();
    config = QJsonDocument::fromJson(QByteArray::fromStdString(meta.at("config"))).object();
    model = config["model"].toObject();
    adapter = config["adapter"].toObject();
    loss_ce = std::stod(meta.at("loss_ce"));
    loss_total = std::stod(meta.at("loss_total"));
    orth_reg = std::stod(meta.at("orth_reg"));
    float64_reference = config["float64_islands_patched"].toBool(false);
  }

  // F64 tensors at full precision (read_f32 would round them).
  std::vector<double> f64(const std::string& name) const {
    const io::StTensorInfo& info = file.at(name);
    if (info.dtype != io::StDType::F64) throw std::runtime_error(name + " is not F64");
    std::vector<double> out(static_cast<std::size_t>(info.numel()));
    const auto bytes = file.bytes(info);
    std::memcpy(out.data(), bytes.data(), bytes.size());
    return out;
  }
  std::vector<std::int64_t> i64(const std::string& name) const {
    const io::StTensorInfo& info = file.at(name);
    if (info.dtype != io::StDType::I64) throw std::runtime_error(name + " is not I64");
    std::vector<std::int64_t> out(static_cast<std::size_t>(info.numel()));
    const auto bytes = file.bytes(info);
    std::memcpy(out.data(), bytes.data(), bytes.size());
    return out;
  }
  std::vector<std::int64_t> shape(const std::string& name) const { return file.at(name).shape; }

  ModelConfig model_config() const {
    ModelConfig c;
    c.name = "peft-reference";
    c.hidden = model["hidden_size"].toInt();
    c.intermediate = model["intermediate_size"].toInt();
    c.layers = model["num_hidden_layers"].toInt();
    c.heads = model["num_attention_heads"].toInt();
    c.kv_heads = model["num_key_value_heads"].toInt();
    c.vocab = model["vocab_size"].toInt();
    c.max_seq = model["max_position_embeddings"].toInt();
    c.rope_theta = model["rope_theta"].toDouble();
    c.norm_eps = model["rms_norm_eps"].toDouble();
    c.tie_embeddings = model["tie_word_embeddings"].toBool();
    return c;
  }

  AdapterConfig adapter_config() const {
    AdapterConfig a;
    const std::string kind = config["kind"].toString().toStdString();
    a.targets.clear();
    for (const auto& t : config["targets"].toArray())
      a.targets.push_back(parse_target(t.toString().toStdString(), "targets"));
    a.dropout = adapter["lora_dropout"].toDouble();
    a.alpha = adapter["lora_alpha"].toDouble();
    if (kind == "adalora") {
      a.method = "adalora";
      a.r = adapter["init_r"].toInt();
      a.set_option("adalora.target_r", adapter["target_r"].toInt());
      a.set_option("adalora.orth_reg_weight", adapter["orth_reg_weight"].toDouble());
      a.set_option("adalora.tinit", adapter["tinit"].toInt());
      a.set_option("adalora.tfinal", adapter["tfinal"].toInt());
      a.set_option("adalora.delta_t", adapter["deltaT"].toInt());
      a.set_option("adalora.beta1", adapter["beta1"].toDouble());
      a.set_option("adalora.beta2", adapter["beta2"].toDouble());
    } else if (kind == "pissa") {
      a.method = "pissa";
      a.r = adapter["r"].toInt();
      a.set_option("pissa.randomized", 0);  // init_lora_weights = "pissa": the exact SVD
    } else if (kind == "vera") {
      a.method = "vera";
      a.r = adapter["r"].toInt();
      a.dropout = adapter["vera_dropout"].toDouble();
      a.set_option("vera.projection_prng_key", adapter["projection_prng_key"].toDouble());
      a.set_option("vera.d_initial", adapter["d_initial"].toDouble());
    } else {
      a.method = kind == "dora" ? "dora" : "lora";
      a.r = adapter["r"].toInt();
      a.use_rslora = adapter["use_rslora"].toBool();
    }
    return a;
  }
};

// The dump's batch: HF labels -> aligned targets.
struct Batch {
  std::int64_t B = 0, T = 0, scored = 0;
  std::vector<std::int32_t> inputs, targets;
};
Batch batch_of(const Reference& ref) {
  Batch b;
  const QJsonArray shape = ref.config["batch"].toArray();
  b.B = shape[0].toInt();
  b.T = shape[1].toInt();
  const std::vector<std::int64_t> ids = ref.i64("input_ids"), labels = ref.i64("labels");
  b.inputs.resize(static_cast<std::size_t>(b.B * b.T));
  b.targets.assign(b.inputs.size(), -1);
  for (std::int64_t r = 0; r < b.B; ++r)
    for (std::int64_t t = 0; t < b.T; ++t) {
      const std::size_t i = static_cast<std::size_t>(r * b.T + t);
      b.inputs[i] = static_cast<std::int32_t>(ids[i]);
      if (t + 1 < b.T && labels[i + 1] != -100) {
        b.targets[i] = static_cast<std::int32_t>(labels[i + 1]);
        ++b.scored;
      }
    }
  return b;
}

struct Measured {
  double logits = 0, loss = 0, grads_all = 0, grads_worst = 0, train = 0;
  double init = 0, converted = 0;  // PiSSA: its initialisation, its converted export
  std::string grads_worst_name;
};

}  // namespace

class TestReference : public QObject {
  Q_OBJECT
  CpuBackend be;

  // The engine's PiSSA initialisation against PEFT's: A, B with each
  // singular triplet's sign aligned (an SVD fixes it arbitrarily) and the
  // residual base weights; the worst relative error over the modules.
  double pissa_init_error(Model& m, const Reference& ref) {
    double worst = 0;
    for (int l = 0; l < m.config().layers; ++l)
      for (Target t : kAllTargets) {
        const Linear& lin = m.linear(l, t);
        std::vector<double> a, b;
        for (const AdapterTensorRef& x : lin.adapter_tensors())
          (x.suffix == "lora_A.weight" ? a : b) = download_values(be, x.tensor);
        const std::vector<double> ar = ref.f64(peft_key(lin.hf_name(), "lora_A.weight")),
                                  br = ref.f64(peft_key(lin.hf_name(), "lora_B.weight"));
        const std::size_t in = static_cast<std::size_t>(lin.in()), rank = a.size() / in;
        for (std::size_t j = 0; j < rank; ++j) {
          double dot = 0;
          for (std::size_t c = 0; c < in; ++c) dot += a[j * in + c] * ar[j * in + c];
          const double sign = dot < 0 ? -1 : 1;
          for (std::size_t c = 0; c < in; ++c) a[j * in + c] *= sign;
          for (std::size_t o = 0; o < b.size() / rank; ++o) b[o * rank + j] *= sign;
        }
        worst = std::max({worst, rel_error(a, ar), rel_error(b, br),
                          rel_error(download_values(be, lin.weight), ref.f64("residual." + lin.hf_name() + ".weight"))});
      }
    return worst;
  }

  // The trained adapter as the PiSSA controller keeps it against PEFT's
  // converted file: the config (rank 2r, alpha doubled, a plain LoRA) and
  // every tensor.
  double pissa_conversion_error(const Model& m, const AdapterConfig& ac, const VariantController& ctl,
                                const Reference& ref) {
    AdapterState s = extract_adapter(m, ac, "peft-reference", "");
    ctl.finish_adapter_state(s);
    const QJsonObject conv =
        QJsonDocument::fromJson(QByteArray::fromStdString(ref.file.metadata().at("converted_config"))).object();
    require(s.config.method == "lora" && s.config.r == conv["r"].toInt() &&
                s.config.alpha == conv["lora_alpha"].toDouble() && conv["init_lora_weights"].toBool() &&
                !s.config.use_rslora,
            "converted config: engine r " + std::to_string(s.config.r) + " alpha " +
                std::to_string(s.config.alpha) + ", PEFT " + QJsonDocument(conv).toJson().toStdString());
    double worst = 0;
    for (const auto& [key, tensor] : s.tensors) {
      require(ref.file.find("converted." + key) != nullptr, "converted file lacks " + key);
      worst = std::max(worst, rel_error(std::vector<double>(tensor.values.begin(), tensor.values.end()),
                                        ref.f64("converted." + key)));
    }
    return worst;
  }

  // F64 logits of the dump's base with `state` loaded, on the dump's batch.
  std::vector<double> logits_with(const Reference& ref, const AdapterState& state) {
    const Batch batch = batch_of(ref);
    MemoryLedger ledger;
    Model m(ref.model_config(), model_mode_for(state.config), DType::F64);
    attach_adapters(m, state.config);
    m.materialize(be, ledger, batch.B, batch.T);
    for (const auto& [name, t] : m.named_base_weights()) upload_values(be, t, ref.f64(name));
    m.init_adapters(0);
    load_adapter(m, state, "adapter");
    m.set_batch(batch.inputs.data(), batch.targets.data(), batch.B, batch.T);
    m.forward(false, 0);
    return download_values(be, m.logits());
  }

  // The engine's own VeRA adapter for the dump's model: projections from the
  // dump's key by the engine's generator, vectors 0.5 N(0, 1) from fixed
  // seeds (the folders vera_ours*/ hold it as write_peft_folder wrote it).
  AdapterState our_vera_adapter(const Reference& ref, bool save_projection) {
    AdapterConfig ac = ref.adapter_config();
    ac.set_option("vera.save_projection", save_projection);
    MemoryLedger ledger;
    Model m(ref.model_config(), model_mode_for(ac), DType::F32);
    attach_adapters(m, ac);
    m.materialize(be, ledger, 1, 1);
    m.init_adapters(0);
    AdapterState s = extract_adapter(m, ac, "peft-reference", "");
    std::uint64_t seed = 100;
    for (auto& [key, t] : s.tensors)
      if (key.find("vera_lambda") != std::string::npos) {
        const std::vector<double> v = normal_values(t.numel(), 0.5, seed++);
        t.values.assign(v.begin(), v.end());
      }
    return s;
  }

  Measured run(const std::string& kind, DType dtype) {
    const Reference ref(kind);
    const ModelConfig mc = ref.model_config();
    const AdapterConfig ac = ref.adapter_config();
    const Batch batch = batch_of(ref);
    const std::int64_t B = batch.B, T = batch.T, scored = batch.scored;
    const std::int64_t total_steps = kind == "adalora" ? ref.adapter["total_step"].toInt() : -1;
    ac.validate(mc, total_steps);

    Measured r;
    MemoryLedger ledger;
    Model m(mc, model_mode_for(ac), dtype);
    attach_adapters(m, ac);
    m.materialize(be, ledger, B, T);

    // Base weights by HF name; every base tensor of the dump is used once.
    std::set<std::string> used;
    for (const auto& [name, t] : m.named_base_weights()) {
      const std::vector<double> v = ref.f64(name);
      require(static_cast<std::int64_t>(v.size()) == t.numel(),
              name + ": dump has " + std::to_string(v.size()) + " values, engine " +
                  std::to_string(t.numel()));
      upload_values(be, t, v);
      used.insert(name);
    }
    if (ac.method == "pissa") {
      m.init_adapters(0);
      r.init = pissa_init_error(m, ref);
      for (const auto& [name, t] : m.named_base_weights())
        if (ref.file.find("residual." + name)) upload_values(be, t, ref.f64("residual." + name));
    }
    // Adapter tensors by PEFT key, and the matching gradient slots.
    struct AdapterTensor {
      std::string key;
      Tensor param, grad;
    };
    std::vector<AdapterTensor> adapters;
    for (int l = 0; l < mc.layers; ++l)
      for (Target t : kAllTargets) {
        const Linear& lin = m.linear(l, t);
        for (const AdapterTensorRef& a : lin.adapter_tensors()) {
          const Tensor& tensor = a.tensor;
          const std::string key = a.model_level ? model_level_key(a.suffix) : peft_key(lin.hf_name(), a.suffix);
          const std::vector<std::int64_t> shape = ref.shape(key);
          std::int64_t numel = 1;
          for (std::int64_t d : shape) numel *= d;
          std::string dims;
          for (std::int64_t d : shape) dims += std::to_string(d) + " ";
          require(numel == tensor.numel(),
                  key + ": dump shape [ " + dims + "] vs engine " + tensor.shape.str());
          upload_values(be, tensor, ref.f64(key));
          used.insert(key);
          // Model-level tensors (VeRA's shared projections) are frozen: no gradient.
          if (!a.model_level) adapters.push_back({key, tensor, m.trainable().mirror_of(tensor, m.trainable().grads())});
        }
      }
    for (const io::StTensorInfo& info : ref.file.tensors()) {
      const bool weight = info.name.rfind("model.", 0) == 0 || info.name.rfind("lm_head.", 0) == 0 ||
                          info.name.rfind("base_model.", 0) == 0;
      require(!weight || used.count(info.name), "dump tensor " + info.name + " has no engine counterpart");
    }
    require(!adapters.empty(), "no adapter tensors");

    m.set_batch(batch.inputs.data(), batch.targets.data(), B, T);

    // Optimiser (and AdaLoRA's controller, which needs it) before the first pass.
    AdamWConfig oc;
    const QJsonObject adamw = ref.config["adamw"].toObject();
    oc.lr = adamw["lr"].toDouble();
    oc.beta1 = adamw["betas"].toArray()[0].toDouble();
    oc.beta2 = adamw["betas"].toArray()[1].toDouble();
    oc.eps = adamw["eps"].toDouble();
    oc.weight_decay = adamw["weight_decay"].toDouble();
    oc.grad_clip = 0;  // torch.optim.AdamW does not clip
    AdamW opt(m.trainable(), oc);
    opt.materialize(be, ledger);
    std::unique_ptr<AdaLoraController> ada;
    if (ac.method == "adalora") {
      ada = std::make_unique<AdaLoraController>(ac, total_steps);
      ada->attach(m, opt, ledger);
    }
    // PiSSA's keeps A0, B0 (PEFT's, just loaded) for the conversion.
    std::unique_ptr<VariantController> pissa;
    if (ac.method == "pissa") {
      pissa = make_variant_controller(ac, ScheduleConfig{}, oc.lr, -1, 0);
      pissa->attach(m, opt, ledger);
    }
    // Forward: logits and cross-entropy.
    be.fill(m.trainable().grads().flat(), 0.0);
    m.forward(true, 0);
    r.logits = rel_error(download_values(be, m.logits()), ref.f64("logits"));
    const double ce = m.loss(scored, true);
    r.loss = rel_error(ce, ref.loss_ce);
    // Backward (+ the regulariser's value and gradient).
    m.backward(0);
    double total = ce;
    if (ada) {
      const double reg = ada->regularize();
      total += reg;
      const double expected = ac.option("adalora.orth_reg_weight") * ref.orth_reg;
      qInfo("  %s: orthogonal regulariser %.15g vs PEFT %.15g, relative error %.3e", kind.c_str(),
            reg, expected, rel_error(reg, expected));
      r.loss = std::max(r.loss, rel_error(total, ref.loss_total));
    }
    qInfo("  %s: loss %.15g (cross-entropy %.15g) vs PEFT %.15g (%.15g)", kind.c_str(), total, ce,
          ref.loss_total, ref.loss_ce);
    std::vector<double> all, all_ref;
    for (const AdapterTensor& a : adapters) {
      const std::vector<double> g = download_values(be, a.grad), gr = ref.f64("grad." + a.key);
      const double e = rel_error(g, gr);
      if (e >= r.grads_worst) {
        r.grads_worst = e;
        r.grads_worst_name = a.key;
      }
      all.insert(all.end(), g.begin(), g.end());
      all_ref.insert(all_ref.end(), gr.begin(), gr.end());
    }
    r.grads_all = rel_error(all, all_ref);

    // Ten AdamW steps on the same batch, the loss recorded before each.
    const std::vector<double> losses_ref = ref.f64("train_losses");
    std::vector<double> losses;
    for (std::size_t step = 0; step < losses_ref.size(); ++step) {
      be.fill(m.trainable().grads().flat(), 0.0);
      m.forward(true, step);
      double loss = m.loss(scored, true);
      m.backward(step);
      if (ada) loss += ada->regularize();  // no update_and_allocate: ranks stay init_r
      losses.push_back(loss);
      opt.step(be, oc.lr, opt.grad_norm(be));
    }
    for (std::size_t i = 0; i < losses.size(); ++i)
      r.train = std::max(r.train, rel_error(losses[i], losses_ref[i]));
    qInfo("  %s: training losses %.10f -> %.10f (PEFT %.10f -> %.10f)", kind.c_str(), losses.front(),
          losses.back(), losses_ref.front(), losses_ref.back());
    if (pissa) r.converted = pissa_conversion_error(m, ac, *pissa, ref);
    return r;
  }

 private slots:
  void initTestCase() {
    try {
      const Reference ref("lora");
      const auto& meta = ref.file.metadata();
      qInfo("reference made with %s; stock-precision HF differs from it by %s (logits)",
            meta.at("versions").c_str(), meta.at("stock_precision_logits_rel").c_str());
    } catch (const std::exception& e) {
      QFAIL(qPrintable(QString("reference dump unreadable (tests/reference/make_reference.py "
                               "writes it): %1").arg(e.what())));
    }
  }

  // The engine's generator draws PEFT's projections for the key bit for
  // bit: in float32 (PyTorch's default dtype) and in float64 (the dump's).
  void vera_projections_are_torchs() {
    const Reference ref("vera");
    const AdapterConfig ac = ref.adapter_config();
    const std::vector<std::int64_t> a = ref.shape("base_model.vera_A"), b = ref.shape("base_model.vera_B");
    const auto key = static_cast<std::uint64_t>(ac.option("vera.projection_prng_key"));
    const int r = static_cast<int>(a[0]), max_in = static_cast<int>(a[1]), max_out = static_cast<int>(b[0]);
    const VeraProjections f64 = vera_projections(key, r, max_in, max_out, true),
                          f32 = vera_projections(key, r, max_in, max_out, false);
    QVERIFY(f64.A == ref.f64("base_model.vera_A"));
    QVERIFY(f64.B == ref.f64("base_model.vera_B"));
    const std::vector<float> a32 = ref.file.read_f32("projection_f32.vera_A"),
                             b32 = ref.file.read_f32("projection_f32.vera_B");
    QVERIFY(std::vector<float>(f32.A.begin(), f32.A.end()) == a32);
    QVERIFY(std::vector<float>(f32.B.begin(), f32.B.end()) == b32);
    qInfo("VeRA projections [%d, %d] and [%d, %d] for key %llu: identical to torch's, float32 and float64", r,
          max_in, max_out, r, static_cast<unsigned long long>(key));
  }

  // The adapter PEFT trained and saved (vera_peft/) loads here with the
  // trained model's logits; the folder holds float32 tensors, as a float32
  // PEFT run writes them, so agreement is to float32 rounding.
  void vera_folder_from_peft_loads_with_its_logits() {
    const Reference ref("vera");
    const ModelConfig mc = ref.model_config();
    const AdapterState s =
        io::read_peft_folder(std::string(LWB_TEST_DATA_DIR) + "/reference/vera_peft", &mc);
    QCOMPARE(s.config.method, std::string("vera"));
    QCOMPARE(s.config.r, ref.adapter["r"].toInt());
    const double d = rel_error(logits_with(ref, s), ref.f64("trained_logits"));
    qInfo("PEFT's saved VeRA adapter here vs PEFT's trained logits: %.3e", d);
    // float32 rounding of the saved vectors: ~1e-8 expected.
    QVERIFY2(d < 1e-6, qPrintable(QString::number(d)));
  }

  // The folders the engine writes load in PEFT (the script records PEFT's
  // logits with them) and give the same logits here; without projections
  // PEFT draws them from the key, so that agrees only if the generators do.
  // With LWB_REFERENCE_OUT set, the folders are (re)written there first.
  void vera_folders_we_write_load_in_peft() {
    const Reference ref("vera");
    const ModelConfig mc = ref.model_config();
    const std::string out = qEnvironmentVariable("LWB_REFERENCE_OUT").toStdString();
    if (!out.empty())
      for (const bool projections : {true, false})
        io::write_peft_folder(out + "/" + (projections ? "vera_ours" : "vera_ours_noproj"),
                              our_vera_adapter(ref, projections));
    for (const bool projections : {true, false}) {
      const std::string name = projections ? "vera_ours" : "vera_ours_noproj";
      const AdapterState ours = our_vera_adapter(ref, projections);
      const std::string logits = projections ? "ours.logits" : "ours_noproj.logits";
      if (!ref.file.find(logits))
        QFAIL(qPrintable(QString::fromStdString("the dump has no " + logits +
                                                ": run this test with LWB_REFERENCE_OUT=tests/data/reference, "
                                                "then tests/reference/make_reference.py --kinds vera")));
      // The committed folder is what the engine writes today.
      const AdapterState committed =
          io::read_peft_folder(std::string(LWB_TEST_DATA_DIR) + "/reference/" + name, &mc);
      QCOMPARE(io::peft_config_json(committed), io::peft_config_json(ours));
      for (const auto& [key, t] : ours.tensors) QVERIFY2(committed.tensors.at(key).values == t.values, key.c_str());
      const double d = rel_error(logits_with(ref, committed), ref.f64(logits));
      qInfo("%s: logits here vs PEFT's with the same folder: %.3e", name.c_str(), d);
      // The same float32 numbers on both sides, computed in float64.
      QVERIFY2(d < kF64.logits, qPrintable(QString::number(d)));
    }
  }

  void matches_peft_data() {
    QTest::addColumn<QString>("kind");
    QTest::addColumn<bool>("f64");
    for (const std::string& k : kKinds) {
      QTest::newRow((k + "-f64").c_str()) << QString::fromStdString(k) << true;
      QTest::newRow((k + "-f32").c_str()) << QString::fromStdString(k) << false;
    }
  }

  void matches_peft() {
    QFETCH(QString, kind);
    QFETCH(bool, f64);
    const std::string k = kind.toStdString();
    Measured r;
    Tolerances tol = kF32;
    try {
      if (f64) tol = Reference(k).float64_reference ? kF64 : kF64Stock;
      r = run(k, f64 ? DType::F64 : DType::F32);
    } catch (const std::exception& e) {
      QFAIL(e.what());
    }
    qInfo("%s %s: logits %.3e  loss %.3e  grads %.3e (worst tensor %.3e: %s)  train losses %.3e",
          k.c_str(), f64 ? "F64" : "F32", r.logits, r.loss, r.grads_all, r.grads_worst,
          r.grads_worst_name.c_str(), r.train);
    QVERIFY2(r.logits < tol.logits, qPrintable(QString("logits %1").arg(r.logits)));
    QVERIFY2(r.loss < tol.loss, qPrintable(QString("loss %1").arg(r.loss)));
    QVERIFY2(r.grads_worst < tol.grads,
             qPrintable(QString("gradient of %1: %2").arg(r.grads_worst_name.c_str()).arg(r.grads_worst)));
    QVERIFY2(r.train < tol.train, qPrintable(QString("training losses %1").arg(r.train)));
    if (k == "pissa") {
      qInfo("pissa %s: initialisation vs PEFT's %.3e, converted adapter vs PEFT's %.3e", f64 ? "F64" : "F32",
            r.init, r.converted);
      // PEFT takes the SVD in float32: a singular vector moves by about
      // eps32 · σ1 / (gap to the next σ), measured 5.1e-5 on this random
      // base in F64 and F32 alike; a wrong formula (sqrt(S) without / s, a
      // transposed factor, a lost sign) errs by order 1.
      QVERIFY2(r.init < kPissaInit, qPrintable(QString("PiSSA initialisation %1").arg(r.init)));
      // Both sides hold the converted tensors in float32 (PEFT's file, our
      // AdapterState); in F32 the trained factors also carry the training's error.
      QVERIFY2(r.converted < std::max(tol.train, 1e-6), qPrintable(QString("converted %1").arg(r.converted)));
    }
  }
};

QTEST_APPLESS_MAIN(TestReference)
#include "test_reference.moc"
