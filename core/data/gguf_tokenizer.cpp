#include "core/data/gguf_tokenizer.h"

#include <algorithm>
#include <unordered_set>

#include "core/common/errors.h"
#include "core/data/bpe_tokenizer.h"

namespace lwb::data {

namespace {

// Each pre-tokenizer as its tokenizer.json spells it (PCRE2 takes the
// originals, so llama.cpp's rewrites for its own regex engine are not needed).
constexpr const char* kLlama3Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*)"
    R"(|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kQwen2Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*)"
    R"(|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kTekkenPattern =
    R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+)"
    R"(|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*)"
    R"(|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

const std::vector<GgufPreTokenizer>& pre_tokenizers() {
  static const std::vector<GgufPreTokenizer> table = {
      {{"gpt2", "gpt-2", "phi-2", "mpt", "olmo", "roberta-bpe"}, {kGpt2Pattern}},
      {{"llama3", "llama-v3", "llama-bpe", "falcon3", "pixtral"}, {kLlama3Pattern}, false, true, true},
      {{"dbrx", "smaug-bpe"}, {kLlama3Pattern}},
      // SmolLM and StarCoder: every digit alone, then GPT-2's split.
      {{"smollm", "starcoder", "refact", "command-r", "codeshell", "exaone", "minerva-7b"},
       {R"(\p{N})", kGpt2Pattern}},
      {{"qwen2", "deepseek-r1-qwen", "megrez"}, {kQwen2Pattern}, true},
      {{"stablelm2"}, {kQwen2Pattern}},
      {{"tekken"}, {kTekkenPattern}, false, true, true},
  };
  return table;
}

// The vocabulary part shared by both models: pieces, added tokens, specials.
VocabSpec vocab_spec(const GgufVocab& v, const PieceDecoding& decoding, bool add_bos, bool add_eos) {
  if (v.tokens.empty()) throw FormatError(v.source, "tokenizer.ggml.tokens is empty");
  if (!v.token_types.empty() && v.token_types.size() != v.tokens.size())
    throw FormatError(v.source, "tokenizer.ggml.token_type has " + std::to_string(v.token_types.size()) +
                                    " entries for " + std::to_string(v.tokens.size()) + " tokens");
  std::unordered_set<std::string_view> seen;
  for (const std::string& t : v.tokens)
    if (!t.empty() && !seen.insert(t).second)
      throw FormatError(v.source, "tokenizer.ggml.tokens has \"" + t + "\" twice");

  VocabSpec s;
  s.source = v.source;
  s.pieces = v.tokens;
  s.piece_bytes.reserve(v.tokens.size());
  for (std::size_t id = 0; id < v.tokens.size(); ++id) {
    const std::int32_t type = gguf_token_type(v, id);
    const bool added = gguf_added_token(type);
    s.piece_bytes.push_back(added ? v.tokens[id] : decode_piece(v.tokens[id], decoding));
    if (added) s.added.push_back({v.tokens[id], static_cast<std::int32_t>(id), type != kGgufUserDefined});
  }
  s.bos = v.bos, s.eos = v.eos, s.pad = v.pad, s.unk = v.unk;
  if (add_bos) {
    if (v.bos < 0) throw FormatError(v.source, "tokenizer.ggml.add_bos_token is true but there is no bos_token_id");
    s.prefix.push_back(v.bos);
  }
  if (add_eos) {
    if (v.eos < 0) throw FormatError(v.source, "tokenizer.ggml.add_eos_token is true but there is no eos_token_id");
    s.suffix.push_back(v.eos);
  }
  for (std::int32_t id : {v.eot, v.eom})
    if (id >= 0) s.stop.push_back(id);
  return s;
}

}  // namespace

