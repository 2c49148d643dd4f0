// The trainer's per-step statistics against direct computations: each
// layer's gradient norm from the downloaded gradients, and the weight
// histograms' ranges, counts and moments from the downloaded parameters.
#include <QtTest>

#include <cmath>
#include <map>
#include <nlohmann/json.hpp>

#include "core/adapters/attach.h"
#include "core/cpu/cpu_backend.h"
#include "core/train/step_stats.h"
#include "model_fixtures.h"

using namespace lwb;
using namespace lwb::test;

class TestStepStats : public QObject {
  Q_OBJECT
  CpuBackend be;

 private slots:
  void layerNormsAndHistogramsMatchTheTensors() {
    MemoryLedger ledger;
    AdapterConfig ac;
    ac.method = "lora";
    ac.r = 3;
    ac.targets = {Target::Q, Target::V, Target::Down};
    Model m(micro_config(), Model::Mode::Frozen);
    attach_adapters(m, ac);
    const MicroBatch mb;
    m.materialize(be, ledger, mb.B, mb.T);
    randomise(m, be, 5);
    m.set_batch(mb.inputs.data(), mb.targets.data(), mb.B, mb.T);
    be.fill(m.trainable().grads().flat(), 0.0);
    m.forward(true, 1);
    m.loss(mb.scored, true);
    m.backward(1);

    StepStats stats(m.config().layers, 8);
    std::vector<double> norms;
    stats.layer_grad_norms(be, m.trainable().grads(), norms);
    QCOMPARE(norms.size(), std::size_t(m.config().layers));
    std::vector<double> want(norms.size(), 0.0);
    const TensorArena& grads = m.trainable().grads();
    for (std::size_t i = 0; i < grads.entries().size(); ++i)
      for (double g : download_values(be, grads.slot_tensor(i)))
        want[static_cast<std::size_t>(grads.entries()[i].layer)] += g * g;
    for (std::size_t l = 0; l < norms.size(); ++l) {
      QVERIFY(norms[l] > 0);
      QVERIFY(std::abs(norms[l] - std::sqrt(want[l])) < 1e-9 * std::sqrt(want[l]));
    }

    const VariantEvent h = stats.weight_histogram(be, m.trainable().params(), 42);
    QCOMPARE(h.kind, std::string(kWeightHistogramKind));
    const nlohmann::json j = nlohmann::json::parse(h.payload_json);
    QCOMPARE(j.at("step").get<int>(), 42);
    std::map<std::string, std::vector<double>> values;
    const TensorArena& params = m.trainable().params();
    for (std::size_t i = 0; i < params.entries().size(); ++i) {
      const std::string& module = params.entries()[i].module;
      std::vector<double>& v = values[module.substr(module.rfind('.') + 1)];
      for (double x : download_values(be, params.slot_tensor(i))) v.push_back(x);
    }
    QCOMPARE(j.at("groups").size(), values.size());  // lora_A and lora_B
    for (const auto& g : j.at("groups")) {
      const std::vector<double>& v = values.at(g.at("name").get<std::string>());
      const std::vector<std::int64_t> counts = g.at("counts").get<std::vector<std::int64_t>>();
      QCOMPARE(counts.size(), std::size_t(8));
      std::int64_t n = 0;
      for (std::int64_t c : counts) n += c;
      QCOMPARE(n, static_cast<std::int64_t>(v.size()));
      QCOMPARE(g.at("lo").get<double>(), static_cast<double>(static_cast<float>(*std::min_element(v.begin(), v.end()))));
      QCOMPARE(g.at("hi").get<double>(), static_cast<double>(static_cast<float>(*std::max_element(v.begin(), v.end()))));
      double mean = 0;
      for (double x : v) mean += x;
      mean /= static_cast<double>(v.size());
      QVERIFY(std::abs(g.at("mean").get<double>() - mean) < 1e-9);
      QVERIFY(counts.front() > 0 && counts.back() > 0);  // the extremes land in the end bins
    }
  }
};

QTEST_APPLESS_MAIN(TestStepStats)
#include "test_step_stats.moc"
