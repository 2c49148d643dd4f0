#pragma once
// Adapters in and out of the store's library, shared by the CLI (`export`,
// `import`) and the window's library panel:
//  - as PEFT folders (adapter_config.json + adapter_model.safetensors), the
//    form PEFT and the Python ecosystem load; a ReLoRA run's adapter is kept
//    as its whole update, one LoRA of rank r·(resets+1) relative to the
//    original base, so it exports like any LoRA;
//  - merged into its base as a Hugging Face LLaMA checkpoint.
// Imports are checked key by key against the chosen base, and refused when
// the adapter records another base's fingerprint.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "core/cpu/cpu_backend.h"
#include "core/tensor/ledger.h"
#include "core/model/model.h"
#include "core/store/store.h"
#include "core/train/trainer.h"

namespace lwb {

// A base model loaded frozen on the CPU: a built-in preset name ("tiny",
// "small": its cached base, built on first use), a base checkpoint
// (.safetensors) or a Hugging Face folder.
struct LoadedBase {
  CpuBackend backend;
  MemoryLedger ledger;
  std::unique_ptr<Model> model;
  std::string fingerprint;
  std::string base_model;  // "lora-workbench/tiny" for presets, else the path as given
};
// ConfigError("base", ...) when the spec is neither a preset nor an existing
// file or folder; FormatError for a bad checkpoint.
void load_base(const std::string& spec, const TrainerEnvironment& env, LoadedBase& out);

// The spec of the base an adapter records ("lora-workbench/tiny" -> "tiny");
// empty when it is not a built-in one.
std::string builtin_base_spec(const AdapterState& adapter);

// ConfigError("export.out", ...) when `dir` exists and is not empty and
// `overwrite` is false: nothing is ever replaced unasked.
void check_export_folder(const std::filesystem::path& dir, bool overwrite);

// The adapter as a PEFT folder.
void export_adapter_peft(Store& store, std::int64_t adapter_id, const std::filesystem::path& dir, bool overwrite);

// The base with the adapter merged in, as a Hugging Face LLaMA checkpoint.
// base_spec empty: the adapter's own built-in base. FormatError when the base
// is not the one the adapter was trained on.
void export_adapter_merged(Store& store, std::int64_t adapter_id, const std::string& base_spec,
                           const std::filesystem::path& dir, bool overwrite, const TrainerEnvironment& env);

// Reads a PEFT folder, checks it against the base and keeps it in the library
// under `name` (unique). Returns the new adapter id.
std::int64_t import_adapter_peft(Store& store, const std::filesystem::path& dir, const std::string& name,
                                 const std::string& base_spec, const std::string& task,
                                 const TrainerEnvironment& env);

}  // namespace lwb
