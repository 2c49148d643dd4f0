// `train`, `pretrain`, `presets`, `config`.
#include <csignal>
#include <cstdio>
#include <ctime>
#include <memory>
#include <optional>
#include <vector>

#include "app/cli.h"
#include "app/terminal_progress.h"
#include "core/adapters/adapter_state.h"
#include "core/common/errors.h"
#include "core/common/kill_point.h"
#include "core/format/atomic_file.h"
#include "core/io/peft.h"
#include "core/model/checkpoint.h"
#include "core/source/downloads.h"
#include "core/source/model_source.h"
#include "core/store/store.h"
#include "core/store/store_sink.h"
#include "core/train/jsonl_sink.h"
#include "core/common/paths.h"
#include "core/train/trainer.h"

namespace lwb::cli {

namespace {

// Refuses an --out that is a file, or a folder that holds something unless
// overwriting was asked for. Returns whether the folder must be created.
bool check_out_folder(const std::filesystem::path& out, bool overwrite) {
  std::error_code ec;
  if (!std::filesystem::exists(out, ec)) return true;
  if (!std::filesystem::is_directory(out, ec))
    throw UsageError("--out " + out.string() + " is a file, not a folder; name a folder (it is created if missing)");
  if (!std::filesystem::is_empty(out, ec) && !overwrite)
    throw UsageError("output folder " + out.string() +
                     " exists and is not empty; choose another --out or pass --overwrite");
  return false;
}

// What this run put into --out; taken away again when the run fails, so that
// retrying needs no --overwrite.
class RunFolder {
 public:
  RunFolder(std::filesystem::path dir, bool create) : dir_(std::move(dir)), created_(create) {
    if (create) std::filesystem::create_directories(dir_);
  }
  std::filesystem::path file(const std::string& name) {
    written_.push_back(dir_ / name);
    return written_.back();
  }
  void remove_written() {
    std::error_code ec;
    for (const auto& f : written_) std::filesystem::remove_all(f, ec);
    if (created_ && std::filesystem::is_empty(dir_, ec)) std::filesystem::remove(dir_, ec);
  }
  const std::filesystem::path& dir() const { return dir_; }

