#pragma once
// Added tokens (<|im_start|>, <s>, a fine-tune's extra words) are found in
// the text before the model sees it, as Hugging Face's AddedVocabulary does:
// leftmost-longest matches, with the lstrip/rstrip/single_word rules.
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace lwb::data {

struct AddedToken {
  std::string content;
  std::int32_t id = -1;
  bool special = false;      // matched only when the caller asks; skipped by decode
  bool lstrip = false;       // swallows the whitespace on its left
  bool rstrip = false;       // ... and on its right
  bool single_word = false;  // only where no word character touches it
};

// A stretch of the input: plain text [begin, end) when id < 0, else one added token.
struct Fragment {
  std::size_t begin = 0, end = 0;
  std::int32_t id = -1;
};

class AddedTokenMatcher {
 public:
  AddedTokenMatcher() = default;
  explicit AddedTokenMatcher(std::vector<AddedToken> tokens);
  // Covers the whole text, in order; empty text gives no fragment.
  void split(std::string_view text, bool parse_special, std::vector<Fragment>& out) const;
  const std::vector<AddedToken>& tokens() const { return tokens_; }

 private:
  std::vector<AddedToken> tokens_;              // longest first, so the first hit is the longest
  std::array<std::vector<std::uint32_t>, 256> by_first_byte_{};  // indices into tokens_
};

}  // namespace lwb::data
