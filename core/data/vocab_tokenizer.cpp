#include "core/data/vocab_tokenizer.h"

#include <algorithm>
#include <array>

#include "core/common/errors.h"
#include "core/data/unicode.h"

namespace lwb::data {

char32_t byte_to_unicode(unsigned char b) {
  // Printable Latin-1 bytes stand for themselves; the other 68 are moved, in
  // byte order, to U+0100 onwards.
  const auto printable = [](unsigned c) { return (c >= '!' && c <= '~') || (c >= 0xA1 && c <= 0xAC) || c >= 0xAE; };
  if (printable(b)) return b;
  char32_t n = 0;
  for (unsigned c = 0; c < b; ++c) n += printable(c) ? 0 : 1;
  return 0x100 + n;
}

std::string byte_piece(unsigned char b) {
  static const char* digits = "0123456789ABCDEF";
  return std::string("<0x") + digits[b >> 4] + digits[b & 15] + ">";
}

namespace {

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

}  // namespace

std::string decode_piece(std::string_view piece, const PieceDecoding& how) {
  if (how.byte_tokens && piece.size() == 6 && piece.substr(0, 3) == "<0x" && piece[5] == '>') {
    const int hi = hex_digit(piece[3]), lo = hex_digit(piece[4]);
    if (hi >= 0 && lo >= 0) return std::string(1, static_cast<char>(hi * 16 + lo));
  }
  std::string out;
  if (how.byte_level) {
    // Reverse of byte_to_unicode: U+0100.. are the moved bytes in order.
    static const auto table = [] {
      std::array<int, 0x144> t;
      t.fill(-1);
      for (int b = 0; b < 256; ++b) t[byte_to_unicode(static_cast<unsigned char>(b))] = b;
      return t;
    }();
    for (std::size_t i = 0; i < piece.size();) {
      const std::size_t len = utf8_length(piece, i);
      const char32_t c = len ? utf8_decode(piece, i, len) : 0x10FFFF;
      if (c >= table.size() || table[c] < 0) return std::string(piece);
      out.push_back(static_cast<char>(table[c]));
      i += len;
    }
    return out;
  }
  if (how.space_marker.empty()) return std::string(piece);
  for (std::size_t i = 0; i < piece.size();) {
    const bool marker = piece.compare(i, how.space_marker.size(), how.space_marker) == 0;
    out += marker ? ' ' : piece[i];
    i += marker ? how.space_marker.size() : 1;
  }
  return out;
}

VocabTokenizer::VocabTokenizer(std::string name, VocabSpec spec) : name_(std::move(name)), spec_(std::move(spec)) {
  const auto n = static_cast<std::int32_t>(spec_.pieces.size());
  if (spec_.piece_bytes.size() != spec_.pieces.size())
    throw FormatError(spec_.source, "internal: piece_bytes and pieces differ in size");
  const auto check = [&](std::int32_t id, const std::string& what) {
    if (id < -1 || id >= n)
      throw FormatError(spec_.source, what + " id " + std::to_string(id) + " is outside the vocabulary of " +
                                          std::to_string(n) + " tokens");
  };
  const std::pair<const char*, std::int32_t> named[] = {
      {"bos", spec_.bos}, {"eos", spec_.eos}, {"pad", spec_.pad}, {"unk", spec_.unk}};
  for (const auto& [what, id] : named) check(id, what);
  for (std::int32_t id : spec_.prefix) check(id, "post-processor token");
  for (std::int32_t id : spec_.suffix) check(id, "post-processor token");
  // generation_config.json may name ids past the tokenizer (a model's padding rows).
  std::erase_if(spec_.stop, [&](std::int32_t id) { return id < 0 || id >= n; });

  piece_ids_.reserve(spec_.pieces.size());
  for (std::int32_t id = 0; id < n; ++id)
    if (!spec_.pieces[static_cast<std::size_t>(id)].empty())
      piece_ids_.emplace(spec_.pieces[static_cast<std::size_t>(id)], id);

  special_.assign(spec_.pieces.size(), false);
  // Chat models end a turn with one of these (llama.cpp stops on the same names).
  static const std::string_view kTurnEnds[] = {"<|im_end|>",    "<|eot_id|>",    "<|eom_id|>",     "<|end|>",
                                               "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>"};
  for (const AddedToken& t : spec_.added) {
    check(t.id, "added token \"" + t.content + "\"");
    if (t.id < 0) throw FormatError(spec_.source, "added token \"" + t.content + "\" has no id");
    if (!t.special) continue;
    special_[static_cast<std::size_t>(t.id)] = true;
    if (std::find(std::begin(kTurnEnds), std::end(kTurnEnds), t.content) != std::end(kTurnEnds))
      spec_.stop.push_back(t.id);
  }
  for (std::int32_t id : {spec_.bos, spec_.eos, spec_.pad, spec_.unk})
    if (id >= 0) special_[static_cast<std::size_t>(id)] = true;
  matcher_ = AddedTokenMatcher(spec_.added);
}

std::string VocabTokenizer::id_to_piece(std::int32_t id) const {
  if (id < 0 || id >= vocab_size()) return {};
  return spec_.pieces[static_cast<std::size_t>(id)];
}

std::int32_t VocabTokenizer::token_to_id(std::string_view piece) const {
  const auto it = piece_ids_.find(piece);
  return it == piece_ids_.end() ? -1 : it->second;
}

bool VocabTokenizer::is_special(std::int32_t id) const {
  return id >= 0 && id < vocab_size() && special_[static_cast<std::size_t>(id)];
}

std::vector<std::int32_t> VocabTokenizer::stop_ids() const {
  std::vector<std::int32_t> ids = spec_.stop;
  if (spec_.eos >= 0) ids.push_back(spec_.eos);
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return ids;
}

std::vector<std::int32_t> VocabTokenizer::encode_impl(std::string_view text, const EncodeOptions& opt) const {
  std::vector<std::int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  if (opt.add_special) ids.insert(ids.end(), spec_.prefix.begin(), spec_.prefix.end());
  std::vector<Fragment> fragments;
  matcher_.split(text, opt.parse_special, fragments);
  for (const Fragment& f : fragments) {
    if (f.id >= 0)
      ids.push_back(f.id);
    else
      encode_text(text.substr(f.begin, f.end - f.begin), f.begin == 0, ids);
  }
  if (opt.add_special) ids.insert(ids.end(), spec_.suffix.begin(), spec_.suffix.end());
  return ids;
}

std::string VocabTokenizer::decode_impl(std::span<const std::int32_t> ids, const DecodeOptions& opt) const {
  std::string text;
  for (std::int32_t id : ids) {
    if (id < 0 || id >= vocab_size()) continue;
    if (opt.skip_special && special_[static_cast<std::size_t>(id)]) continue;
    text += spec_.piece_bytes[static_cast<std::size_t>(id)];
  }
  if (spec_.strip_leading_space && !text.empty() && text[0] == ' ') text.erase(0, 1);
  return text;
}

}  // namespace lwb::data
