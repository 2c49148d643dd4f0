#pragma once
// A GGUF file's tokenizer as the files of a Hugging Face folder, so that a
// model exported from a GGUF base loads with AutoTokenizer.from_pretrained
// and tokenizes as llama.cpp (and make_gguf_tokenizer) does:
//  - "gpt2": a byte-level BPE tokenizer.json with the pre-tokenizer's own
//    regexes as Split steps (so SmolLM's digit split survives; transformers'
//    GGUF loader drops it);
//  - "llama": SentencePiece BPE as transformers 4's LlamaConverter wrote it
//    (Prepend + Replace normalizer, byte fallback, merges ranked by the
//    merged token's score), which puts the space prefix after every special
//    token as llama.cpp does.
#include <cstdint>
#include <optional>
#include <string>

#include "core/data/gguf_tokenizer.h"

namespace lwb::data {

struct HfTokenizerFiles {
  std::string tokenizer_json;
  std::string tokenizer_config_json;    // special tokens, add_bos/eos_token, chat_template, model_max_length
  std::string special_tokens_map_json;
};

// The three files' text. The vocabulary is checked first as
// make_gguf_tokenizer checks it, so a model type other than gpt2 or llama,
// an unknown pre-tokenizer or an inconsistent vocabulary is a FormatError
// naming the file and key.
HfTokenizerFiles gguf_to_hf_tokenizer(const GgufVocab& vocab, const std::optional<std::string>& chat_template,
                                      std::int64_t model_max_length);

}  // namespace lwb::data
