// `train`, `pretrain`, `presets`, `config`.
#include <csignal>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <memory>

#include "app/cli.h"
#include "app/terminal_progress.h"
#include "core/adapters/adapter_state.h"
#include "core/common/errors.h"
#include "core/io/peft.h"
#include "core/model/checkpoint.h"
#include "core/store/store.h"
#include "core/store/store_sink.h"
#include "core/train/compare.h"
#include "core/train/jsonl_sink.h"
#include "core/common/paths.h"
#include "core/train/trainer.h"

namespace lwb::cli {

namespace {



ExperimentConfig resolve_config(const Args& a) {
  if (a.has("preset") == a.has("config"))
    throw UsageError("give exactly one of --preset NAME or --config FILE");
  ExperimentConfig c = a.has("preset") ? experiment_preset(a.get("preset")) : ExperimentConfig::load(a.get("config"));
  for (const std::string& kv : a.all("set")) {
    const auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) throw UsageError("--set expects key=value, got \"" + kv + "\"");
    c.set(kv.substr(0, eq), kv.substr(eq + 1));
  }
  c.validate();
  return c;
}


void write_text(const std::filesystem::path& file, const std::string& text) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  if (!out) throw FormatError(file.string(), "cannot write");
  out << text << "\n";
}


}  // namespace

int cmd_train(const Args& args) {
  args.check({"preset", "config", "set", "out", "data-dir", "db"}, {"quiet", "overwrite", "no-store"});
  const ExperimentConfig config = resolve_config(args);
  const bool quiet = args.has("quiet");
  TerminalProgress pretrain_progress("pretrain " + config.model.preset, quiet);
  const TrainerEnvironment env = environment(args, &pretrain_progress);
  const std::filesystem::path data_dir = env.data_dir.empty() ? user_data_dir() : env.data_dir;
  const std::filesystem::path out =
      args.has("out") ? std::filesystem::path(args.get("out")) : data_dir / "runs" / (config.name + "-" + timestamp());
  if (std::filesystem::exists(out) && !std::filesystem::is_empty(out) && !args.has("overwrite"))
    throw UsageError("output folder " + out.string() + " exists and is not empty; choose another --out or pass --overwrite");

  // Opening the store first: a locked or newer database stops us before any work.
  std::unique_ptr<Store> store;
  if (!args.has("no-store")) {
    store = std::make_unique<Store>(store_path(args));
    if (store->interrupted_runs() > 0 && !quiet)
      std::fprintf(stderr, "note: %d run(s) interrupted earlier were marked failed in %s\n",
                   store->interrupted_runs(), store->file().c_str());
  }
  install_stop_handler();
  const RunControl control{&g_stop, nullptr};
  Trainer trainer(config, env);
  trainer.prepare(control);  // every config and data error surfaces before anything is written

  std::filesystem::create_directories(out);
  write_text(out / "config.json", config.to_json());
  JsonlMetricsSink metrics(out / "metrics.jsonl");
  TerminalProgress progress(config.name, quiet);
  FanoutSink sinks;
  sinks.add(&metrics);
  sinks.add(&progress);
  std::unique_ptr<StoreSink> store_sink;
  if (store) {
    store_sink = std::make_unique<StoreSink>(*store);
    sinks.add(store_sink.get());
  }
  const RunResult result = trainer.run(sinks, control);

  if (result.status != RunStatus::Failed) {
    if (config.adapter.is_adapter()) {
      const AdapterState state = trainer.adapter_state();
      io::write_peft_folder(out / "adapter", state);
      if (store) {
        const std::string name = config.name + "-run" + std::to_string(store_sink->run_id());
        store->save_adapter(name, store_sink->run_id(), state, trainer.dataset().name, result.final_eval.loss,
                            result.final_eval.accuracy);
        if (!quiet) std::printf("stored adapter \"%s\" in %s\n", name.c_str(), store->file().c_str());
      }
    } else {
      save_base_checkpoint(trainer.model(), out / "model.safetensors", {{"lwb.run", config.name}});
    }
  }
  write_text(out / "result.json", run_result_json(result));
  if (!quiet) {
    if (store) std::printf("recorded run %lld in %s\n", static_cast<long long>(store_sink->run_id()), store->file().c_str());
    std::printf("wrote %s\n", out.c_str());
  }
  if (result.status == RunStatus::Failed) {
    std::fprintf(stderr, "error: %s\n", result.error.c_str());
    return 1;
  }
  return result.status == RunStatus::Stopped ? 130 : 0;
}

