#pragma once
// BPE with the text pipeline in front of it, as Hugging Face's tokenizers
// runs it: normalize, pre-tokenize into pieces, then merge each piece by rank.
// One class covers byte-level BPE (GPT-2, Llama-3, SmolLM, Qwen2: every byte
// is a printable character first) and SentencePiece-style BPE (Llama-2,
// TinyLlama: "▁" for spaces, <0xHH> byte fallback), read from tokenizer.json
// (hf_tokenizer.h) or from GGUF metadata (gguf_tokenizer.h).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/data/unicode.h"
#include "core/data/vocab_tokenizer.h"

namespace lwb::data {

struct NormalizerStep {
  enum class Kind { unicode, prepend, replace };
  Kind kind = Kind::unicode;
  NormalForm form = NormalForm::nfc;  // unicode
  std::string text, with;             // prepend `text`; replace `text` by `with`
};

enum class SplitBehavior { isolated, removed, merged_with_previous, merged_with_next, contiguous };
enum class PrependScheme { never, first, always };

struct PreTokenizerStep {
  enum class Kind { split, prefix_space, metaspace };
  Kind kind = Kind::split;
  // split: the regex's matches are the delimiters (or, inverted, the rest).
  std::optional<Regex> regex;
  SplitBehavior behavior = SplitBehavior::isolated;
  bool invert = false;
  // metaspace: spaces become `replacement`, prefixed per `prepend`, and the
  // piece is split before each replacement when `split_words`.
  std::string replacement;
  PrependScheme prepend = PrependScheme::never;
  bool split_words = false;
};

struct BpeSpec {
  VocabSpec vocab;
  std::vector<NormalizerStep> normalizer;
  std::vector<PreTokenizerStep> pre_tokenizer;
  bool byte_level = false;     // pieces are mapped byte -> printable char before merging
  bool byte_fallback = false;  // an unknown char becomes its <0xHH> tokens
  bool fuse_unk = false;       // consecutive unknown chars give one unk
  bool ignore_merges = false;  // a piece that is a token is taken whole (Llama-3)
  // Merge order: ranked pairs (tokenizer.json, GGUF gpt2), or, when `scores`
  // is given, every pair whose concatenation is a token, best score first
  // (SentencePiece BPE, GGUF llama). Pairs are strings as in the vocabulary.
  std::vector<std::pair<std::string, std::string>> merges;
  std::vector<float> scores;
  std::vector<bool> mergeable;  // with scores: tokens a merge may produce (empty: all)
};

// The split of Hugging Face's ByteLevel pre-tokenizer (use_regex) and GPT-2's.
inline constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";


class BpeTokenizer final : public VocabTokenizer {
 public:
  // FormatError(spec.vocab.source, ...) for a merge of unknown tokens.
  BpeTokenizer(std::string name, BpeSpec spec);

 private:
  void encode_text(std::string_view text, bool at_start, std::vector<std::int32_t>& out) const override;
  void normalize(std::string_view text, std::string& out) const;
  void encode_piece(std::string_view piece, std::vector<std::int32_t>& out) const;
  void merge(std::vector<std::int32_t>& symbols) const;

  struct Merge {
    std::int32_t rank, id;
  };
  static std::uint64_t pair_key(std::int32_t a, std::int32_t b) {
    return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(a)) << 32) | static_cast<std::uint32_t>(b);
  }

  std::vector<NormalizerStep> normalizer_;
  std::vector<PreTokenizerStep> pre_tokenizer_;
  bool byte_level_, byte_fallback_, fuse_unk_, ignore_merges_;
  std::unordered_map<std::uint64_t, Merge> merges_;
  std::int32_t byte_ids_[256];  // byte-level: the token of each byte; else <0xHH>; -1 if none
};

}  // namespace lwb::data
