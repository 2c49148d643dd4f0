#include "ui/run_compare.h"

#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <algorithm>
#include <cmath>
#include <cctype>
#include <functional>
#include <iterator>
#include <limits>
#include <map>
#include <string_view>

#include "core/adapters/descriptor.h"

namespace lwb::ui {

namespace {

QString num(double v) { return std::isfinite(v) ? QString::number(v, 'g', 10) : QString(); }

double metric_value(const MetricRow& m, RunMetric metric) {
  switch (metric) {
    case RunMetric::TrainLoss: return m.loss;
    case RunMetric::EvalLoss: return m.eval_loss;
    case RunMetric::ExactMatch: return 100 * m.accuracy;
    case RunMetric::GradNorm: return m.grad_norm;
    case RunMetric::LearningRate: return m.lr;
    case RunMetric::TokensPerS: return m.tokens_per_s;
    default: return NAN;
  }
}

QDateTime parse_time(const std::string& iso) { return QDateTime::fromString(QString::fromStdString(iso), Qt::ISODate); }

}  // namespace

QString run_metric_name(RunMetric m) {
  switch (m) {
    case RunMetric::TrainLoss: return QObject::tr("train loss");
    case RunMetric::EvalLoss: return QObject::tr("held-out loss");
    case RunMetric::ExactMatch: return QObject::tr("exact match %");
    case RunMetric::GradNorm: return QObject::tr("gradient norm");
    case RunMetric::LearningRate: return QObject::tr("learning rate");
    case RunMetric::TokensPerS: return QObject::tr("tokens/s");
    case RunMetric::Memory: return QObject::tr("memory (this run's buffers), MiB");
    default: return {};
  }
}

QString x_axis_name(XAxis x) {
  switch (x) {
    case XAxis::Step: return QObject::tr("step");
    case XAxis::RelativeTime: return QObject::tr("relative time (min)");
    default: return QObject::tr("wall time");
  }
}

RunData load_run_data(Store& store, std::int64_t run_id) {
  RunData d;
  const RunDetail detail = store.get_run(run_id);
  d.row = detail.row;
  d.config = ExperimentConfig::from_json(detail.config_json, "run " + std::to_string(run_id));
  d.summary_json = detail.summary_json;
  d.ancestry = store.run_ancestry(run_id);
  // Oldest first: each run's rows up to where its child took over.
  double offset_s = 0;
  QDateTime first_start;
  for (auto it = d.ancestry.rbegin(); it != d.ancestry.rend(); ++it) {
    const std::vector<MetricRow> rows = store.run_metrics(*it);
    const RunRow row = *it == run_id ? d.row : store.get_run(*it).row;
    const QDateTime started = parse_time(row.started);
    if (!first_start.isValid()) first_start = started;
    std::int64_t until = std::numeric_limits<std::int64_t>::max();
    if (std::next(it) != d.ancestry.rend()) {
      const std::vector<MetricRow> child = store.run_metrics(*std::next(it));
      if (!child.empty()) until = child.front().step;
    }
    if (*it == run_id) d.own_from_step = rows.empty() ? 0 : rows.front().step;
    double last_s = offset_s;
    for (const MetricRow& m : rows) {
      if (m.step >= until) break;
      d.metrics.push_back(m);
      const double elapsed = std::isfinite(m.elapsed_s) ? m.elapsed_s : 0;
      d.relative_s.push_back(offset_s + elapsed);
      d.wall_s.push_back(started.isValid() ? static_cast<double>(started.toSecsSinceEpoch()) + elapsed : NAN);
      last_s = offset_s + elapsed;
    }
    offset_s = last_s;
  }
  if (d.ancestry.size() == 1) d.own_from_step = 0;
  for (const MemorySnapshotRow& s : store.run_memory_snapshots(run_id))
    d.ledger_bytes.emplace_back(s.step, static_cast<double>(s.snapshot.total));
  return d;
}

Series run_series(const RunData& run, RunMetric metric, XAxis axis) {
  Series s;
  auto x_of = [&](std::size_t i) {
    switch (axis) {
      case XAxis::Step: return static_cast<double>(run.metrics[i].step);
      case XAxis::RelativeTime: return run.relative_s[i] / 60;
      default: return run.wall_s[i];
    }
  };
  if (metric == RunMetric::Memory) {
    // Snapshots are taken when the ledger changes; a step's time comes from its metrics row.
    for (const auto& [step, bytes] : run.ledger_bytes) {
      const auto it = std::lower_bound(run.metrics.begin(), run.metrics.end(), step,
                                       [](const MetricRow& m, std::int64_t st) { return m.step < st; });
      if (it == run.metrics.end()) continue;
      s.x.push_back(x_of(static_cast<std::size_t>(it - run.metrics.begin())));
      s.y.push_back(bytes / (1024.0 * 1024.0));
    }
    return s;
  }
  for (std::size_t i = 0; i < run.metrics.size(); ++i) {
    const double v = metric_value(run.metrics[i], metric);
    if (!std::isfinite(v) || !std::isfinite(x_of(i))) continue;
    s.x.push_back(x_of(i));
    s.y.push_back(v);
  }
  return s;
}

std::vector<double> smoothed(const std::vector<double>& values, double beta) {
  std::vector<double> out;
  out.reserve(values.size());
  double ema = 0;
  for (std::size_t i = 0; i < values.size(); ++i) {
    ema = beta * ema + (1 - beta) * values[i];
    out.push_back(ema / (1 - std::pow(beta, static_cast<double>(i + 1))));
  }
  return out;
}

std::vector<HparamRow> differing_hparams(const std::vector<ExperimentConfig>& configs) {
  std::vector<HparamRow> rows;
  if (configs.size() < 2) return rows;
  for (const std::string& key : ExperimentConfig::keys()) {
    if (key == "name") continue;
    const AdapterField* field = nullptr;
    for (const AdapterField& f : adapter_fields())
      if (f.key == key) field = &f;
    HparamRow row{key, {}};
    std::vector<std::string> applied;
    for (const ExperimentConfig& c : configs) {
      if (field && !field->applies(c.adapter)) {
        row.values.emplace_back();
        continue;
      }
      row.values.push_back(c.get(key));
      applied.push_back(*row.values.back());
    }
    if (std::adjacent_find(applied.begin(), applied.end(), std::not_equal_to<>()) != applied.end())
      rows.push_back(std::move(row));
  }
  return rows;
}

std::string shell_quote(const std::string& s) {
  const bool plain = !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || std::string_view("-_.,/:=+@%").find(c) != std::string_view::npos;
  });
  if (plain) return s;
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

