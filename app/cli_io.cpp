// `export` and `import`: adapters between the store and PEFT folders, base
// models to and from Hugging Face LLaMA checkpoints.
#include <cstdio>
#include <string>

#include "app/cli.h"
#include "core/adapters/attach.h"
#include "core/common/errors.h"
#include "core/cpu/cpu_backend.h"
#include "core/io/hf_checkpoint.h"
#include "core/io/peft.h"
#include "core/model/checkpoint.h"
#include "core/store/store.h"
#include "core/train/paths.h"

namespace lwb::cli {

namespace {

// A built-in preset name ("tiny"), a base checkpoint (.safetensors) or a Hugging
// Face folder, loaded into a frozen model on the CPU.
struct LoadedBase {
  CpuBackend backend;
  MemoryLedger ledger;
  std::unique_ptr<Model> model;
  std::string fingerprint;
};

void load_base(const std::string& spec, const TrainerEnvironment& env, LoadedBase& out) {
  const bool preset = spec == "tiny" || spec == "small";
  const std::filesystem::path path = preset ? ensure_base_model(spec, env) : std::filesystem::path(spec);
  if (!std::filesystem::exists(path)) throw UsageError("base model \"" + spec + "\" is not a preset, file or folder");
  const bool hf = std::filesystem::is_directory(path);
  const ModelConfig mc = hf ? io::read_hf_config(path) : checkpoint_model_config(path);
  out.model = std::make_unique<Model>(mc, Model::Mode::Frozen);
  out.model->materialize(out.backend, out.ledger, 1, 1);
  if (hf)
    io::import_hf_weights(*out.model, path);
  else
    load_base_checkpoint(*out.model, path);
  out.fingerprint = base_fingerprint(*out.model);
}

std::int64_t adapter_id(Store& store, const std::string& name_or_id) {
  if (const auto id = store.find_adapter(name_or_id)) return *id;
  try {
    std::size_t used = 0;
    const std::int64_t id = std::stoll(name_or_id, &used);
    if (used == name_or_id.size()) return id;
  } catch (const std::exception&) {
  }
  throw UsageError("no adapter named \"" + name_or_id + "\" in " + store.file().string() +
                   " (compose --list shows the library)");
}

int export_adapter(const Args& args) {
  if (args.positional().size() != 2 || !args.has("out"))
    throw UsageError("export adapter NAME --out DIR [--merged [--base tiny|small|PATH]]");
  Store store(store_path(args));
  const AdapterState state = store.load_adapter(adapter_id(store, args.positional()[1]));
  const std::filesystem::path out = args.get("out");
  if (std::filesystem::exists(out) && !std::filesystem::is_empty(out) && !args.has("overwrite"))
    throw UsageError("output folder " + out.string() + " exists and is not empty; pass --overwrite to replace files");
  if (!args.has("merged")) {
    io::write_peft_folder(out, state);
    std::printf("wrote a PEFT adapter (%s, r = %d) to %s\n", method_name(state.config.method), state.config.r,
                out.c_str());
    return 0;
  }
  // The full merged checkpoint: base + adapter, as a Hugging Face folder.
  const std::string base_model = state.base_model;
  const std::string spec = args.get("base", base_model.rfind("lora-workbench/", 0) == 0
                                                 ? base_model.substr(std::string("lora-workbench/").size())
                                                 : std::string());
  if (spec.empty()) throw UsageError("the adapter's base " + base_model + " is not built in; give it with --base PATH");
  LoadedBase base;
  load_base(spec, environment(args), base);
  if (!state.base_fingerprint.empty() && state.base_fingerprint != base.fingerprint)
    throw FormatError(spec, "this base (fingerprint " + base.fingerprint + ") is not the one the adapter was trained on (" +
                                state.base_fingerprint + ")");
  check_adapter_fits(state, base.model->config(), "adapter " + args.positional()[1]);
  Model merged(base.model->config(), Model::Mode::Frozen);
  merged.materialize(base.backend, base.ledger, 1, 1);
  merge_adapter_into_base(*base.model, state, merged);
  io::export_hf_checkpoint(merged, out);
  std::printf("wrote the base with the adapter merged in (Hugging Face LLaMA checkpoint) to %s\n", out.c_str());
  return 0;
}

int export_base(const Args& args) {
  if (args.positional().size() != 2 || !args.has("out")) throw UsageError("export base tiny|small|PATH --out DIR");
  LoadedBase base;
  load_base(args.positional()[1], environment(args), base);
  const std::filesystem::path out = args.get("out");
  if (std::filesystem::exists(out) && !std::filesystem::is_empty(out) && !args.has("overwrite"))
    throw UsageError("output folder " + out.string() + " exists and is not empty; pass --overwrite to replace files");
  io::export_hf_checkpoint(*base.model, out);
  std::printf("wrote %s (%lld parameters) as a Hugging Face LLaMA checkpoint to %s\n", base.model->config().name.c_str(),
              static_cast<long long>(base.model->config().param_count()), out.c_str());
  return 0;
}

int import_adapter(const Args& args) {
  if (args.positional().size() != 2 || !args.has("name") || !args.has("base"))
    throw UsageError("import adapter DIR --name NAME --base tiny|small|PATH [--task TASK]");
  LoadedBase base;
  load_base(args.get("base"), environment(args), base);
  AdapterState state = io::read_peft_folder(args.positional()[1], &base.model->config());
  if (!state.base_fingerprint.empty() && state.base_fingerprint != base.fingerprint)
    throw FormatError(args.positional()[1], "the adapter was trained on another base (fingerprint " +
                                                state.base_fingerprint + ", the chosen base is " + base.fingerprint + ")");
  state.base_fingerprint = base.fingerprint;
  const std::string spec = args.get("base");
  state.base_model = spec == "tiny" || spec == "small" ? "lora-workbench/" + spec : spec;
  Store store(store_path(args));
  const std::int64_t id = store.save_adapter(args.get("name"), std::nullopt, state, args.get("task", ""), NAN, NAN);
  std::printf("imported %s adapter \"%s\" (r = %d) as id %lld in %s\n", method_name(state.config.method),
              args.get("name").c_str(), state.config.r, static_cast<long long>(id), store.file().c_str());
  return 0;
}

int import_base(const Args& args) {
  if (args.positional().size() != 2) throw UsageError("import base DIR");
  LoadedBase base;
  load_base(args.positional()[1], environment(args), base);
  const ModelConfig& c = base.model->config();
  std::printf("%s: LLaMA layout, hidden %d, %d layers, %d heads (%d kv), vocab %d, %lld parameters; fingerprint %s\n"
              "train on it with: lora-workbench train --preset tiny-lora --set model.base=%s\n",
              args.positional()[1].c_str(), c.hidden, c.layers, c.heads, c.kv_heads, c.vocab,
              static_cast<long long>(c.param_count()), base.fingerprint.c_str(), args.positional()[1].c_str());
  return 0;
}

}  // namespace

int cmd_export(const Args& args) {
  args.check({"out", "base", "db", "data-dir"}, {"merged", "overwrite"});
  const std::string what = args.positional().empty() ? "" : args.positional()[0];
  if (what == "adapter") return export_adapter(args);
  if (what == "base") return export_base(args);
  throw UsageError("export adapter NAME --out DIR [--merged] | export base tiny|small|PATH --out DIR");
}

int cmd_import(const Args& args) {
  args.check({"name", "base", "task", "db", "data-dir"});
  const std::string what = args.positional().empty() ? "" : args.positional()[0];
  if (what == "adapter") return import_adapter(args);
  if (what == "base") return import_base(args);
  throw UsageError("import adapter DIR --name NAME --base tiny|small|PATH | import base DIR");
}

}  // namespace lwb::cli
