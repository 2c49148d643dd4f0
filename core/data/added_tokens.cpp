#include "core/data/added_tokens.h"

#include <algorithm>

#include "core/data/unicode.h"

namespace lwb::data {

namespace {

// The code point that ends just before `end`, or none (-1) for an invalid byte.
struct Back {
  std::size_t begin;
  long cp;
};

Back char_before(std::string_view s, std::size_t end) {
  std::size_t b = end - 1;
  while (b > 0 && end - b < 4 && (static_cast<unsigned char>(s[b]) & 0xC0) == 0x80) --b;
  const std::size_t len = utf8_length(s, b);
  if (len == end - b) return {b, static_cast<long>(utf8_decode(s, b, len))};
  return {end - 1, -1};
}

long char_at(std::string_view s, std::size_t i) {
  const std::size_t len = utf8_length(s, i);
  return len ? static_cast<long>(utf8_decode(s, i, len)) : -1;
}

bool space(long cp) { return cp >= 0 && is_unicode_whitespace(static_cast<char32_t>(cp)); }
bool word(long cp) { return cp >= 0 && is_word_char(static_cast<char32_t>(cp)); }

}  // namespace

AddedTokenMatcher::AddedTokenMatcher(std::vector<AddedToken> tokens) : tokens_(std::move(tokens)) {
  std::erase_if(tokens_, [](const AddedToken& t) { return t.content.empty(); });
  std::stable_sort(tokens_.begin(), tokens_.end(),
                   [](const AddedToken& a, const AddedToken& b) { return a.content.size() > b.content.size(); });
  for (std::size_t i = 0; i < tokens_.size(); ++i)
    by_first_byte_[static_cast<unsigned char>(tokens_[i].content[0])].push_back(static_cast<std::uint32_t>(i));
}

void AddedTokenMatcher::split(std::string_view text, bool parse_special, std::vector<Fragment>& out) const {
  std::size_t done = 0;  // end of the last fragment pushed
  std::size_t i = 0;
  while (i < text.size()) {
    const AddedToken* hit = nullptr;
    for (std::uint32_t k : by_first_byte_[static_cast<unsigned char>(text[i])]) {
      const AddedToken& t = tokens_[k];
      if (t.special && !parse_special) continue;
      if (text.compare(i, t.content.size(), t.content) != 0) continue;
      if (t.single_word) {
        const bool free_left = i == 0 || !word(char_before(text, i).cp);
        const std::size_t e = i + t.content.size();
        const bool free_right = e == text.size() || !word(char_at(text, e));
        if (!free_left || !free_right) continue;
      }
      hit = &t;
      break;
    }
    if (!hit) {
      ++i;
      continue;
    }
    std::size_t begin = i, end = i + hit->content.size();
    if (hit->lstrip)
      while (begin > done) {
        const Back b = char_before(text, begin);
        if (!space(b.cp)) break;
        begin = b.begin;
      }
    if (hit->rstrip)
      while (end < text.size() && space(char_at(text, end))) end += utf8_length(text, end);
    if (begin > done) out.push_back({done, begin, -1});
    out.push_back({begin, end, hit->id});
    done = i = end;
  }
  if (done < text.size()) out.push_back({done, text.size(), -1});
}

}  // namespace lwb::data
