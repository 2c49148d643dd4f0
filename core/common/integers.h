#pragma once
// Integers read strictly from text: all of it must be a base-10 integer
// (digits, a leading '-' for signed types) and the value must lie in the
// range its field allows. Nothing is wrapped or truncated into a narrower
// type ("4294967304" is refused for an int, never read as 8).
#include <charconv>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

namespace lwb {

// "an integer from 1 to 2147483647", for messages.
template <class T>
std::string integer_range_text(T lo, T hi) {
  return "an integer from " + std::to_string(lo) + " to " + std::to_string(hi);
}

template <class T>
std::optional<T> parse_integer(std::string_view text, T lo = std::numeric_limits<T>::min(),
                               T hi = std::numeric_limits<T>::max()) {
  T v{};
  const char* end = text.data() + text.size();
  const auto r = std::from_chars(text.data(), end, v);
  if (text.empty() || r.ec != std::errc() || r.ptr != end || v < lo || v > hi) return std::nullopt;
  return v;
}

}  // namespace lwb
