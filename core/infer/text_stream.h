#pragma once
// The text of one answer as its tokens arrive, for streaming: each new token
// yields the text that has become final, so a caller can print deltas and
// never take one back.
//  - UTF-8: a byte-level token can end inside a character; the bytes of a
//    character still incomplete are held back until the token that completes
//    it. Bytes that can never form a character become U+FFFD, as Hugging
//    Face's decode(errors="replace") shows them.
//  - Stop strings: text is held back while it could still be the start of
//    a stop string (a stop string split over several tokens); once one
//    appears, the text ends just before it and the stream is stopped.
// The answer is decoded whole each time (special tokens skipped), which
// keeps tokenizers that strip a leading space or join pieces right; an
// answer is short next to the model's work per token.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/data/tokenizer.h"

namespace lwb::infer {

class TextStream {
 public:
  TextStream(const data::Tokenizer& tokenizer, std::vector<std::string> stop_strings);
  // Appends a token; returns the text that became final (may be empty).
  std::string_view push(std::int32_t token);
  // The end of the answer: whatever was held back (an unfinished stop
  // string's start, an incomplete character as U+FFFD).
  std::string_view finish();
  bool stopped() const { return stopped_; }  // a stop string appeared
  const std::string& stop_string() const { return stop_string_; }
  // Everything final so far (all of it after finish()).
  std::string_view text() const { return std::string_view(text_).substr(0, emitted_); }

 private:
  std::string_view release(std::size_t end);

  const data::Tokenizer& tokenizer_;
  std::vector<std::string> stops_;
  std::vector<std::int32_t> tokens_;
  std::string raw_;          // the decoded bytes
  std::size_t consumed_ = 0; // bytes of raw_ turned into text_
  std::string text_;         // valid UTF-8
  std::size_t emitted_ = 0;  // bytes of text_ handed out
  bool stopped_ = false;
  std::string stop_string_;
};

}  // namespace lwb::infer
