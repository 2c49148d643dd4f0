#include "core/infer/text_stream.h"

#include <algorithm>

#include "core/data/unicode.h"

namespace lwb::infer {

namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// Whether s[i..] (to the end) is the start of a well-formed sequence that
// more bytes could complete.
bool incomplete_tail(std::string_view s, std::size_t i) {
  const auto lead = static_cast<unsigned char>(s[i]);
  const std::size_t need = lead >= 0xC2 && lead <= 0xDF ? 2 : lead >= 0xE0 && lead <= 0xEF ? 3
                           : lead >= 0xF0 && lead <= 0xF4                               ? 4
                                                                                        : 0;
  if (need == 0 || s.size() - i >= need) return false;
  for (std::size_t j = i + 1; j < s.size(); ++j)
    if ((static_cast<unsigned char>(s[j]) & 0xC0) != 0x80) return false;
  return true;
}

}  // namespace

TextStream::TextStream(const data::Tokenizer& tokenizer, std::vector<std::string> stop_strings)
    : tokenizer_(tokenizer), stops_(std::move(stop_strings)) {}

std::string_view TextStream::release(std::size_t end) {
  const std::string_view delta = std::string_view(text_).substr(emitted_, end - emitted_);
  emitted_ = end;
  return delta;
}

std::string_view TextStream::push(std::int32_t token) {
  if (stopped_) return {};
  tokens_.push_back(token);
  raw_ = tokenizer_.decode(tokens_);
  std::size_t i = std::min(consumed_, raw_.size());
  while (i < raw_.size()) {
    const std::size_t len = data::utf8_length(raw_, i);
    if (len > 0) {
      text_.append(raw_, i, len);
      i += len;
    } else if (incomplete_tail(raw_, i)) {
      break;
    } else {
      text_ += kReplacement;
      ++i;
    }
  }
  consumed_ = i;

  // A stop string can only begin in text not handed out yet (see below).
  std::size_t found = std::string::npos;
  for (const std::string& s : stops_) {
    const std::size_t at = text_.find(s, emitted_);
    if (at < found) {
      found = at;
      stop_string_ = s;
    }
  }
  if (found != std::string::npos) {
    stopped_ = true;
    text_.resize(found);
    return release(found);
  }
  // Hold back the longest end of the text that starts a stop string.
  std::size_t hold = 0;
  const std::string_view pending = std::string_view(text_).substr(emitted_);
  for (const std::string& s : stops_)
    for (std::size_t k = std::min(s.size() - 1, pending.size()); k > hold; --k)
      if (pending.ends_with(std::string_view(s).substr(0, k))) {
        hold = k;
        break;
      }
  return release(text_.size() - hold);
}

std::string_view TextStream::finish() {
  if (stopped_) return {};
  if (consumed_ < raw_.size()) text_ += kReplacement;  // a character the answer never finished
  consumed_ = raw_.size();
  return release(text_.size());
}

}  // namespace lwb::infer