std::string reproduce_command(const ExperimentConfig& config) {
  std::string best;
  std::vector<std::string> best_sets;
  for (const std::string& preset : experiment_preset_names()) {
    const ExperimentConfig p = experiment_preset(preset);
    std::vector<std::string> sets;
    for (const std::string& key : ExperimentConfig::keys())
      if (config.get(key) != p.get(key)) sets.push_back(key + "=" + config.get(key));
    if (best.empty() || sets.size() < best_sets.size()) {
      best = preset;
      best_sets = std::move(sets);
    }
  }
  std::string cmd = "lora-workbench train --preset " + best;
  for (const std::string& s : best_sets) cmd += " --set " + shell_quote(s);
  return cmd;
}

QString run_csv(const RunData& run) {
  QString out = "step,loss,eval_loss,exact_match,lr,grad_norm,tokens_per_s,elapsed_s,layer_grad_norms\n";
  for (const MetricRow& m : run.metrics) {
    if (m.step < run.own_from_step) continue;
    QStringList layers;
    for (double v : m.layer_grad_norms) layers << num(v);
    out += QString("%1,%2,%3,%4,%5,%6,%7,%8,%9\n")
               .arg(m.step)
               .arg(num(m.loss), num(m.eval_loss), num(m.accuracy), num(m.lr), num(m.grad_norm),
                    num(m.tokens_per_s), num(m.elapsed_s), layers.join(';'));
  }
  return out;
}

QString run_json(const RunData& run) {
  QJsonArray metrics;
  auto value = [](double v) { return std::isfinite(v) ? QJsonValue(v) : QJsonValue(); };
  for (const MetricRow& m : run.metrics) {
    if (m.step < run.own_from_step) continue;
    QJsonObject o{{"step", static_cast<qint64>(m.step)}, {"loss", value(m.loss)}, {"eval_loss", value(m.eval_loss)},
                  {"exact_match", value(m.accuracy)}, {"lr", value(m.lr)}, {"grad_norm", value(m.grad_norm)},
                  {"tokens_per_s", value(m.tokens_per_s)}, {"elapsed_s", value(m.elapsed_s)}};
    if (!m.layer_grad_norms.empty()) {
      QJsonArray layers;
      for (double v : m.layer_grad_norms) layers.append(value(v));
      o["layer_grad_norms"] = layers;
    }
    metrics.append(o);
  }
  const RunRow& r = run.row;
  QJsonObject row{{"id", static_cast<qint64>(r.id)},
                  {"experiment", QString::fromStdString(r.experiment)},
                  {"status", QString::fromStdString(r.status)},
                  {"steps_done", static_cast<qint64>(r.steps_done)},
                  {"started", QString::fromStdString(r.started)},
                  {"ended", QString::fromStdString(r.ended)},
                  {"final_eval_loss", value(r.final_eval_loss)},
                  {"final_exact_match", value(r.final_accuracy)},
                  {"peak_bytes", static_cast<qint64>(r.peak_bytes)}};
  if (r.parent_run_id) row["resumed_from"] = static_cast<qint64>(*r.parent_run_id);
  QJsonObject doc{{"run", row},
                  {"config", QJsonDocument::fromJson(QByteArray::fromStdString(run.config.to_json())).object()},
                  {"reproduce", QString::fromStdString(reproduce_command(run.config))},
                  {"metrics", metrics}};
  if (!run.summary_json.empty())
    doc["summary"] = QJsonDocument::fromJson(QByteArray::fromStdString(run.summary_json)).object();
  return QString::fromUtf8(QJsonDocument(doc).toJson(QJsonDocument::Indented));
}

}  // namespace lwb::ui
