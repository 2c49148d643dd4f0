// `export` and `import`: adapters between the store and PEFT folders, base
// models to and from Hugging Face LLaMA checkpoints.
#include <cstdio>
#include <optional>
#include <string>

#include "app/cli.h"
#include "app/terminal_progress.h"
#include "core/common/integers.h"
#include "core/io/hf_checkpoint.h"
#include "core/store/adapter_transfer.h"

namespace lwb::cli {

namespace {

std::int64_t adapter_id(Store& store, const std::string& name_or_id) {
  if (const auto id = store.find_adapter(name_or_id)) return *id;
  if (const std::optional<std::int64_t> id = parse_integer<std::int64_t>(name_or_id, 1)) return *id;
  throw UsageError("no adapter named \"" + terminal_text(name_or_id) + "\" in " + store.file().string() +
                   " (compose --list shows the library)");
}

int export_adapter(const Args& args) {
  if (args.positional().size() != 2 || !args.has("out"))
    throw UsageError("export adapter NAME --out DIR [--merged [--base tiny|small|PATH]]");
  Store store(store_path(args));
  const std::int64_t id = adapter_id(store, args.positional()[1]);
  const std::filesystem::path out = args.get("out");
  if (!args.has("merged")) {
    export_adapter_peft(store, id, out, args.has("overwrite"));
    const AdapterState state = store.load_adapter(id);
    std::printf("wrote a PEFT adapter (%s, r = %d) to %s\n", method_display_name(state.config).c_str(), state.config.r,
                out.c_str());
    return 0;
  }
  export_adapter_merged(store, id, args.get("base", ""), out, args.has("overwrite"), environment(args));
  std::printf("wrote the base with the adapter merged in (Hugging Face LLaMA checkpoint) to %s\n", out.c_str());
  return 0;
}

int export_base(const Args& args) {
  if (args.positional().size() != 2 || !args.has("out")) throw UsageError("export base tiny|small|PATH --out DIR");
  const std::filesystem::path out = args.get("out");
  check_export_folder(out, args.has("overwrite"));
  LoadedBase base;
  load_base(args.positional()[1], environment(args), base);
  io::export_hf_checkpoint(*base.model, out);
  std::printf("wrote %s (%lld parameters) as a Hugging Face LLaMA checkpoint to %s\n", base.model->config().name.c_str(),
              static_cast<long long>(base.model->config().param_count()), out.c_str());
  return 0;
}

int import_adapter(const Args& args) {
  if (args.positional().size() != 2 || !args.has("name") || !args.has("base"))
    throw UsageError("import adapter DIR --name NAME --base tiny|small|PATH [--task TASK]");
  Store store(store_path(args));
  const std::int64_t id = import_adapter_peft(store, args.positional()[1], args.get("name"), args.get("base"),
                                              args.get("task", ""), environment(args));
  const AdapterState state = store.load_adapter(id);
  std::printf("imported %s adapter \"%s\" (r = %d) as id %lld in %s\n", method_display_name(state.config).c_str(),
              terminal_text(args.get("name")).c_str(), state.config.r, static_cast<long long>(id),
              terminal_text(store.file().string()).c_str());
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
