#pragma once
// A bound on how deeply a JSON text nests, checked before it is parsed.
// nlohmann's parser does not recurse, but copying, dumping and walking a
// value do, once per level: a file of 100,000 "[" parses and then overflows
// the stack in the first message that quotes it.
#include <string>
#include <string_view>

#include "core/common/errors.h"

namespace lwb {

// Far past any config file's (three or four levels); shallow enough for any stack.
inline constexpr int kMaxJsonDepth = 64;

// FormatError naming `source` when arrays and objects nest deeper than
// max_depth. Brackets inside strings do not count; the rest of the syntax is
// left to the parser.
inline void check_json_depth(std::string_view text, const std::string& source, int max_depth = kMaxJsonDepth) {
  int depth = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char ch = text[i];
    if (in_string) {
      if (ch == '\\')
        ++i;
      else if (ch == '"')
        in_string = false;
    } else if (ch == '"') {
      in_string = true;
    } else if (ch == '[' || ch == '{') {
      if (++depth > max_depth)
        throw FormatError(source, "JSON nested deeper than " + std::to_string(max_depth) + " levels");
    } else if (ch == ']' || ch == '}') {
      --depth;
    }
  }
}

}  // namespace lwb
