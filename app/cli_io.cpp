// `export` and `import`: adapters between the store and PEFT folders, base
// models and merged adapters to Hugging Face folders and GGUF files.
#include <cstdio>
#include <optional>
#include <string>

#include "app/cli.h"
#include "app/terminal_progress.h"
#include "core/common/integers.h"
#include "core/store/adapter_transfer.h"

namespace lwb::cli {

namespace {

std::int64_t adapter_id(Store& store, const std::string& name_or_id) {
  if (const auto id = store.find_adapter(name_or_id)) return *id;
  if (const std::optional<std::int64_t> id = parse_integer<std::int64_t>(name_or_id, 1)) return *id;
  throw UsageError("no adapter named \"" + terminal_text(name_or_id) + "\" in " + store.file().string() +
                   " (compose --list shows the library)");
}

// "5GB", "500MB", "2GiB" or a byte count, as transformers' max_shard_size.
std::uint64_t shard_size(const std::string& text) {
  static const std::pair<const char*, double> units[] = {{"GiB", 1073741824.0}, {"MiB", 1048576.0}, {"KiB", 1024.0},
                                                         {"GB", 1e9},           {"MB", 1e6},         {"KB", 1e3},
                                                         {"B", 1.0}};
  for (const auto& [unit, scale] : units)
    if (text.size() > std::string(unit).size() && text.ends_with(unit)) {
      const std::string number = text.substr(0, text.size() - std::string(unit).size());
      if (const std::optional<std::int64_t> n = parse_integer<std::int64_t>(number, 1))
        return static_cast<std::uint64_t>(static_cast<double>(*n) * scale);
    }
  if (const std::optional<std::int64_t> n = parse_integer<std::int64_t>(text, 1)) return static_cast<std::uint64_t>(*n);
  throw UsageError("--max-shard-size expects a size such as 5GB, 500MB or a byte count, got \"" +
                   terminal_text(text) + "\"");
}

MergedExport merged_options(const Args& args) {
  MergedExport o;
  o.overwrite = args.has("overwrite");
  o.base_spec = args.get("base", "");
  const std::string format = args.get("format", "hf");
  if (format == "gguf")
    o.format = MergedExport::Format::Gguf;
  else if (format != "hf")
    throw UsageError("--format expects hf (a Hugging Face folder) or gguf, got \"" + terminal_text(format) + "\"");
  const std::string type = args.get("gguf-type", "f32");
  if (type == "f32") o.gguf_type = io::GgufExportType::F32;
  else if (type == "f16") o.gguf_type = io::GgufExportType::F16;
  else if (type == "q8_0") o.gguf_type = io::GgufExportType::Q8_0;
  else throw UsageError("--gguf-type expects f32, f16 or q8_0, got \"" + terminal_text(type) + "\"");
  if (args.has("max-shard-size")) o.max_shard_bytes = shard_size(args.get("max-shard-size"));
  return o;
}

const char* written_as(const MergedExport& o) {
  return o.format == MergedExport::Format::Gguf ? "a GGUF file" : "a Hugging Face LLaMA checkpoint";
}

constexpr const char* kExportAdapterUsage =
    "export adapter NAME --out DIR [--base-model-name-or-path NAME] | export adapter NAME --out DIR --merged [--base "
    "PRESET|PATH] [--format hf|gguf] | export adapter NAME --out DIR --unconverted [--residual-base DIR [--base "
    "PRESET|PATH]]";

int export_adapter(const Args& args) {
  if (args.positional().size() != 2 || !args.has("out")) throw UsageError(kExportAdapterUsage);
  if (args.has("merged") && args.has("unconverted"))
    throw UsageError("--merged and --unconverted are two different exports; give one");
  if (args.has("residual-base") && !args.has("unconverted"))
    throw UsageError("--residual-base goes with --unconverted (PiSSA's residual base beside its adapter)");
  Store store(store_path(args));
  const std::int64_t id = adapter_id(store, args.positional()[1]);
  const std::filesystem::path out = args.get("out");
  if (args.has("unconverted")) {
    UnconvertedExport o;
    o.residual_dir = args.get("residual-base", "");
    o.base_spec = args.get("base", "");
    o.base_model_name_or_path = args.get("base-model-name-or-path", "");
    o.overwrite = args.has("overwrite");
    const std::string base_name = export_adapter_unconverted(store, id, out, o, environment(args));
    if (o.residual_dir.empty())
      std::printf("wrote the adapter in PEFT's unconverted form (relative to the residual base PEFT derives from "
                  "%s) to %s\n",
                  terminal_text(base_name).c_str(), out.c_str());
    else
      std::printf("wrote the residual base to %s and its adapter (init_lora_weights true) to %s\n",
                  o.residual_dir.c_str(), out.c_str());
    return 0;
  }
  if (!args.has("merged")) {
    const std::string base_name =
        export_adapter_peft(store, id, out, args.has("overwrite"), args.get("base-model-name-or-path", ""));
    const AdapterState state = store.load_adapter(id);
    std::printf("wrote a PEFT adapter (%s, r = %d, base_model_name_or_path %s) to %s\n",
                method_display_name(state.config).c_str(), state.config.r, terminal_text(base_name).c_str(),
                out.c_str());
    return 0;
  }
  if (args.has("base-model-name-or-path"))
    throw UsageError("--base-model-name-or-path names the base in a PEFT folder; a merged export has the base inside");
  const MergedExport options = merged_options(args);
  export_adapter_merged(store, id, out, options, environment(args));
  std::printf("wrote the base with the adapter merged in (%s) to %s\n", written_as(options), out.c_str());
  return 0;
}

int export_base(const Args& args) {
  if (args.positional().size() != 2 || !args.has("out"))
    throw UsageError("export base PRESET|PATH --out DIR|FILE.gguf [--format hf|gguf]");
  const MergedExport options = merged_options(args);
  LoadedBase base;
  load_base(args.positional()[1], environment(args), base);
  export_base(base, args.get("out"), options);
  std::printf("wrote %s (%lld parameters) as %s to %s\n", base.model->config().name.c_str(),
              static_cast<long long>(base.model->config().param_count()), written_as(options), args.get("out").c_str());
  return 0;
}

int import_adapter(const Args& args) {
  if (args.positional().size() != 2 || !args.has("name") || !args.has("base"))
    throw UsageError("import adapter DIR --name NAME --base PRESET|PATH [--task TASK]");
  Store store(store_path(args));
  const std::int64_t id = import_adapter_peft(store, args.positional()[1], args.get("name"), args.get("base"),
                                              args.get("task", ""), environment(args));
  const AdapterState state = store.load_adapter(id);
  std::printf("imported %s adapter \"%s\" (r = %d) as id %lld in %s\n", method_display_name(state.config).c_str(),
              terminal_text(args.get("name")).c_str(), state.config.r, static_cast<long long>(id),
              terminal_text(store.file().string()).c_str());
  return 0;
}

// Single quotes for a shell, so the printed command runs as it is.
std::string shell_quoted(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

int import_base(const Args& args) {
  if (args.positional().size() != 2) throw UsageError("import base DIR|FILE.gguf");
  const std::string spec = args.positional()[1];
  LoadedBase base;
  const TrainerEnvironment env = environment(args);
  load_base(spec, env, base);
  const ModelConfig& c = base.model->config();
  const std::unique_ptr<data::Tokenizer> tok = load_tokenizer(base.source);
  const std::optional<data::ChatTemplate> chat = load_chat_template(base.source, "auto", *tok);
  const std::string path = base.source.kind == SourceKind::Builtin ? spec : base.source.base_model_name;
  std::printf("%s: LLaMA layout, hidden %d, %d layers, %d heads (%d kv), vocab %d, %lld parameters; fingerprint %s\n"
              "tokenizer: %s (%d ids); chat template: %s\n",
              terminal_text(base.source.describe()).c_str(), c.hidden, c.layers, c.heads, c.kv_heads, c.vocab,
              static_cast<long long>(c.param_count()), base.fingerprint.c_str(), tok->name().c_str(),
              tok->vocab_size(), chat ? terminal_text(chat->source()).c_str() : "none");
  // A short LoRA on a built-in task, sized for the model: its own tokenizer,
  // sequences the task's examples fit, a batch a CPU manages.
  std::printf("train on it with:\n  lora-workbench train --preset tiny-lora --set model.base=%s --set "
              "train.batch=4 --set train.steps=20 --set train.eval_examples=8\n",
              shell_quoted(path).c_str());
  return 0;
}

}  // namespace

int cmd_export(const Args& args) {
  args.check({"out", "base", "db", "data-dir", "format", "gguf-type", "max-shard-size", "base-model-name-or-path",
              "residual-base"},
             {"merged", "unconverted", "overwrite"});
  const std::string what = args.positional().empty() ? "" : args.positional()[0];
  if (what == "adapter") return export_adapter(args);
  if (what == "base") return export_base(args);
  throw UsageError(std::string(kExportAdapterUsage) + " | export base PRESET|PATH --out DIR");
}

int cmd_import(const Args& args) {
  args.check({"name", "base", "task", "db", "data-dir"});
  const std::string what = args.positional().empty() ? "" : args.positional()[0];
  if (what == "adapter") return import_adapter(args);
  if (what == "base") return import_base(args);
  throw UsageError("import adapter DIR --name NAME --base PRESET|PATH | import base DIR|FILE.gguf");
}

}  // namespace lwb::cli
