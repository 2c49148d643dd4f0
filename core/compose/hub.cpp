#include "core/compose/hub.h"

#include <chrono>

#include "core/common/errors.h"
#include "core/data/tasks.h"
#include "core/model/checkpoint.h"
#include "core/source/model_source.h"
#include "core/store/store_sink.h"

namespace lwb::compose {

namespace {

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

HubPreset hub_preset() {
  HubPreset p;
  p.target = "count";
  p.why =
      "count answers with a number found by counting letters; the length adapter counts characters and the add "
      "adapter writes numbers, so the skill and the answer format are in the library, while no adapter was "
      "trained on count itself";
  for (const data::TaskInfo& t : data::builtin_tasks())
    if (t.name != p.target) p.member_tasks.push_back(t.name);
  p.training = experiment_preset("tiny-lora");
  p.training.train.steps = 200;
  p.training.train.eval_every = 0;  // one evaluation at the end
  p.training.train.eval_examples = 100;
  p.session.task = p.target;
  p.session.heldout = 200;
  return p;
}

std::string hub_adapter_name(const std::string& task, const std::string& base_fingerprint) {
  return "hub-" + task + "-" + base_fingerprint.substr(0, 8);
}

std::vector<std::string> ensure_hub_members(Store& store, const HubPreset& preset, const TrainerEnvironment& env,
                                            const HubCallbacks& cb, HubReport& report, const std::atomic<bool>* cancel) {
  auto notice = [&](const std::string& s) {
    if (cb.notice) cb.notice(s);
  };
  const std::string& base_preset = preset.training.model.preset;
  std::string fingerprint;
  const ResolvedSource source = resolve_base(base_preset, env.data_folder(), "hub.base");
  if (source.kind == SourceKind::Builtin) {  // pretrained here: the cached file records its fingerprint
    const std::filesystem::path base = ensure_base_model(base_preset, env, RunControl{cancel, nullptr});
    fingerprint = checkpoint_metadata(base, "lwb.fingerprint");
    if (fingerprint.empty()) throw FormatError(base.string(), "the base checkpoint carries no lwb.fingerprint");
  } else {  // a fetched model (SmolLM2): the fingerprint of its weights, as the trainer takes it
    LoadedBase loaded;
    load_base(source, env, loaded);
    fingerprint = loaded.fingerprint;
  }

  std::vector<std::string> names;
  const int total = static_cast<int>(preset.member_tasks.size());
  for (const std::string& task : preset.member_tasks) {
    const std::string name = hub_adapter_name(task, fingerprint);
    names.push_back(name);
    if (const auto id = store.find_adapter(name)) {
      for (const AdapterRow& row : store.list_adapters())
        if (row.id == *id && row.base_fingerprint != fingerprint)
          throw StoreError(store.file().string() + ": adapter \"" + name + "\" was trained on base " +
                           row.base_fingerprint + ", not on the current " + base_preset + " base " + fingerprint);
      report.reused.push_back(name);
      continue;
    }
    ExperimentConfig config = preset.training;
    config.name = name;
    config.data.task = task;
    notice("training " + name + " (" + method_display_name(config.adapter) + " r=" + std::to_string(config.adapter.r) +
           ", " + std::to_string(config.train.steps) + " steps on task " + task + ")");
    const auto ts = std::chrono::steady_clock::now();
    Trainer trainer(config, env);
    trainer.prepare(RunControl{cancel, nullptr});
    StoreSink::Options keep;
    // Kept in the transaction that ends the run, and only from a sound run on the current base.
    keep.adapter = [&](std::int64_t, const RunResult& r) -> std::optional<KeptAdapter> {
      if (r.status != RunStatus::Finished || trainer.base_fingerprint() != fingerprint) return std::nullopt;
      return KeptAdapter{name, trainer.adapter_state(), trainer.dataset().name};
    };
    StoreSink recorder(store, keep);
    FanoutSink sinks;
    sinks.add(&recorder);
    if (cb.training_sink)
      if (TrainerSink* s = cb.training_sink(name, trainer, static_cast<int>(names.size()), total)) sinks.add(s);
    const RunResult r = trainer.run(sinks, RunControl{cancel, nullptr});
    report.train_seconds += seconds_since(ts);
    if (r.status == RunStatus::Stopped) {
      report.cancelled = true;
      return names;
    }
    if (r.status != RunStatus::Finished)
      throw Error("hub: training the adapter for task " + task + " failed: " + r.error);
    if (trainer.base_fingerprint() != fingerprint)
      throw Error("hub: the " + base_preset + " base changed while the demo ran; run it again");
    if (recorder.adapter_name().empty())
      throw Error("hub: the adapter for task " + task + " could not be stored: " + recorder.finish_error());
    report.trained.push_back(name);
  }
  return names;
}

HubReport run_hub(Store& store, const HubPreset& preset, const TrainerEnvironment& env, const HubCallbacks& cb,
                  const std::atomic<bool>* cancel) {
  const auto t0 = std::chrono::steady_clock::now();
  HubReport report;
  const std::vector<std::string> names = ensure_hub_members(store, preset, env, cb, report, cancel);
  if (report.cancelled) {
    report.total_seconds = seconds_since(t0);
    return report;
  }
  ComposeRequest request;
  request.name = preset.name + "-" + preset.target;
  request.replace = true;
  request.adapters = names;
  request.session = preset.session;
  request.search = preset.search;
  request.seeds = preset.seeds;
  if (cb.notice)
    cb.notice("composing " + std::to_string(names.size()) + " adapters for held-out task " + preset.target + " from " +
              std::to_string(preset.session.shots) + " examples (" + merge_mode_name(preset.session.mode) + ", " +
              optimizer_name(preset.search.optimizer) + ", " + std::to_string(preset.search.budget) + " evaluations, " +
              std::to_string(preset.seeds) + " seed(s))");
  report.outcome = compose_and_store(store, request, env, cb.on_trial, cancel);
  report.total_seconds = seconds_since(t0);
  return report;
}

}  // namespace lwb::compose
