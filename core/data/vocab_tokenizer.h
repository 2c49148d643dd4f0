#pragma once
// What every tokenizer with a real vocabulary shares, whatever its algorithm:
// the id <-> piece tables, the added tokens matched before the model, the
// special ids, what add_special wraps around the text, and decoding (every id
// stands for fixed bytes, so decode is a concatenation).
#include <string>
#include <unordered_map>
#include <vector>

#include "core/data/added_tokens.h"
#include "core/data/tokenizer.h"

namespace lwb::data {

struct VocabSpec {
  std::string source;                     // the file, for messages
  std::vector<std::string> pieces;        // by id; empty where the vocabulary has a hole
  std::vector<std::string> piece_bytes;   // by id: what decode writes for it
  std::vector<AddedToken> added;          // their ids index `pieces` too
  std::int32_t bos = -1, eos = -1, pad = -1, unk = -1;
  std::vector<std::int32_t> prefix, suffix;  // added around the text by add_special
  // Generation stops here; eos and special turn ends (<|im_end|>, <|eot_id|>)
  // are added, ids outside the vocabulary dropped.
  std::vector<std::int32_t> stop;
  bool strip_leading_space = false;          // decode drops the space the encoder prefixed
};

// GPT-2's table: byte b -> the code point that stands for it in byte-level vocabularies.
char32_t byte_to_unicode(unsigned char b);
// SentencePiece's byte token: "<0x0A>".
std::string byte_piece(unsigned char b);

// How a vocabulary token becomes output bytes (tokenizer.json's decoder).
struct PieceDecoding {
  bool byte_level = false;   // GPT-2's table reversed; a token with other chars stays as it is
  std::string space_marker;  // becomes a space ("▁")
  bool byte_tokens = false;  // <0xHH> is that byte
};
std::string decode_piece(std::string_view piece, const PieceDecoding& how);

// Hash and equality that let a string_view look up a std::string key.
struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using PieceMap = std::unordered_map<std::string, std::int32_t, StringHash, std::equal_to<>>;

class VocabTokenizer : public Tokenizer {
 public:
  std::string name() const override { return name_; }
  std::int32_t vocab_size() const override { return static_cast<std::int32_t>(spec_.pieces.size()); }
  std::int32_t bos() const override { return spec_.bos; }
  std::int32_t eos() const override { return spec_.eos; }
  std::int32_t pad() const override { return spec_.pad; }
  std::int32_t unk() const override { return spec_.unk; }
  std::string id_to_piece(std::int32_t id) const override;
  std::int32_t token_to_id(std::string_view piece) const override;
  bool is_special(std::int32_t id) const override;
  std::vector<std::int32_t> stop_ids() const override;

 protected:
  // FormatError(spec.source, ...) for ids out of range or a piece_bytes
  // table of the wrong size.
  VocabTokenizer(std::string name, VocabSpec spec);
  // Appends the ids of one stretch of text free of added tokens. `at_start`
  // when the stretch opens the input (no added token before it).
  virtual void encode_text(std::string_view text, bool at_start, std::vector<std::int32_t>& out) const = 0;
  const VocabSpec& spec() const { return spec_; }
  const PieceMap& piece_ids() const { return piece_ids_; }

 private:
  std::vector<std::int32_t> encode_impl(std::string_view text, const EncodeOptions& opt) const final;
  std::string decode_impl(std::span<const std::int32_t> ids, const DecodeOptions& opt) const final;

  std::string name_;
  VocabSpec spec_;
  PieceMap piece_ids_;
  std::vector<bool> special_;
  AddedTokenMatcher matcher_;
};

}  // namespace lwb::data
