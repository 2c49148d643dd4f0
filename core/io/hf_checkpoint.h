#pragma once
// Hugging Face LLaMA checkpoints: a folder with config.json and model.safetensors
// (or shards listed in model.safetensors.index.json) that
// LlamaForCausalLM.from_pretrained loads, and that this program reads back.
// Field and tensor names per PEFT_REFERENCE.md ("HF LLaMA checkpoints").
#include <cstdint>
#include <filesystem>
#include <string>

#include "core/data/tokenizer.h"
#include "core/format/safetensors.h"

#include "core/model/config.h"
#include "core/model/model.h"

namespace lwb::io {

// transformers 4's save_pretrained default (5 GB); transformers 5 uses 50 GB.
constexpr std::uint64_t kDefaultMaxShardBytes = 5'000'000'000;

struct HfExport {
  StDType dtype = StDType::F32;  // of the weights: F32, F16 or BF16 (rounded to nearest even)
  // Shards as transformers makes them: tensors in order, a new
  // model-0000i-of-0000n.safetensors when the next would pass this size (a
  // larger tensor gets a shard of its own), and model.safetensors.index.json;
  // one model.safetensors when everything fits.
  std::uint64_t max_shard_bytes = kDefaultMaxShardBytes;
  // Its bos, eos and pad ids go into config.json and generation_config.json
  // (eos: every stop id when there are several); without one, this
  // program's byte tokenizer's for byte models, else none.
  const data::Tokenizer* tokenizer = nullptr;
};

// config.json with the model's shape (LlamaForCausalLM, silu, no biases,
// rope_scaling for llama3 rotary scaling else null, torch_dtype, the special
// token ids) and, for this program's byte-level models, "lwb_tokenizer";
// generation_config.json; the base weights under HF names (lm_head omitted
// when tied) in one file or shards. Files are replaced atomically; weight
// files of an earlier export that this one does not write are removed.
void export_hf_checkpoint(const Model& model, const std::filesystem::path& dir, const HfExport& options = {});

// The model shape in dir/config.json. model_type must be llama (or a mistral
// config without a sliding window), hidden_act silu, rotary scaling none or
// Llama-3's (rope_scaling as transformers 4 writes it, or rope_parameters as
// transformers 5 does; rope_theta at the top or inside rope_parameters) and
// no attention or MLP biases: anything else is a FormatError naming the file
// and field, since this engine would compute a different function. Missing
// optional fields take LlamaConfig's defaults. The tokenizer is
// "lwb_tokenizer" when present (this program's own), else "hf": the folder's
// tokenizer files (core/source loads them).
ModelConfig read_hf_config(const std::filesystem::path& dir);
// The same from config.json's text: `source` names the file in messages, and
// `folder_name` is the model's name when the config has no "lwb_name".
ModelConfig parse_hf_config(const std::string& text, const std::string& source, const std::string& folder_name);

// The dtype the folder's weights are kept in, for exports that keep it:
// config.json's dtype (transformers 5) or torch_dtype (transformers 4) when it
// is float32, float16 or bfloat16, else the first weight's; F32 otherwise.
StDType read_hf_dtype(const std::filesystem::path& dir);

// Loads every base weight of `model` (materialised, shaped as read_hf_config
// says) from dir/model.safetensors or the shards of
// dir/model.safetensors.index.json, converting F16/BF16/F64 to the model's
// dtype. Missing tensors, wrong shapes or dtypes and unexpected tensors
// (rotary inv_freq buffers aside) are listed together in one FormatError
// before anything is uploaded.
void import_hf_weights(Model& model, const std::filesystem::path& dir);

}  // namespace lwb::io
