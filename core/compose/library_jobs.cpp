#include "core/compose/library_jobs.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "core/model/checkpoint.h"
#include "core/store/adapter_transfer.h"

namespace lwb::compose {

namespace {

using json = nlohmann::json;

void check_cancel(const JobControl& c) {
  if (c.cancel && c.cancel->load()) throw JobCancelled();
}

void report(const JobControl& c, const std::string& stage, double fraction) {
  check_cancel(c);
  if (c.progress) c.progress(stage, fraction);
}

// Module progress mapped into [lo, hi] of the job.
ToolProgress modules_progress(const JobControl& c, double lo, double hi) {
  return [&c, lo, hi](int done, int total) {
    report(c, "module " + std::to_string(done) + " of " + std::to_string(total), lo + (hi - lo) * done / total);
  };
}

AdapterRow adapter_row(Store& store, std::int64_t id) {
  for (AdapterRow& a : store.list_adapters())
    if (a.id == id) return std::move(a);
  throw StoreError(store.file().string() + ": there is no adapter with id " + std::to_string(id));
}

void check_free_name(Store& store, const std::string& name, const char* field) {
  if (name.empty()) throw ConfigError(field, "give the new adapter a name");
  if (store.find_adapter(name))
    throw ConfigError(field, "the library already has an adapter named \"" + name + "\"");
}

json spectrum_report(const Refactored& r) {
  json modules = json::array();
  for (const ModuleSpectrum& m : r.modules)
    modules.push_back({{"module", m.module}, {"retained", m.retained}, {"singular", m.singular}});
  return {{"rank", r.rank}, {"retained", r.retained}, {"min_retained", r.min_retained}, {"modules", modules}};
}

// The base an adapter records, or the one given.
void load_adapter_base(const AdapterState& a, const std::string& spec, const TrainerEnvironment& env,
                       LoadedBase& base) {
  load_base(spec.empty() ? base_spec_of(a) : spec, env, base);
}

}  // namespace

Derivation merge_library_adapters(Store& store, const std::vector<std::pair<std::int64_t, double>>& adapters,
                                  const std::filesystem::path& out, bool overwrite, const TrainerEnvironment& env,
                                  const JobControl& control) {
  if (adapters.empty()) throw ConfigError("merge.adapters", "choose at least one adapter to merge");
  if (out.empty()) throw ConfigError("merge.out", "choose the file to write the merged base to");
  if (std::filesystem::exists(out) && !overwrite)
    throw ConfigError("merge.out", out.string() + " exists; nothing was written (choose another file or overwrite)");
  report(control, "loading the adapters", 0);
  std::vector<Member> members;
  std::vector<double> ratios;
  Derivation d;
  d.tool = "merge";
  json ratio_list = json::array();
  for (const auto& [id, ratio] : adapters) {
    if (!std::isfinite(ratio)) throw ConfigError("merge.ratios", "ratios must be finite numbers");
    members.push_back({adapter_row(store, id).name, store.load_adapter(id)});
    ratios.push_back(ratio);
    d.inputs.push_back({id, std::nullopt, ratio, members.back().name});
    ratio_list.push_back({{"adapter", members.back().name}, {"ratio", ratio}});
  }
  for (const Member& m : members)
    if (m.state.base_fingerprint != members.front().state.base_fingerprint)
      throw ConfigError("merge.adapters", "\"" + m.name + "\" was trained on another base than \"" +
                                              members.front().name + "\"; merge adapters of one base");
  report(control, "loading the base", 0.1);
  LoadedBase base;
  load_adapter_base(members.front().state, "", env, base);
  if (!members.front().state.base_fingerprint.empty() && members.front().state.base_fingerprint != base.fingerprint)
    throw FormatError(base.source.base_model_name, "this base (fingerprint " + base.fingerprint +
                                           ") is not the one the adapters were trained on");
  report(control, "merging", 0.4);
  Model merged(base.model->config(), Model::Mode::Frozen);
  merged.materialize(base.backend, base.ledger, 1, 1);
  merge_into_base(*base.model, members, ratios, merged);
  report(control, "writing " + out.string(), 0.8);
  if (out.has_parent_path()) std::filesystem::create_directories(out.parent_path());
  save_base_checkpoint(merged, out, {{"lwb.merged_from", ratio_list.dump()}, {"lwb.preset", base.model->config().name}});
  check_cancel(control);
  d.output_path = out.string();
  d.params_json = json{{"adapters", ratio_list}, {"out", out.string()}}.dump();
  d.report_json = json{{"base", base.source.base_model_name}, {"fingerprint", base_fingerprint(merged)}}.dump();
  Derivation recorded = store.record_derivation(d);
  report(control, "done", 1);
  return recorded;
}

Derivation resize_library_adapter(Store& store, std::int64_t adapter_id, int rank, const std::string& name,
                                  const JobControl& control) {
  check_free_name(store, name, "resize.name");
  report(control, "loading the adapter", 0);
  const AdapterRow row = adapter_row(store, adapter_id);
  const AdapterState state = store.load_adapter(adapter_id);
  const Refactored r = resize_adapter(state, rank, modules_progress(control, 0.05, 0.95));
  check_cancel(control);
  Derivation d;
  d.tool = "resize";
  d.inputs.push_back({adapter_id, std::nullopt, NAN, row.name});
  d.params_json = json{{"rank", rank}, {"from_rank", row.rank}, {"name", name}}.dump();
  json rep = spectrum_report(r);
  rep["from_rank"] = row.rank;
  d.report_json = rep.dump();
  const KeptAdapter kept{name, r.state, row.task};
  Derivation recorded = store.record_derivation(d, &kept);
  report(control, "done", 1);
  return recorded;
}

Derivation extract_library_lora(Store& store, std::int64_t run_id, int rank, const std::vector<Target>& targets,
                                const std::string& name, const TrainerEnvironment& env, const JobControl& control) {
  check_free_name(store, name, "extract.name");
  report(control, "reading run " + std::to_string(run_id), 0);
  const RunDetail run = store.get_run(run_id);
  const std::string source = "run " + std::to_string(run_id);
  const ExperimentConfig config = ExperimentConfig::from_json(run.config_json, source);
  if (config.adapter.is_adapter())
    throw ConfigError("extract.run", source + " trained a " + method_display_name(config.adapter) +
                                         " adapter, not the full model; resize its adapter instead");
  if (!run.row.has_model)
    throw ConfigError("extract.run", source + " kept no trained weights (" + store.model_file(run_id).string() +
                                         " is missing: runs before this version, and CLI runs, keep them in "
                                         "their own folder)");
  if (config.model.base == "random")
    throw ConfigError("extract.run", source + " started from random weights: there is no base to take its "
                                              "update from");
  report(control, "loading the base", 0.05);
  const std::filesystem::path base_path =
      config.model.base == "pretrained" ? ensure_base_model(config.model.preset, env)
                                         : std::filesystem::path(config.model.base);
  if (std::filesystem::is_directory(base_path))
    throw ConfigError("extract.run", source + " started from the Hugging Face folder " + base_path.string() +
                                         "; extracting needs a base checkpoint file");
  report(control, "loading the fine-tuned weights", 0.15);
  LoadedBase tuned;
  load_base(store.model_file(run_id).string(), env, tuned);
  const std::string fp = checkpoint_metadata(base_path, "lwb.fingerprint");
  const Refactored r = extract_lora(*tuned.model, base_path, targets, rank,
                                    config.model.base == "pretrained" ? "lora-workbench/" + config.model.preset
                                                                      : config.model.base,
                                    fp, modules_progress(control, 0.2, 0.95));
  check_cancel(control);
  std::string target_text;
  for (Target t : targets) {
    if (!target_text.empty()) target_text += ',';
    target_text += target_short_name(t);
  }
  Derivation d;
  d.tool = "extract";
  d.inputs.push_back({std::nullopt, run_id, NAN, source});
  d.params_json = json{{"rank", rank}, {"targets", target_text}, {"name", name}}.dump();
  d.report_json = spectrum_report(r).dump();
  const KeptAdapter kept{name, r.state, run.row.task};
  Derivation recorded = store.record_derivation(d, &kept);
  report(control, "done", 1);
  return recorded;
}

Derivation verify_library_adapter(Store& store, std::int64_t adapter_id, const std::string& base_spec,
                                  const TrainerEnvironment& env, const JobControl& control) {
  report(control, "loading the adapter", 0);
  const AdapterRow row = adapter_row(store, adapter_id);
  const AdapterState state = store.load_adapter(adapter_id);
  report(control, "loading the base", 0.2);
  LoadedBase base;
  load_adapter_base(state, base_spec, env, base);
  report(control, "merging and measuring", 0.5);
  const Verification v = verify_adapter(state, *base.model, base.fingerprint);
  check_cancel(control);
  json ratios = json::object();
  for (const auto& [module, ratio] : v.update_ratio) ratios[module] = std::isfinite(ratio) ? json(ratio) : json();
  Derivation d;
  d.tool = "verify";
  d.inputs.push_back({adapter_id, std::nullopt, NAN, row.name});
  d.params_json = json{{"base", base.source.base_model_name}}.dump();
  d.report_json =
      json{{"ok", v.ok()}, {"problems", v.problems}, {"notes", v.notes}, {"update_ratio", ratios}}.dump();
  Derivation recorded = store.record_derivation(d);
  report(control, "done", 1);
  return recorded;
}

std::string describe_derivation(const Derivation& d) {
  json rep = json::parse(d.report_json.empty() ? "{}" : d.report_json, nullptr, false);
  if (rep.is_discarded()) rep = json::object();
  char buf[240];
  if (d.tool == "resize" || d.tool == "extract") {
    std::snprintf(buf, sizeof buf, "%s to rank %d: %.1f%% of the energy kept (worst module %.1f%%)",
                  d.tool.c_str(), rep.value("rank", 0), 100 * rep.value("retained", 0.0),
                  100 * rep.value("min_retained", 0.0));
    return buf;
  }
  if (d.tool == "merge") {
    std::string what;
    for (const DerivationInput& i : d.inputs)
      what += (what.empty() ? "" : " + ") + (std::isfinite(i.ratio) ? std::to_string(i.ratio).substr(0, 5) + "·" : "") +
              i.label;
    return "merged " + what + " into " + rep.value("base", std::string("the base")) + ", written to " + d.output_path;
  }
  if (d.tool == "verify") {
    std::string text = rep.value("ok", false) ? "verified: fits its base" : "verification failed";
    for (const auto& p : rep.value("problems", json::array())) text += "; " + p.get<std::string>();
    for (const auto& n : rep.value("notes", json::array())) text += "; " + n.get<std::string>();
    return text;
  }
  return d.tool;
}

}  // namespace lwb::compose
