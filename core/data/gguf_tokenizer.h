#pragma once
// The tokenizer a GGUF file carries in its tokenizer.ggml.* metadata, given
// as plain vectors so that this needs no GGUF reader (the reader fills this
// struct from the keys named beside each field).
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/data/tokenizer.h"

namespace lwb::data {

// llama.cpp's token types (tokenizer.ggml.token_type).
enum GgufTokenType : std::int32_t {
  kGgufNormal = 1,
  kGgufUnknown = 2,
  kGgufControl = 3,      // special: matched only when asked, skipped by decode
  kGgufUserDefined = 4,  // added token, always matched
  kGgufUnused = 5,
  kGgufByte = 6,         // <0xHH>
};

struct GgufVocab {
  std::string source;                     // the file, for messages
  std::string model;                      // tokenizer.ggml.model: "gpt2" or "llama"
  std::string pre;                        // tokenizer.ggml.pre (gpt2 only)
  std::vector<std::string> tokens;        // tokenizer.ggml.tokens
  std::vector<std::int32_t> token_types;  // tokenizer.ggml.token_type (may be empty: all normal)
  std::vector<float> scores;              // tokenizer.ggml.scores (llama)
  std::vector<std::string> merges;        // tokenizer.ggml.merges, "left right" (gpt2)
  // tokenizer.ggml.{bos,eos,padding,unknown,eot,eom}_token_id; -1 when absent.
  std::int32_t bos = -1, eos = -1, pad = -1, unk = -1, eot = -1, eom = -1;
  // tokenizer.ggml.add_bos_token, add_eos_token, add_space_prefix; absent
  // ones take llama.cpp's defaults for the model and pre-tokenizer.
  std::optional<bool> add_bos, add_eos, add_space_prefix;
};

// "gpt2": byte-level BPE with the pre-tokenizer named by `pre` (gpt-2/gpt2,
// llama3/llama-v3/llama-bpe, smollm, qwen2, tekken, and llama.cpp's aliases
// of those). "llama": SentencePiece BPE by scores with <0xHH> byte fallback.
// FormatError(source, ...) naming the key for anything else or inconsistent.
std::unique_ptr<Tokenizer> make_gguf_tokenizer(const GgufVocab& vocab);

}  // namespace lwb::data
