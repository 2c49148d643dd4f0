#pragma once
// The tokenizer a GGUF file carries in its tokenizer.ggml.* metadata, given
// as plain vectors so that this needs no GGUF reader (the reader fills this
// struct from the keys named beside each field).
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
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

// llama.cpp's text pipeline for a "gpt2" vocabulary, named by
// tokenizer.ggml.pre, as the model's own tokenizer.json spells it: NFC first
// (Qwen2), then a Split (isolated) per pattern, then byte-level BPE.
struct GgufPreTokenizer {
  std::vector<const char*> names;  // tokenizer.ggml.pre values (llama.cpp's aliases)
  std::vector<const char*> patterns;
  bool nfc = false;            // Qwen2's tokenizer.json normalizes to NFC first
  bool ignore_merges = false;  // a piece that is a token is taken whole
  bool add_bos = false;        // llama.cpp's default when add_bos_token is absent
};
// FormatError(source, ...) naming tokenizer.ggml.pre for a name it does not know.
const GgufPreTokenizer& gguf_pre_tokenizer(const GgufVocab& vocab);

// Whether encoding with special tokens puts bos in front and eos at the end:
// the file's flags, else llama.cpp's defaults for the model.
bool gguf_adds_bos(const GgufVocab& vocab);
bool gguf_adds_eos(const GgufVocab& vocab);

// tokenizer.ggml.merges as pairs, split as llama.cpp splits them (at the
// first space after the first byte); FormatError naming the entry otherwise.
std::vector<std::pair<std::string, std::string>> gguf_merges(const GgufVocab& vocab);

// tokenizer.ggml.token_type of an id: normal when the file gives none.
inline std::int32_t gguf_token_type(const GgufVocab& v, std::size_t id) {
  return v.token_types.empty() ? kGgufNormal : v.token_types[id];
}
// "llama": the text gets a leading space (add_space_prefix, default true).
inline bool gguf_space_prefix(const GgufVocab& v) { return v.add_space_prefix.value_or(true); }

// Control, user-defined and unknown tokens are matched in the text before
// BPE (as added tokens); all but user-defined ones are special.
inline bool gguf_added_token(std::int32_t type) {
  return type == kGgufControl || type == kGgufUserDefined || type == kGgufUnknown;
}

// "gpt2": byte-level BPE with the pre-tokenizer named by `pre` (gpt-2/gpt2,
// llama3/llama-v3/llama-bpe, smollm, qwen2, tekken, and llama.cpp's aliases
// of those). "llama": SentencePiece BPE by scores with <0xHH> byte fallback.
// FormatError(source, ...) naming the key for anything else or inconsistent.
std::unique_ptr<Tokenizer> make_gguf_tokenizer(const GgufVocab& vocab);

}  // namespace lwb::data
