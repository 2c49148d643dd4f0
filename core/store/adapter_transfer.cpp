#include "core/store/adapter_transfer.h"

#include <cmath>

#include "core/adapters/attach.h"
#include "core/common/errors.h"
#include "core/io/peft.h"

namespace lwb {

namespace {

// Beside the weights of a Hugging Face export: the base's tokenizer files and
// its generation settings, so that AutoTokenizer and generate() behave as they
// do on the base. A GGUF base's tokenizer is written out from its metadata.
void copy_model_files(const ResolvedSource& source, const std::filesystem::path& dir) {
  if (source.gguf) io::write_gguf_tokenizer_as_hf(*source.gguf, dir, source.config.max_seq);
  std::vector<std::filesystem::path> files = tokenizer_files(source);
  if (source.kind == SourceKind::HfFolder && std::filesystem::exists(source.path / "generation_config.json"))
    files.push_back(source.path / "generation_config.json");
  for (const std::filesystem::path& f : files)
    std::filesystem::copy_file(f, dir / f.filename(), std::filesystem::copy_options::overwrite_existing);
}

void check_export_file(const std::filesystem::path& file, bool overwrite) {
  if (std::filesystem::is_directory(file))
    throw ConfigError("export.out", file.string() + " is a folder; a GGUF export is one file (name it, e.g. model.gguf)");
  if (std::filesystem::exists(file) && !overwrite)
    throw ConfigError("export.out", file.string() + " exists; nothing was written (choose another name, or overwrite: --overwrite)");
  // Said before the base is loaded and merged, not after.
  if (const std::filesystem::path parent = std::filesystem::absolute(file).parent_path();
      !std::filesystem::is_directory(parent))
    throw ConfigError("export.out", "the folder " + parent.string() + " does not exist; nothing was written (make it "
                                    "first, or name a file in an existing folder)");
}

// The base an adapter of the library was trained on (or `base_spec`),
// checked against its fingerprint and its tensors.
void load_adapter_base(const AdapterState& state, const std::string& base_spec, std::int64_t adapter_id,
                       const SourceEnvironment& env, LoadedBase& base) {
  const std::string spec = base_spec.empty() ? base_spec_of(state) : base_spec;
  if (spec.empty())
    throw ConfigError("base", "the adapter records no base model; name it (--base PRESET or PATH)");
  load_base(spec, env, base);
  if (!state.base_fingerprint.empty() && state.base_fingerprint != base.fingerprint)
    throw FormatError(spec, "this base (fingerprint " + base.fingerprint +
                                ") is not the one the adapter was trained on (" + state.base_fingerprint + ")");
  check_adapter_fits(state, base.model->config(), "adapter " + std::to_string(adapter_id));
}

// An fp32 model of base's shape and source, for weights derived from it.
void start_copy_of(const LoadedBase& base, LoadedBase& copy) {
  copy.source = base.source;
  copy.model = std::make_unique<Model>(base.model->config(), Model::Mode::Frozen);
  copy.model->materialize(copy.backend, copy.ledger, 1, 1);
}

}  // namespace

void check_export_folder(const std::filesystem::path& dir, bool overwrite) {
  if (std::filesystem::exists(dir) && !std::filesystem::is_empty(dir) && !overwrite)
    throw ConfigError("export.out", "output folder " + dir.string() + " exists and is not empty; nothing was written (choose an empty folder, or overwrite: --overwrite)");
}

std::string export_adapter_peft(Store& store, std::int64_t adapter_id, const std::filesystem::path& dir,
                                bool overwrite, const std::string& base_model_name_or_path) {
  check_export_folder(dir, overwrite);
  const AdapterState state = store.load_adapter(adapter_id);
  const std::string name =
      base_model_name_or_path.empty() ? peft_base_model_name(state.base_model) : base_model_name_or_path;
  io::write_peft_folder(dir, state, name);
  return name;
}

void export_base(const LoadedBase& base, const std::filesystem::path& out, const MergedExport& options) {
  const ResolvedSource& source = base.source;
  if (options.format == MergedExport::Format::Gguf) {
    check_export_file(out, options.overwrite);
    // A GGUF base's tokenizer travels as its metadata; this program's byte
    // models are marked as such (export_gguf); a Hugging Face folder's
    // tokenizer.json is not converted (its GGUF has no tokenizer).
    io::export_gguf(*base.model, out, options.gguf_type,
                    source.gguf ? io::gguf_tokenizer_metadata(*source.gguf) : format::GgufMetadata{});
    return;
  }
  check_export_folder(out, options.overwrite);
  io::HfExport hf;
  hf.dtype = source.kind == SourceKind::HfFolder ? io::read_hf_dtype(source.path) : io::StDType::F32;
  hf.max_shard_bytes = options.max_shard_bytes;
  const std::unique_ptr<data::Tokenizer> tokenizer = load_tokenizer(source);
  hf.tokenizer = tokenizer.get();
  io::export_hf_checkpoint(*base.model, out, hf);
  copy_model_files(source, out);
}

void export_adapter_merged(Store& store, std::int64_t adapter_id, const std::filesystem::path& out,
                           const MergedExport& options, const SourceEnvironment& env) {
  if (options.format == MergedExport::Format::Gguf)
    check_export_file(out, options.overwrite);
  else
    check_export_folder(out, options.overwrite);
  const AdapterState state = store.load_adapter(adapter_id);
  LoadedBase base;
  load_adapter_base(state, options.base_spec, adapter_id, env, base);
  LoadedBase merged;
  start_copy_of(base, merged);
  merge_adapter_into_base(*base.model, state, *merged.model);
  base.model.reset();  // the merged copy is all that is written
  export_base(merged, out, options);
}

std::string export_adapter_unconverted(Store& store, std::int64_t adapter_id, const std::filesystem::path& dir,
                                       const UnconvertedExport& options, const SourceEnvironment& env) {
  check_export_folder(dir, options.overwrite);
  const AdapterState kept = store.load_adapter(adapter_id);
  const bool with_residual = !options.residual_dir.empty();
  AdapterState own = own_form_of(kept, "adapter " + std::to_string(adapter_id), with_residual);
  if (with_residual) {
    check_export_folder(options.residual_dir, options.overwrite);
    LoadedBase base;
    load_adapter_base(kept, options.base_spec, adapter_id, env, base);
    LoadedBase residual;
    start_copy_of(base, residual);
    derive_base_of(*base.model, kept, *residual.model);
    base.model.reset();
    MergedExport hf;
    hf.overwrite = options.overwrite;
    export_base(residual, options.residual_dir, hf);
    // The adapter belongs to the residual, not to the base it was trained from.
    own.base_model = std::filesystem::absolute(options.residual_dir).string();
    own.base_fingerprint.clear();
  }
  const std::string name = !options.base_model_name_or_path.empty() ? options.base_model_name_or_path
                           : with_residual                          ? own.base_model
                                                                    : peft_base_model_name(own.base_model);
  io::write_peft_folder(dir, own, name);
  return name;
}

std::int64_t import_adapter_peft(Store& store, const std::filesystem::path& dir, const std::string& name,
                                 const std::string& base_spec, const std::string& task, const SourceEnvironment& env) {
  if (name.empty()) throw ConfigError("import.name", "give the adapter a name for the library");
  if (store.find_adapter(name)) throw ConfigError("import.name", "the library already has an adapter named \"" + name + "\"");
  LoadedBase base;
  load_base(base_spec, env, base);
  AdapterState state = io::read_peft_folder(dir, &base.model->config());
  to_kept_form(state, *base.model, dir.string());
  if (!state.base_fingerprint.empty() && state.base_fingerprint != base.fingerprint)
    throw FormatError(dir.string(), "the adapter was trained on another base (fingerprint " + state.base_fingerprint +
                                        ", the chosen base is " + base.fingerprint + ")");
  state.base_fingerprint = base.fingerprint;
  state.base_model = base.source.base_model_name;
  return store.save_adapter(name, std::nullopt, state, task, NAN, NAN);
}

}  // namespace lwb
