#include "app/cli_models.h"

#include <cstdio>
#include <filesystem>

#include "app/terminal_progress.h"
#include "core/backend/backend_registry.h"
#include "core/common/errors.h"
#include "core/compose/merge.h"
#include "core/io/peft.h"
#include "core/model/checkpoint.h"
#include "core/source/model_source.h"
#include "core/store/store.h"

namespace lwb::cli {

namespace fs = std::filesystem;

void load_generation_base(const std::string& spec, const std::string& device, const TrainerEnvironment& env,
                          GenerationBase& out) {
  load_base(spec, env, out.cpu);
  out.tokenizer = load_tokenizer(out.cpu.source);
  out.chat = load_chat_template(out.cpu.source, "auto", *out.tokenizer);
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
