#include "core/data/tokenizer.h"

#include <array>

#include "core/common/errors.h"
#include "core/data/added_tokens.h"

namespace lwb::data {

namespace {

constexpr std::array<std::string_view, 4> kByteSpecials = {"<bos>", "<eos>", "<pad>", "<sep>"};

const AddedTokenMatcher& byte_specials() {
  static const AddedTokenMatcher matcher = [] {
    std::vector<AddedToken> tokens;
    for (std::size_t i = 0; i < kByteSpecials.size(); ++i)
      tokens.push_back({std::string(kByteSpecials[i]), ByteTokenizer::kBos + static_cast<std::int32_t>(i), true});
    return AddedTokenMatcher(std::move(tokens));
  }();
  return matcher;
}

}  // namespace

std::vector<std::int32_t> ByteTokenizer::encode_impl(std::string_view text, const EncodeOptions& opt) const {
  std::vector<std::int32_t> ids;
  ids.reserve(text.size() + 1);
  if (opt.add_special) ids.push_back(kBos);
  std::vector<Fragment> fragments;
  if (opt.parse_special)
    byte_specials().split(text, true, fragments);
  else if (!text.empty())
    fragments.push_back({0, text.size(), -1});
  for (const Fragment& f : fragments) {
    if (f.id >= 0) {
      ids.push_back(f.id);
      continue;
    }
    for (unsigned char c : text.substr(f.begin, f.end - f.begin)) ids.push_back(c);
  }
  return ids;
}

std::string ByteTokenizer::decode_impl(std::span<const std::int32_t> ids, const DecodeOptions& opt) const {
  std::string text;
  text.reserve(ids.size());
  for (std::int32_t id : ids)
    if (id >= 0 && id < 256)
      text.push_back(static_cast<char>(id));
    else if (!opt.skip_special && is_special(id))
      text += kByteSpecials[static_cast<std::size_t>(id - kBos)];
  return text;
}

std::string ByteTokenizer::id_to_piece(std::int32_t id) const {
  if (id >= 0 && id < 256) return std::string(1, static_cast<char>(id));
  if (is_special(id)) return std::string(kByteSpecials[static_cast<std::size_t>(id - kBos)]);
  return {};
}

std::int32_t ByteTokenizer::token_to_id(std::string_view piece) const {
  if (piece.size() == 1) return static_cast<unsigned char>(piece[0]);
  for (std::size_t i = 0; i < kByteSpecials.size(); ++i)
    if (piece == kByteSpecials[i]) return kBos + static_cast<std::int32_t>(i);
  return -1;
}

std::unique_ptr<Tokenizer> make_tokenizer(const std::string& name) {
  if (name == "byte") return std::make_unique<ByteTokenizer>();
  throw ConfigError("model.tokenizer", "unknown tokenizer \"" + name + "\"; this build has: byte");
}

}  // namespace lwb::data