int cmd_compare(const Args& args) {
  args.check({"data-dir", "out"}, {"quiet"});
  if (args.positional().size() != 1) throw UsageError("give one comparison preset, e.g. compare tiny-methods");
  const ComparisonPreset preset = comparison_preset(args.positional()[0]);
  const bool quiet = args.has("quiet");
  TerminalProgress pretrain_progress("pretrain", quiet);
  const TrainerEnvironment env = environment(args, &pretrain_progress);
  for (const auto& e : preset.entries) e.config.validate();
  if (!quiet) std::printf("%s: %s\n", preset.name.c_str(), preset.description.c_str());
  install_stop_handler();
  std::vector<std::unique_ptr<TerminalProgress>> bars;
  const auto rows = run_comparison(preset, env, RunControl{&g_stop, nullptr}, [&](const ComparisonEntry& e) {
    bars.push_back(std::make_unique<TerminalProgress>(e.label, quiet));
    return bars.back().get();
  });
  const std::string table = format_comparison_table(rows);
  std::printf("\n%s", table.c_str());
  for (const auto& r : rows)
    for (const auto& v : r.result.summary) std::printf("%s %s: %s\n", r.label.c_str(), v.kind.c_str(), v.payload_json.c_str());
  if (args.has("out")) {
    std::filesystem::create_directories(args.get("out"));
    write_text(std::filesystem::path(args.get("out")) / "comparison.txt", table);
  }
  return g_stop ? 130 : 0;
}

int cmd_pretrain(const Args& args) {
  args.check({"preset", "data-dir"}, {"quiet", "force"});
  const std::string preset = args.get("preset", "tiny");
  const bool quiet = args.has("quiet");
  TerminalProgress progress("pretrain " + preset, quiet);
  const TrainerEnvironment env = environment(args, &progress);
  install_stop_handler();
  const RunControl control{&g_stop, nullptr};
  // Without --force an up-to-date cached base is kept; a missing one or one
  // made by another recipe is pretrained.
  const std::filesystem::path path =
      args.has("force") ? pretrain_base_model(preset, env, control) : ensure_base_model(preset, env, control);
  if (!quiet) std::printf("saved %s base to %s\n", preset.c_str(), path.c_str());
  return 0;
}

int cmd_presets(const Args& args) {
  args.check({});
  std::printf("experiment presets:\n");
  for (const auto& name : experiment_preset_names()) {
    const ExperimentConfig c = experiment_preset(name);
    std::printf("  %-15s model %-5s method %-7s data %s%s, %lld steps\n", name.c_str(), c.model.preset.c_str(),
                c.get("adapter.method").c_str(), c.data.kind.c_str(),
                c.data.kind == "task" ? (":" + c.data.task).c_str() : "", static_cast<long long>(c.train.steps));
  }
  std::printf("model presets:\n");
  for (const auto& name : model_preset_names()) {
    const ModelConfig m = model_preset(name);
    std::printf("  %-6s hidden %d, %d layers, %d heads (%d kv), intermediate %d, vocab %d: %lld parameters\n",
                name.c_str(), m.hidden, m.layers, m.heads, m.kv_heads, m.intermediate, m.vocab,
                static_cast<long long>(m.param_count()));
  }
  return 0;
}

int cmd_config(const Args& args) {
  args.check({"preset", "config", "set"});
  std::printf("%s\n", resolve_config(args).to_json().c_str());
  return 0;
}

}  // namespace lwb::cli
