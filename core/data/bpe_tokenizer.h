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
#include <utility>
#include <vector>

#include "core/data/unicode.h"
#include "core/data/vocab_tokenizer.h"

namespace lwb::data {

struct NormalizerStep {
  enum class Kind { unicode, prepend, replace };
  Kind kind = Kind::unicode;
  NormalForm form = NormalForm::nfc;  // unicode
  std::string text, with;             // prepend `text`; replace `text` (or `regex`'s matches) by `with`
  std::optional<Regex> regex;
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


// Pair of token ids -> the merge that joins them. Open addressing over a
// power-of-two table: this lookup is BPE's inner loop, where
// std::unordered_map's prime modulo and node hops took half the encode time.
class MergeTable {
 public:
  struct Merge {
    std::int32_t rank, id;
  };
  static std::uint64_t key(std::int32_t left, std::int32_t right) {
    return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(left)) << 32) | static_cast<std::uint32_t>(right);
  }
  // A later entry for the same pair replaces an earlier one, as in Hugging Face.
  void build(const std::vector<std::pair<std::uint64_t, Merge>>& entries);
  const Merge* find(std::int32_t left, std::int32_t right) const;
  bool empty() const { return keys_.empty(); }

 private:
  std::size_t slot(std::uint64_t key) const;
  std::vector<std::uint64_t> keys_;  // kFree where unused
  std::vector<Merge> values_;
  std::uint64_t mask_ = 0;
};

class BpeTokenizer final : public VocabTokenizer {
 public:
  // FormatError(spec.vocab.source, ...) for a merge of unknown tokens.
  BpeTokenizer(std::string name, BpeSpec spec);

 private:
  struct Scratch;  // buffers reused across the pieces of one encode
  void encode_text(std::string_view text, bool at_start, std::vector<std::int32_t>& out) const override;
  void normalize(std::string_view text, std::string& out) const;
  void encode_piece(std::string_view piece, Scratch& s, std::vector<std::int32_t>& out) const;
  void merge(Scratch& s) const;

  std::vector<NormalizerStep> normalizer_;
  std::vector<PreTokenizerStep> pre_tokenizer_;
  bool byte_level_, byte_fallback_, fuse_unk_, ignore_merges_;
  MergeTable merges_;
  std::int32_t byte_ids_[256];  // byte-level: the token of each byte; else <0xHH>; -1 if none
};

}  // namespace lwb::data
