#include "core/store/run_predict.h"

#include <cstdio>

#include "core/common/errors.h"
#include "core/data/instruction_data.h"
#include "core/source/model_source.h"
#include "core/train/data_setup.h"

namespace lwb {

namespace {

// RFC 4180: every text field quoted, quotes doubled.
std::string csv_field(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string csv_number(double v) {
  if (!(v == v)) return "";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

}  // namespace

std::string predictions_csv(std::span<const infer::Prediction> rows) {
  std::string out = "index,prompt,reference,prediction,loss,exact_match,rouge_l\n";
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const infer::Prediction& r = rows[i];
    out += std::to_string(i + 1) + "," + csv_field(r.prompt) + "," + csv_field(r.reference) + "," +
           csv_field(r.prediction) + "," + csv_number(r.loss) + "," + (r.exact ? "1" : "0") + "," +
           csv_number(r.rouge_l) + "\n";
  }
  return out;
}

std::vector<data::Example> read_prediction_examples(const std::filesystem::path& file, DataConfig data,
                                                    const data::ChatTemplate* chat, const data::Tokenizer& tokenizer,
                                                    int max_tokens, std::vector<std::string>* notes) {
  data.loss_on = "assistant";
  data.overlong = "drop";
  const data::JsonlRead read = data::read_jsonl(file, tokenizer, jsonl_options(data, chat), max_tokens);
  if (notes)
    for (const std::string& note : read.notes()) notes->push_back(note);
  if (read.rows.empty())
    throw DataError(file.string() + ": no usable rows (" + std::to_string(read.nonblank) + " rows)");
  std::vector<data::Example> examples;
  examples.reserve(read.rows.size());
  for (const data::JsonlRead::Row& row : read.rows) examples.push_back(row.rendered.example);
  return examples;
}

std::int64_t run_adapter_id(Store& store, std::int64_t run_id) {
  const RunDetail run = store.get_run(run_id);
  for (const AdapterRow& a : store.list_adapters())
    if (a.run_id == run_id) return a.id;
  throw ConfigError("run", "run " + std::to_string(run_id) + " (" + run.row.status +
                               ") kept no adapter in the library, so there is nothing to predict with");
}

PredictionSet predict_run(Store& store, const RunPrediction& request, const TrainerEnvironment& env) {
  const std::string label = "run " + std::to_string(request.run_id);
  const RunDetail run = store.get_run(request.run_id);
  const ExperimentConfig config = ExperimentConfig::from_json(run.config_json, label);
  const std::int64_t adapter_id = run_adapter_id(store, request.run_id);
  const AdapterState adapter = store.load_adapter(adapter_id);

  const DataSetup setup = make_data_setup(config, env.data_folder());
  LoadedBase base;
  load_base(setup.source, env, base);
  const int max_tokens = static_cast<int>(base.model->config().max_seq);
  std::vector<data::Example> examples;
  if (request.data.empty())
    examples = load_experiment_data(config, setup).heldout;
  else
    examples = read_prediction_examples(request.data, config.data, setup.chat ? &*setup.chat : nullptr,
                                        *setup.tokenizer, max_tokens);
  if (request.n > 0 && static_cast<std::size_t>(request.n) < examples.size())
    examples.resize(static_cast<std::size_t>(request.n));

  PredictionSet set;
  set.run_id = request.run_id;
  set.adapter_id = adapter_id;
  for (const AdapterRow& a : store.list_adapters())
    if (a.id == adapter_id) set.adapter = a.name;
  set.data = request.data.empty() ? "held-out split of " + label : request.data.string();
  set.rows = infer::predict(*base.model, base.fingerprint, &adapter, label, *setup.tokenizer, examples,
                            request.options);
  set.summary = infer::summarize(set.rows);
  return set;
}

}  // namespace lwb
