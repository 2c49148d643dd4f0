#include "core/store/adapter_transfer.h"

#include <cmath>

#include "core/adapters/attach.h"
#include "core/common/errors.h"
#include "core/io/hf_checkpoint.h"
#include "core/io/peft.h"
#include "core/model/checkpoint.h"
#include "core/common/paths.h"

namespace lwb {

namespace {

constexpr char kBuiltinPrefix[] = "lora-workbench/";

bool is_preset(const std::string& spec) { return spec == "tiny" || spec == "small"; }

}  // namespace

void load_base(const std::string& spec, const TrainerEnvironment& env, LoadedBase& out) {
  const std::filesystem::path path = is_preset(spec) ? ensure_base_model(spec, env) : std::filesystem::path(spec);
  if (spec.empty() || !std::filesystem::exists(path))
    throw ConfigError("base", "base model \"" + spec + "\" is not a preset (tiny, small), file or folder");
  const bool hf = std::filesystem::is_directory(path);
  const ModelConfig mc = hf ? io::read_hf_config(path) : checkpoint_model_config(path);
  out.model = std::make_unique<Model>(mc, Model::Mode::Frozen);
  out.model->materialize(out.backend, out.ledger, 1, 1);
  if (hf)
    io::import_hf_weights(*out.model, path);
  else
    load_base_checkpoint(*out.model, path);
  out.fingerprint = base_fingerprint(*out.model);
  out.base_model = is_preset(spec) ? kBuiltinPrefix + spec : spec;
}

std::string builtin_base_spec(const AdapterState& adapter) {
  const std::string& b = adapter.base_model;
  return b.rfind(kBuiltinPrefix, 0) == 0 ? b.substr(sizeof kBuiltinPrefix - 1) : std::string();
}

void check_export_folder(const std::filesystem::path& dir, bool overwrite) {
  if (std::filesystem::exists(dir) && !std::filesystem::is_empty(dir) && !overwrite)
    throw ConfigError("export.out", "output folder " + dir.string() + " exists and is not empty; nothing was written (choose an empty folder, or overwrite: --overwrite)");
}

void export_adapter_peft(Store& store, std::int64_t adapter_id, const std::filesystem::path& dir, bool overwrite) {
  check_export_folder(dir, overwrite);
  io::write_peft_folder(dir, store.load_adapter(adapter_id));
}

void export_adapter_merged(Store& store, std::int64_t adapter_id, const std::string& base_spec,
                           const std::filesystem::path& dir, bool overwrite, const TrainerEnvironment& env) {
  check_export_folder(dir, overwrite);
  const AdapterState state = store.load_adapter(adapter_id);
  const std::string spec = base_spec.empty() ? builtin_base_spec(state) : base_spec;
  if (spec.empty())
    throw ConfigError("base", "the adapter's base " + state.base_model + " is not built in; name its checkpoint (--base PATH)");
  LoadedBase base;
  load_base(spec, env, base);
  if (!state.base_fingerprint.empty() && state.base_fingerprint != base.fingerprint)
    throw FormatError(spec, "this base (fingerprint " + base.fingerprint +
                                ") is not the one the adapter was trained on (" + state.base_fingerprint + ")");
  check_adapter_fits(state, base.model->config(), "adapter " + std::to_string(adapter_id));
  Model merged(base.model->config(), Model::Mode::Frozen);
  merged.materialize(base.backend, base.ledger, 1, 1);
  merge_adapter_into_base(*base.model, state, merged);
  io::export_hf_checkpoint(merged, dir);
}

std::int64_t import_adapter_peft(Store& store, const std::filesystem::path& dir, const std::string& name,
                                 const std::string& base_spec, const std::string& task,
                                 const TrainerEnvironment& env) {
  if (name.empty()) throw ConfigError("import.name", "give the adapter a name for the library");
  if (store.find_adapter(name)) throw ConfigError("import.name", "the library already has an adapter named \"" + name + "\"");
  LoadedBase base;
  load_base(base_spec, env, base);
  AdapterState state = io::read_peft_folder(dir, &base.model->config());
  if (!state.base_fingerprint.empty() && state.base_fingerprint != base.fingerprint)
    throw FormatError(dir.string(), "the adapter was trained on another base (fingerprint " + state.base_fingerprint +
                                        ", the chosen base is " + base.fingerprint + ")");
  state.base_fingerprint = base.fingerprint;
  state.base_model = base.base_model;
  return store.save_adapter(name, std::nullopt, state, task, NAN, NAN);
}

}  // namespace lwb
