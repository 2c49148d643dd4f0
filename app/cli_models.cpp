#include "app/cli_models.h"

#include <cstdio>
#include <filesystem>

#include "app/terminal_progress.h"
#include "core/backend/backend_registry.h"
#include "core/common/errors.h"
#include "core/compose/merge.h"
#include "core/data/hf_tokenizer.h"
#include "core/format/gguf.h"
#include "core/io/gguf_model.h"
#include "core/io/peft.h"
#include "core/model/checkpoint.h"
#include "core/store/store.h"

namespace lwb::cli {

namespace fs = std::filesystem;

void load_generation_base(const std::string& spec, const std::string& device, const TrainerEnvironment& env,
                          GenerationBase& out) {
  const fs::path path(spec);
  if (path.extension() == ".gguf") {
    if (!fs::is_regular_file(path)) throw ConfigError("model", "GGUF file \"" + spec + "\" does not exist");
    const format::GgufFile f = format::GgufFile::open(path);
    out.cpu.model = std::make_unique<Model>(io::read_gguf_config(f), Model::Mode::Frozen);
    out.cpu.model->materialize(out.cpu.backend, out.cpu.ledger, 1, 1);
    io::import_gguf_weights(*out.cpu.model, f);
    out.cpu.fingerprint = base_fingerprint(*out.cpu.model);
    out.cpu.base_model = spec;
    out.tokenizer = data::make_gguf_tokenizer(io::gguf_vocab(f));
    out.chat = io::gguf_chat_template(f);
  } else {
    load_base(spec, env, out.cpu);
    const bool hf = fs::is_directory(path);
    if (hf && (fs::exists(path / "tokenizer.json") || fs::exists(path / "tokenizer.model")))
      out.tokenizer = data::load_hf_tokenizer(path);
    else if (out.cpu.model->config().tokenizer == "hf")
      throw ConfigError("model", "\"" + spec + "\" has no tokenizer.json or tokenizer.model");
    else
      out.tokenizer = data::make_tokenizer(out.cpu.model->config().tokenizer);
    if (hf && (fs::exists(path / "chat_template.jinja") || fs::exists(path / "tokenizer_config.json")))
      out.chat = data::load_hf_chat_template(path);
  }
  if (!out.chat) out.chat = data::ChatTemplate::builtin("chatml");
  if (device == "cpu") return;
  std::string note;
  out.device = make_backend(device, &note);
  if (!note.empty()) std::fprintf(stderr, "note: %s\n", terminal_text(note, true).c_str());
  if (out.device->device().kind == DeviceKind::Cpu) {
    out.device.reset();
    return;
  }
  out.device_model = std::make_unique<Model>(out.cpu.model->config(), Model::Mode::Frozen);
  out.device_model->materialize(*out.device, out.device_ledger, 1, 1);
  copy_base_weights(*out.cpu.model, *out.device_model);
}

NamedAdapter resolve_adapter(const std::string& spec, const Args& args) {
  if (fs::is_directory(spec)) return {spec, io::read_peft_folder(spec), std::nullopt};
  Store store(store_path(args));
  if (const auto id = store.find_adapter(spec)) return {spec, store.load_adapter(*id), *id};
  for (const CompositionRow& row : store.list_compositions()) {
    if (row.name != spec) continue;
    const Composition c = store.load_composition(row.id);
    std::vector<compose::Member> members;
    std::vector<double> weights;
    for (const CompositionMember& m : c.members) {
      members.push_back({"adapter " + std::to_string(m.adapter_id), store.load_adapter(m.adapter_id)});
      weights.push_back(m.weight);
    }
    compose::Composer composer(std::move(members), compose::parse_merge_mode(c.mode));
    return {spec + " (" + c.mode + " composition)", composer.compose(weights), std::nullopt};
  }
  throw UsageError("--adapter \"" + terminal_text(spec) + "\" is neither a PEFT folder nor an adapter or composition in " +
                   terminal_text(store.file().string()) + " (compose --list shows the library)");
}

}  // namespace lwb::cli
