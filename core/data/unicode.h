#pragma once
// The little Unicode the tokenizers need: UTF-8 stepping (tolerant of
// invalid bytes, which arbitrary input has), character classes for the added
// tokens' strip rules, normal forms (ICU), and a PCRE2 regex with Unicode
// classes (\p{L}, \p{N}) for the pre-tokenizers, which std::regex lacks.
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace lwb::data {

// Length of the well-formed UTF-8 sequence at s[i] (1..4), or 0 if the bytes
// there are not one (stray continuation, overlong form, surrogate, truncated).
std::size_t utf8_length(std::string_view s, std::size_t i);
// The code point of the well-formed sequence of `len` bytes at s[i].
char32_t utf8_decode(std::string_view s, std::size_t i, std::size_t len);
void utf8_append(std::string& out, char32_t c);

// Unicode White_Space, and word characters as Rust's regex \w has them.
bool is_unicode_whitespace(char32_t c);
bool is_word_char(char32_t c);

enum class NormalForm { nfc, nfd, nfkc, nfkd };
// `in` must be valid UTF-8. Leaves ASCII alone without calling ICU.
void normalize(NormalForm form, std::string_view in, std::string& out);

// A compiled PCRE2 pattern (UTF + UCP), JIT-compiled when the platform allows.
// Shared by copies; matching is safe from several threads at once.
class Regex {
 public:
  // FormatError(source, ...) naming the pattern for one PCRE2 refuses.
  Regex(const std::string& pattern, const std::string& source);
  struct Match {
    std::size_t begin, end;
  };
  // Every non-overlapping match in `s` (valid UTF-8), left to right, appended
  // to `out`. Throws lwb::Error if PCRE2 gives up (match limit).
  void find_all(std::string_view s, std::vector<Match>& out) const;

 private:
  struct Code;
  std::shared_ptr<const Code> code_;
};

}  // namespace lwb::data