const GgufPreTokenizer& gguf_pre_tokenizer(const GgufVocab& v) {
  std::string known;
  for (const GgufPreTokenizer& p : pre_tokenizers())
    for (const char* name : p.names) {
      if (v.pre == name) return p;
      known += (known.empty() ? "" : ", ") + std::string(name);
    }
  throw FormatError(v.source, "tokenizer.ggml.pre \"" + v.pre + "\" is not a pre-tokenizer this build knows (" +
                                  known + ")");
}

bool gguf_adds_bos(const GgufVocab& v) {
  return v.add_bos.value_or(v.model == "gpt2" ? gguf_pre_tokenizer(v).add_bos : true);
}

bool gguf_adds_eos(const GgufVocab& v) { return v.add_eos.value_or(false); }

std::vector<std::pair<std::string, std::string>> gguf_merges(const GgufVocab& v) {
  if (v.merges.empty()) throw FormatError(v.source, "tokenizer.ggml.merges is missing or empty");
  std::vector<std::pair<std::string, std::string>> merges;
  merges.reserve(v.merges.size());
  for (std::size_t i = 0; i < v.merges.size(); ++i) {
    const std::size_t space = v.merges[i].find(' ', 1);
    if (space == std::string::npos)
      throw FormatError(v.source, "tokenizer.ggml.merges[" + std::to_string(i) + "] \"" + v.merges[i] +
                                      "\" is not \"left right\"");
    merges.emplace_back(v.merges[i].substr(0, space), v.merges[i].substr(space + 1));
  }
  return merges;
}

std::unique_ptr<Tokenizer> make_gguf_tokenizer(const GgufVocab& v) {
  BpeSpec spec;
  if (v.model == "gpt2") {
    const GgufPreTokenizer& pre = gguf_pre_tokenizer(v);
    PieceDecoding decoding;
    decoding.byte_level = true;
    spec.vocab = vocab_spec(v, decoding, gguf_adds_bos(v), gguf_adds_eos(v));
    if (pre.nfc) spec.normalizer.push_back({NormalizerStep::Kind::unicode, NormalForm::nfc, {}, {}, {}});
    for (const char* pattern : pre.patterns) {
      PreTokenizerStep step;
      step.regex.emplace(pattern, v.source);
      spec.pre_tokenizer.push_back(std::move(step));
    }
    spec.byte_level = true;
    spec.ignore_merges = pre.ignore_merges;
    spec.merges = gguf_merges(v);
    return std::make_unique<BpeTokenizer>("gguf-gpt2", std::move(spec));
  }
  if (v.model == "llama") {
    const bool space_prefix = gguf_space_prefix(v);
    PieceDecoding decoding;
    decoding.space_marker = "\u2581";
    decoding.byte_tokens = true;
    spec.vocab = vocab_spec(v, decoding, gguf_adds_bos(v), gguf_adds_eos(v));
    spec.vocab.strip_leading_space = space_prefix;
    if (space_prefix) spec.normalizer.push_back({NormalizerStep::Kind::prepend, {}, " ", {}, {}});
    spec.normalizer.push_back({NormalizerStep::Kind::replace, {}, " ", "\u2581", {}});
    spec.byte_fallback = true;
    spec.fuse_unk = true;
    if (v.scores.size() != v.tokens.size())
      throw FormatError(v.source, "tokenizer.ggml.scores has " + std::to_string(v.scores.size()) + " entries for " +
                                      std::to_string(v.tokens.size()) + " tokens");
    spec.scores = v.scores;
    if (!v.token_types.empty()) {
      spec.mergeable.resize(v.tokens.size());
      for (std::size_t id = 0; id < v.tokens.size(); ++id) spec.mergeable[id] = gguf_token_type(v, id) == kGgufNormal;
    }
    return std::make_unique<BpeTokenizer>("gguf-llama", std::move(spec));
  }
  throw FormatError(v.source, "tokenizer.ggml.model \"" + v.model +
                                  "\" is not supported (this build runs gpt2: byte-level BPE, llama: SentencePiece)");
}

}  // namespace lwb::data
