#pragma once
// Where a base model comes from, and everything it brings along: its shape,
// its weights, its tokenizer and its chat template. The trainer, the adapter
// library (exports, imports, compositions), the CLI and the window all ask
// here, whatever the source:
//  - a built-in preset (tiny, small): its base is pretrained by this program
//    and cached (base_cache.h);
//  - a downloaded model (smollm2-135m, downloads.h): a GGUF file in the data
//    directory's models/;
//  - a Hugging Face folder (config.json + *.safetensors + tokenizer files);
//  - a GGUF file (llama.cpp's, Ollama's);
//  - a base checkpoint this program wrote (.safetensors).
// Pretraining a built-in preset's missing base is training, which sits above
// this layer: SourceEnvironment::builtin_base is where the layers that can
// train (core/train's TrainerEnvironment) plug it in.
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/adapters/adapter_state.h"
#include "core/cpu/cpu_backend.h"
#include "core/data/chat_template.h"
#include "core/data/tokenizer.h"
#include "core/format/gguf.h"
#include "core/model/config.h"
#include "core/model/model.h"
#include "core/source/source_settings.h"
#include "core/tensor/ledger.h"

namespace lwb {

enum class SourceKind { Builtin, Downloaded, HfFolder, Gguf, Checkpoint };

struct ResolvedSource {
  SourceKind kind = SourceKind::Builtin;
  std::string preset;          // Builtin and Downloaded: the preset's name
  std::filesystem::path path;  // the file or folder; Builtin: its cached base (made on demand)
  ModelConfig config;
  bool random = false;         // model.base = random: initialised, nothing read
  std::shared_ptr<const format::GgufFile> gguf;  // Downloaded and Gguf: the open file
  // PEFT's base_model_name_or_path for adapters trained on it:
  // "lora-workbench/<preset>" for a built-in preset, else the absolute path.
  std::string base_model_name;

  // "built-in preset tiny", "GGUF file /m/x.gguf", ... for messages.
  std::string describe() const;
};

// model.preset and model.base to a source, reading its shape. ConfigError
// naming the field for an unknown preset, a path that does not exist or a
// downloadable model that is not downloaded yet (saying how to fetch it);
// FormatError for a file that is not a model this engine runs.
ResolvedSource resolve_model(const ModelSource& model, const std::filesystem::path& data_dir);
// A base named as the CLI and adapters name it: a preset ("tiny",
// "smollm2-135m"), "lora-workbench/<preset>" (what adapters trained on a
// built-in preset record) or a path; `field` names the option in errors.
ResolvedSource resolve_base(const std::string& spec, const std::filesystem::path& data_dir,
                            const std::string& field = "base");
// The spec of the base an adapter records, for resolve_base.
std::string base_spec_of(const AdapterState& adapter);
// What an exported adapter of the base `spec` (as adapters record it) gives
// PEFT as base_model_name_or_path: for a GGUF file, the Hugging Face
// repository it was converted from when it names one
// (io::gguf_hub_repository), since AutoPeftModelForCausalLM cannot load a
// .gguf path; else `spec` (presets, folders, checkpoints, a GGUF that names
// none or is no longer readable there).
std::string peft_base_model_name(const std::string& spec);

// Reads the weights into `model` (materialised with the source's config).
// Not for random sources; a built-in preset's cached base must exist (see
// SourceEnvironment::builtin_base).
void load_weights(Model& model, const ResolvedSource& source);

// The tokenizer for model.tokenizer = `setting` (see ModelSource). ConfigError
// ("model.tokenizer", ...) for an unknown setting or a tokenizer with more ids
// than the model's vocabulary; FormatError naming the file and place for
// tokenizer files this build cannot run.
std::unique_ptr<data::Tokenizer> load_tokenizer(const ResolvedSource& source, const std::string& setting = "auto");
// The chat template for model.chat_template = `setting` (see ModelSource);
// nullopt for "none" or a model without one under "auto". Special tokens the
// template refers to (bos_token, ...) are the tokenizer's.
std::optional<data::ChatTemplate> load_chat_template(const ResolvedSource& source, const std::string& setting,
                                                     const data::Tokenizer& tokenizer);
// The files of a Hugging Face folder that make its tokenizer and chat
// template (those present), to copy beside an export; none for other sources.
std::vector<std::filesystem::path> tokenizer_files(const ResolvedSource& source);

// What loading a base needs from its caller.
struct SourceEnvironment {
  virtual ~SourceEnvironment() = default;
  std::filesystem::path data_dir;  // empty: user_data_dir()
  // One-line notices (building a missing base model, ...).
  std::function<void(const std::string&)> notice;

  std::filesystem::path data_folder() const;
  // The cached base of a built-in preset. Here: the file when it exists, else
  // a ConfigError naming the command that makes it; core/train's environment
  // pretrains it instead (and rebuilds one made by another recipe).
  virtual std::filesystem::path builtin_base(const std::string& preset) const;
};

// A base model loaded frozen on the CPU, with where it came from.
struct LoadedBase {
  CpuBackend backend;
  MemoryLedger ledger;
  std::unique_ptr<Model> model;
  ResolvedSource source;
  std::string fingerprint;
};
// `spec` as resolve_base takes it; ConfigError("base", ...) when it is neither
// a preset nor an existing file or folder, FormatError for a bad model file.
void load_base(const std::string& spec, const SourceEnvironment& env, LoadedBase& out);
void load_base(const ResolvedSource& source, const SourceEnvironment& env, LoadedBase& out);

}  // namespace lwb
