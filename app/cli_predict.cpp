// `predict`: an adapter (a run's, a library one, a PEFT folder) or the base
// answers every example of a JSONL file; per example the loss, the greedy
// answer, exact match and ROUGE-L go to a CSV file and, with their means, to
// the store against the run.
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "app/cli.h"
#include "app/cli_models.h"
#include "app/terminal_progress.h"
#include "core/common/errors.h"
#include "core/format/atomic_file.h"
#include "core/infer/predict.h"
#include "core/source/model_source.h"
#include "core/store/run_predict.h"
#include "core/store/store.h"

namespace lwb::cli {

int cmd_predict(const Args& args) {
  args.check({"run", "adapter", "model", "data", "n", "out", "format", "prompt-field", "completion-field", "batch",
              "extra-tokens", "device", "db", "data-dir"});
  if (args.has("run") && args.has("adapter")) throw UsageError("give --run ID or --adapter NAME|DIR, not both");
  if (!args.has("run") && !args.has("adapter") && !args.has("model"))
    throw UsageError("predict needs --run ID, --adapter NAME|DIR, or --model M alone for the base");
  if (!args.has("data")) throw UsageError("predict needs --data FILE.jsonl (one {\"prompt\", \"completion\"} per line)");
  if (!args.has("out")) throw UsageError("predict needs --out FILE.csv");
  const int n = int_arg(args, "n", 0, 1);
  infer::PredictOptions options;
  options.batch = int_arg(args, "batch", options.batch, 1, 256);
  options.extra_tokens = int_arg(args, "extra-tokens", options.extra_tokens, 0, 1 << 16);
  // The data as training reads it: a run's data settings, else the defaults;
  // the options given override them.
  DataConfig data_config;
  std::string chat_setting = "auto";

  // What predicts: the run's adapter, a named one, or the base alone.
  std::optional<NamedAdapter> adapter;
  std::optional<std::int64_t> run_id;
  if (args.has("run")) {
    run_id = int_arg(args, "run", 0, 1);
    Store store(store_path(args));
    const RunDetail run = store.get_run(*run_id);
    const ExperimentConfig config = ExperimentConfig::from_json(run.config_json, "run " + args.get("run"));
    data_config = config.data;
    chat_setting = config.model.chat_template;
    const std::int64_t id = run_adapter_id(store, *run_id);
    adapter = NamedAdapter{"run " + args.get("run"), store.load_adapter(id), id};
  } else if (args.has("adapter")) {
    adapter = resolve_adapter(args.get("adapter"), args);
    if (adapter->adapter_id) {
      Store store(store_path(args));
      for (const AdapterRow& a : store.list_adapters())
        if (a.id == *adapter->adapter_id) run_id = a.run_id;
    }
  }
  std::string model = args.get("model");
  if (model.empty() && adapter) {
    model = base_spec_of(adapter->state);
    if (model.empty())
      throw UsageError("the adapter does not say which base it was trained on; give --model M");
  }

  GenerationBase g;
  load_generation_base(model, args.get("device", "cpu"), environment(args), g);
  if (adapter) to_kept_form(adapter->state, *g.cpu.model, adapter->label);
  data_config.prompt_field = args.get("prompt-field", data_config.prompt_field);
  data_config.completion_field = args.get("completion-field", data_config.completion_field);
  data_config.format = args.get("format", data_config.format);
  const std::optional<data::ChatTemplate> chat = load_chat_template(g.cpu.source, chat_setting, *g.tokenizer);
  std::vector<std::string> notes;
  std::vector<data::Example> examples =
      read_prediction_examples(args.get("data"), data_config, chat ? &*chat : nullptr, *g.tokenizer,
                               static_cast<int>(g.model().config().max_seq), &notes);
  for (const std::string& note : notes) std::fprintf(stderr, "note: %s\n", terminal_text(note, true).c_str());
  if (n > 0 && static_cast<std::size_t>(n) < examples.size()) examples.resize(static_cast<std::size_t>(n));

  install_stop_handler();
  options.cancel = &g_stop;
  options.progress = [](std::int64_t done, std::int64_t total) {
    std::fprintf(stderr, "\rpredicted %lld/%lld", static_cast<long long>(done), static_cast<long long>(total));
    std::fflush(stderr);
  };
  const std::string label = adapter ? adapter->label : "base";
  PredictionSet set;
  set.rows = infer::predict(g.model(), g.cpu.fingerprint, adapter ? &adapter->state : nullptr, label, *g.tokenizer,
                            examples, options);
  std::fprintf(stderr, "\n");
  const bool cancelled = set.rows.size() < examples.size();
  io::write_file_atomically(args.get("out"), predictions_csv(set.rows));
  set.run_id = run_id;
  set.adapter_id = adapter ? adapter->adapter_id : std::nullopt;
  set.adapter = label;
  set.data = args.get("data");
  Store store(store_path(args));
  const std::int64_t id = store.save_predictions(set);
  const infer::PredictionSummary s = infer::summarize(set.rows);
  std::printf("%s on %lld example(s)%s: loss %.4f, exact match %.1f%%, ROUGE-L %.3f\n", terminal_text(label).c_str(),
              static_cast<long long>(s.examples), cancelled ? " (stopped early)" : "", s.loss, 100 * s.exact_match,
              s.rouge_l);
  std::printf("wrote %s; stored as predictions %lld in %s\n", terminal_text(args.get("out")).c_str(),
              static_cast<long long>(id), terminal_text(store.file().string()).c_str());
  return cancelled ? 130 : 0;
}

}  // namespace lwb::cli
