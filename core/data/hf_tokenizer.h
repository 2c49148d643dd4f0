#pragma once
// Tokenizers of Hugging Face model folders.
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "core/data/tokenizer.h"

namespace lwb::data {

// The folder's tokenizer: tokenizer.json (a BPE model: byte-level like GPT-2,
// Llama-3, SmolLM, Qwen2, or SentencePiece-style like Llama-2), else
// tokenizer.model (SentencePiece, through its library). Special tokens and
// add_bos/add_eos come from tokenizer_config.json (else
// special_tokens_map.json), extra stop ids from generation_config.json.
// FormatError naming the file and the place for anything this build cannot
// run (another model type, an unknown pre-tokenizer, bad JSON); FormatError
// naming the folder when it has neither tokenizer file.
std::unique_ptr<Tokenizer> load_hf_tokenizer(const std::filesystem::path& dir);

// One tokenizer.json on its own: special ids are what the file itself shows
// (the post-processor's tokens, the model's unk).
std::unique_ptr<Tokenizer> load_tokenizer_json(const std::filesystem::path& file);
// The same from the file's text; `source` names it in messages.
std::unique_ptr<Tokenizer> tokenizer_from_json(std::string_view text, const std::string& source);

}  // namespace lwb::data