 private:
  std::filesystem::path dir_;
  bool created_;
  std::vector<std::filesystem::path> written_;
};

void warn(const std::string& line) { std::fprintf(stderr, "warning: %s\n", terminal_text(line).c_str()); }

}  // namespace

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

int cmd_train(const Args& args) {
  args.check({"preset", "config", "set", "out", "data-dir", "db"}, {"quiet", "overwrite", "no-store"});
  const ExperimentConfig config = resolve_config(args);
  const bool quiet = args.has("quiet");
  TerminalProgress pretrain_progress("pretrain " + config.model.preset, quiet);
  const TrainerEnvironment env = environment(args, &pretrain_progress);
  const std::filesystem::path data_dir = env.data_dir.empty() ? user_data_dir() : env.data_dir;
  // The name is data, not a path: "../x" or "/abs" must not leave the runs folder.
  const std::filesystem::path out = args.has("out") ? std::filesystem::path(args.get("out"))
                                                    : data_dir / "runs" / (safe_file_name(config.name) + "-" + timestamp());
  const bool create_out = check_out_folder(out, args.has("overwrite"));

  // Opening the store first: a locked or newer database stops us before any work.
  std::unique_ptr<Store> store;
  if (!args.has("no-store")) {
    store = std::make_unique<Store>(store_path(args));
    if (store->interrupted_runs() > 0 && !quiet)
      std::fprintf(stderr, "note: %d run(s) interrupted earlier were marked failed in %s\n",
                   store->interrupted_runs(), terminal_text(store->file().string()).c_str());
  }
  install_stop_handler();
  const RunControl control{&g_stop, nullptr};
  Trainer trainer(config, env);
  trainer.prepare(control);  // every config and data error surfaces before anything is written

  // Recorded before the folder is made: a store that refuses the run leaves nothing behind.
  const std::int64_t run_id =
      store ? store->queue_run(store->create_experiment(config.name, config), config.train.device) : 0;
  // A run that ends in an exception: the store says why (it would stay
  // queued until its lease lapses otherwise).
  auto record_failure = [&](const std::string& why) {
    if (!store) return;
    RunResult failed;
    failed.error = why;
    try {
      store->finish_run(run_id, failed);
    } catch (const std::exception&) {  // then the lease lapses and the next opening marks it interrupted
    }
  };
  RunFolder folder(out, create_out);
  std::unique_ptr<JsonlMetricsSink> metrics;
  try {
    metrics = std::make_unique<JsonlMetricsSink>(folder.file("metrics.jsonl"), warn);
    io::write_file_atomically(folder.file("config.json"), config.to_json() + "\n");
  } catch (const std::exception& e) {
    folder.remove_written();
    record_failure(e.what());
    throw;
  }
  TerminalProgress progress(config.name, quiet);
  FanoutSink sinks;
  sinks.add(metrics.get());
  sinks.add(&progress);
  // The adapter goes into the library in the transaction that records the
  // run's end, before anything is written to the folder.
  std::optional<AdapterState> adapter;
  std::unique_ptr<StoreSink> store_sink;
  if (store) {
    trainer.set_state_file(store->state_file(run_id));
    StoreSink::Options options;
    options.warning = warn;
    options.adapter = [&](std::int64_t id, const RunResult&) -> std::optional<KeptAdapter> {
      if (!config.adapter.is_adapter()) return std::nullopt;
      adapter = trainer.adapter_state();
      return KeptAdapter{config.name + "-run" + std::to_string(id), *adapter, trainer.dataset().name};
    };
    store_sink = std::make_unique<StoreSink>(*store, run_id, options);
    sinks.add(store_sink.get());
  }
  RunResult result;
  try {
    result = trainer.run(sinks, control);
  } catch (const std::exception& e) {
    folder.remove_written();
    store_sink.reset();
    record_failure(e.what());
    throw;
  }
  if (result.status == RunStatus::Failed) {
    folder.remove_written();
    std::fprintf(stderr, "error: %s\n", terminal_text(result.error, true).c_str());
    return 1;
  }

  std::vector<std::string> errors;
  std::string stored;  // where the adapter is safe, for the messages
  if (store_sink) {
    if (!store_sink->finish_error().empty())
      errors.push_back("the store could not record the run's end: " + store_sink->finish_error());
    if (!store_sink->adapter_name().empty()) {
      stored = "the adapter is safe in the library of " + store->file().string() + " as \"" +
               store_sink->adapter_name() + "\" (lora-workbench export adapter " + store_sink->adapter_name() +
               " --out DIR)";
      if (!quiet)
        std::printf("stored adapter \"%s\" in %s\n", terminal_text(store_sink->adapter_name()).c_str(),
                    terminal_text(store->file().string()).c_str());
    }
  }
  kill_point("train-folder");
  const std::string written_to = config.adapter.is_adapter() ? "adapter" : "model.safetensors";
  try {
    if (config.adapter.is_adapter()) {
      if (!adapter) adapter = trainer.adapter_state();
      io::write_peft_folder(folder.file("adapter"), *adapter, peft_base_model_name(adapter->base_model));
    } else {
      save_base_checkpoint(trainer.model(), folder.file("model.safetensors"), {{"lwb.run", config.name}});
    }
    if (stored.empty()) stored = "the " + written_to + " is in " + (out / written_to).string();
  } catch (const std::exception& e) {
    errors.push_back(std::string("writing the run folder failed: ") + e.what());
  }
  if (metrics->lost_lines() > 0)
    errors.push_back(std::to_string(metrics->lost_lines()) + " lines of metrics.jsonl are missing: " +
                     metrics->write_error());
  try {
    io::write_file_atomically(folder.file("result.json"), run_result_json(result) + "\n");
  } catch (const std::exception& e) {
    errors.push_back(std::string("writing result.json failed: ") + e.what());
  }
  if (!quiet) {
    if (store_sink)
      std::printf("recorded run %lld in %s\n", static_cast<long long>(store_sink->run_id()),
                  terminal_text(store->file().string()).c_str());
    std::printf("wrote %s\n", terminal_text(out.string()).c_str());
  }
  for (const std::string& e : errors)
    std::fprintf(stderr, "error: %s; %s\n", terminal_text(e, true).c_str(),
                 stored.empty() ? "the trained weights could not be kept anywhere" : terminal_text(stored).c_str());
  if (result.status == RunStatus::Diverged) {
    std::fprintf(stderr, "error: the run %s; %s, marked diverged\n", terminal_text(result.error).c_str(),
                 stored.empty() ? "nothing was kept" : terminal_text(stored).c_str());
    return 1;
  }
  if (!errors.empty()) return 1;
  return result.status == RunStatus::Stopped ? 130 : 0;
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
  args.check({"data-dir"});
  std::printf("experiment presets:\n");
  for (const auto& name : experiment_preset_names()) {
    const ExperimentConfig c = experiment_preset(name);
    std::printf("  %-15s model %-5s method %-7s data %s%s, %lld steps\n", name.c_str(), c.model.preset.c_str(),
                c.get("adapter.method").c_str(), c.data.kind.c_str(),
                c.data.kind == "task" ? (":" + c.data.task).c_str() : "", static_cast<long long>(c.train.steps));
  }
  auto shape = [](const std::string& name, const ModelConfig& m) {
    std::printf("  %-12s hidden %d, %d layers, %d heads (%d kv), intermediate %d, vocab %d: %lld parameters\n",
                name.c_str(), m.hidden, m.layers, m.heads, m.kv_heads, m.intermediate, m.vocab,
                static_cast<long long>(m.param_count()));
  };
  std::printf("model presets:\n");
  for (const auto& name : model_preset_names()) shape(name, model_preset(name));
  // Downloadable models: their shape once downloaded, else how to get them.
  const std::filesystem::path data = environment(args).data_folder();
  for (const DownloadableModel& d : downloadable_models()) {
    if (std::filesystem::exists(downloaded_model_path(data, d))) {
      ModelSource m;
      m.preset = d.preset;
      shape(d.preset, resolve_model(m, data).config);
    } else {
      std::printf("  %-12s not downloaded: lora-workbench fetch %s (%s)\n", d.preset.c_str(), d.fetch_name.c_str(),
                  d.description.c_str());
    }
  }
  return 0;
}

int cmd_config(const Args& args) {
  args.check({"preset", "config", "set"});
  std::printf("%s\n", resolve_config(args).to_json().c_str());
  return 0;
}

}  // namespace lwb::cli
