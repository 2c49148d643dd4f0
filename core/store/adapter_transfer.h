#pragma once
// Adapters in and out of the store's library, shared by the CLI (`export`,
// `import`) and the window's library panel:
//  - as PEFT folders (adapter_config.json + adapter_model.safetensors), the
//    form PEFT and the Python ecosystem load; a ReLoRA run's adapter is kept
//    as its whole update, one LoRA of rank r·(resets+1) relative to the
//    original base, so it exports like any LoRA;
//  - merged into its base as a Hugging Face LLaMA checkpoint (in the base's
//    dtype, sharded as transformers shards, with the base's tokenizer files
//    and special token ids) or as a GGUF file (F32, F16 or Q8_0, with the
//    base's tokenizer metadata).
// Bases come from core/source (presets, downloaded models, Hugging Face
// folders, GGUF files, checkpoints). Imports are checked key by key against
// the chosen base, and refused when the adapter records another base's
// fingerprint.
#include <cstdint>
#include <filesystem>
#include <string>

#include "core/io/gguf_model.h"
#include "core/io/hf_checkpoint.h"
#include "core/source/model_source.h"
#include "core/store/store.h"

namespace lwb {

// ConfigError("export.out", ...) when `dir` exists and is not empty and
// `overwrite` is false: nothing is ever replaced unasked.
void check_export_folder(const std::filesystem::path& dir, bool overwrite);

// The adapter as a PEFT folder. base_model_name_or_path is
// `base_model_name_or_path` when given, else peft_base_model_name of the
// adapter's base (a GGUF base's hub repository, else the recorded base);
// the weights' metadata keeps the recorded base (lwb.base_model) either way.
// Returns what base_model_name_or_path says.
std::string export_adapter_peft(Store& store, std::int64_t adapter_id, const std::filesystem::path& dir,
                                bool overwrite, const std::string& base_model_name_or_path = {});

// A PiSSA run's adapter (kept converted, as a plain LoRA of the original
// base) in PEFT's unconverted form instead: what save_pretrained without
// path_initial_model_for_weight_conversion writes, the trained A and B of
// rank r relative to the residual base W - s B0 A0, with init_lora_weights
// "pissa" or "pissa_niter_K" (PEFT's from_pretrained redoes the SVD of the
// original base). With residual_dir, the residual base is written there as a
// Hugging Face folder and the adapter is its plain LoRA (init_lora_weights
// true, base_model_name_or_path the residual folder), as PEFT's PiSSA
// example saves the two. ConfigError("export.form") for an adapter that has
// no unconverted form. Returns what base_model_name_or_path says.
struct UnconvertedExport {
  std::filesystem::path residual_dir;  // empty: the adapter alone
  std::string base_spec;               // the original base; empty: the one the adapter records
  std::string base_model_name_or_path;  // empty: as export_adapter_peft, or the residual folder
  bool overwrite = false;
};
std::string export_adapter_unconverted(Store& store, std::int64_t adapter_id, const std::filesystem::path& dir,
                                       const UnconvertedExport& options, const SourceEnvironment& env);

struct MergedExport {
  enum class Format { HfFolder, Gguf };
  Format format = Format::HfFolder;
  // Empty: the base the adapter records (its base_model_name_or_path).
  std::string base_spec;
  io::GgufExportType gguf_type = io::GgufExportType::F32;
  std::uint64_t max_shard_bytes = io::kDefaultMaxShardBytes;
  bool overwrite = false;
};

// The base with the adapter merged in: a Hugging Face folder at `out`, or a
// GGUF file at `out`. FormatError when the base is not the one the adapter
// was trained on.
void export_adapter_merged(Store& store, std::int64_t adapter_id, const std::filesystem::path& out,
                           const MergedExport& options, const SourceEnvironment& env);

// A base (with no adapter) the same two ways: the Hugging Face folder keeps
// the source's dtype and tokenizer files, the GGUF file carries its
// tokenizer metadata.
void export_base(const LoadedBase& base, const std::filesystem::path& out, const MergedExport& options);

// Reads a PEFT folder, checks it against the base and keeps it in the library
// under `name` (unique). A folder in a variant's unconverted form (PiSSA's
// init_lora_weights "pissa") is rewritten against the base's weights into the
// form training keeps (to_kept_form); "pissa_niter_K" is refused, saying why.
// Returns the new adapter id.
std::int64_t import_adapter_peft(Store& store, const std::filesystem::path& dir, const std::string& name,
                                 const std::string& base_spec, const std::string& task, const SourceEnvironment& env);

}  // namespace lwb
