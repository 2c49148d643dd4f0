#pragma once
// Models and adapters as the generation commands (generate, predict) name
// them: a base from the model sources (core/source) on the chosen device, and
// an adapter from a folder or the library.
#include <memory>
#include <optional>
#include <string>

#include "app/cli.h"
#include "core/data/chat_template.h"
#include "core/data/tokenizer.h"
#include "core/store/adapter_transfer.h"

namespace lwb::cli {

// A base with its tokenizer and chat template, on the device it runs on.
struct GenerationBase {
  LoadedBase cpu;  // as read, on the CPU
  std::unique_ptr<Backend> device;  // when the chosen device is not the CPU
  MemoryLedger device_ledger;
  std::unique_ptr<Model> device_model;
  std::unique_ptr<data::Tokenizer> tokenizer;
  std::optional<data::ChatTemplate> chat;  // the model's own, else ChatML

  Model& model() { return device_model ? *device_model : *cpu.model; }
};

// spec: as resolve_base takes it (a preset, a base checkpoint, a Hugging Face
// folder or a GGUF file), with the source's own tokenizer and chat template
// (ChatML when it has none). device: cpu, cuda:N or auto.
void load_generation_base(const std::string& spec, const std::string& device, const TrainerEnvironment& env,
                          GenerationBase& out);

struct NamedAdapter {
  std::string label;
  AdapterState state;
  std::optional<std::int64_t> adapter_id;  // when it is in the library
};

// spec: a PEFT folder, a library adapter or a stored composition (by name);
// UsageError naming the library otherwise. A folder in a variant's
// unconverted form (PiSSA's) needs to_kept_form with the base before use.
NamedAdapter resolve_adapter(const std::string& spec, const Args& args);

}  // namespace lwb::cli
