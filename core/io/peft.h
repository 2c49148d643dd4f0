#pragma once
// PEFT adapter folders: adapter_config.json + adapter_model.safetensors, laid
// out so that `PeftModel.from_pretrained` loads them (keys and config fields
// per PEFT_REFERENCE.md), and read back from PEFT's own output.
//
// What a variant's files hold is its descriptor's PEFT form
// (core/adapters/descriptor.h): the peft_type, the fields of its config and
// how its tensors sit in the file (AdaLoRA: sliced to the ranks its
// rank_pattern keeps). The safetensors metadata lwb.method remembers the
// variant where PEFT's type does not (ReLoRA is written as the plain LoRA of
// its whole update), and lwb.trained_as the config a converted adapter
// trained with (PiSSA's, kept as a plain LoRA of the original base). A
// folder in a variant's unconverted form (PiSSA's init_lora_weights "pissa")
// is read marked AdapterState::needs_original_base.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "core/adapters/adapter_state.h"

namespace lwb {
struct PeftAdapterFields;  // core/adapters/descriptor.h
}  // namespace lwb

namespace lwb::io {

// base_model_name_or_path is `base_model_name_or_path` when given (e.g. the
// hub id of a GGUF base), else state.base_model.
std::string peft_config_json(const AdapterState& state, const std::string& base_model_name_or_path = {});
// The weights, with the base as this program names it (state.base_model, a
// preset or a local path) in the metadata as lwb.base_model, so that the base
// is found again whatever base_model_name_or_path says.
std::vector<std::uint8_t> peft_safetensors_bytes(const AdapterState& state);
// Writes both files into dir (created if needed); existing files are replaced
// atomically.
void write_peft_folder(const std::filesystem::path& dir, const AdapterState& state,
                       const std::string& base_model_name_or_path = {});

// Reads a PEFT folder written here or by PEFT: the state's base_model is the
// weights' lwb.base_model, else base_model_name_or_path; unknown config keys are
// ignored; features this program cannot reproduce (peft_types no variant has, regex
// target_modules, per-module ranks or alphas, fan_in_fan_out, biases,
// layers_to_transform, modules_to_save, ...) are a FormatError naming the file
// and field. Tensors come back in AdapterState's full shape (AdaLoRA
// un-sliced to init_r, masked triplets zero) as float32. The state's model is
// `base` when given, else the one in the weights' lwb.model_config metadata,
// else unknown. The adapter is checked
// (check_adapter_fits) against `base` when given, else against its own model
// when known. A folder whose weights hold NaN or infinite values is refused,
// naming the tensor and the count.
AdapterState read_peft_folder(const std::filesystem::path& dir, const ModelConfig* base = nullptr);
// The same for the two files' contents held in memory (e.g. the store's
// blobs); messages name `label`.
AdapterState read_peft_blobs(const std::string& config_json, std::vector<std::uint8_t> safetensors,
                             const std::string& label, const ModelConfig* base = nullptr);
// The adapter_config.json text as both reads above parse it, before any
// tensor is read; lwb_method is the weights' lwb.method metadata (empty when
// absent), which picks among the variants of one peft_type. Errors name
// `source`. Public for the fuzz target (tests/fuzz/fuzz_peft_config.cpp).
PeftAdapterFields parse_peft_config(const std::string& text, const std::string& source,
                                    const std::string& lwb_method);

}  // namespace lwb::io
