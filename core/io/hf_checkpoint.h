#pragma once
// Hugging Face LLaMA checkpoints: a folder with config.json and model.safetensors
// (or shards listed in model.safetensors.index.json) that
// LlamaForCausalLM.from_pretrained loads, and that this program reads back.
// Field and tensor names per PEFT_REFERENCE.md ("HF LLaMA checkpoints").
#include <filesystem>
#include <string>

#include "core/model/config.h"
#include "core/model/model.h"

namespace lwb::io {

// config.json with the model's shape (LlamaForCausalLM, silu, no biases,
// rope_scaling for llama3 rotary scaling else null, float32) and "lwb_tokenizer" naming this program's tokenizer,
// plus model.safetensors with the base weights under HF names (lm_head
// omitted when tied). Files are replaced atomically.
void export_hf_checkpoint(const Model& model, const std::filesystem::path& dir);

// The model shape in dir/config.json. model_type must be llama (or a mistral
// config without a sliding window), hidden_act silu, no rope_scaling and no
// attention or MLP biases: anything else is a FormatError naming the file and
// field, since this engine would compute a different function. Missing
// optional fields take LlamaConfig's defaults. The tokenizer is
// "lwb_tokenizer" when present, else "hf" (not one this build can run).
ModelConfig read_hf_config(const std::filesystem::path& dir);

// Loads every base weight of `model` (materialised, shaped as read_hf_config
// says) from dir/model.safetensors or the shards of
// dir/model.safetensors.index.json, converting F16/BF16/F64 to the model's
// dtype. Missing tensors, wrong shapes or dtypes and unexpected tensors
// (rotary inv_freq buffers aside) are listed together in one FormatError
// before anything is uploaded.
void import_hf_weights(Model& model, const std::filesystem::path& dir);

}  // namespace lwb::io
