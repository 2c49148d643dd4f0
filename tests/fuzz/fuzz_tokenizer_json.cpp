// libFuzzer target for tokenizer.json: the input is a tokenizer.json, then a
// NUL byte, then text to tokenize (a fixed text when there is no NUL).
// Whatever the JSON, loading either throws an lwb::Error or gives a
// tokenizer whose ids all lie in its vocabulary and which decodes them back
// without error, with and without special tokens. Anything else (a crash, a
// sanitizer report, another exception) is a bug.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "core/common/errors.h"
#include "core/data/hf_tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::size_t nul = input.find('\0');
  const std::string_view json = input.substr(0, nul);
  const std::string_view text =
      nul == std::string_view::npos ? std::string_view("Hello  world's 1234 <|im_start|> caf\xc3\xa9 \xe4\xb8\xad\xff")
                                    : input.substr(nul + 1);
  std::unique_ptr<lwb::data::Tokenizer> tok;
  try {
    tok = lwb::data::tokenizer_from_json(json, "fuzz input");
  } catch (const lwb::Error&) {
    return 0;
  }
  for (const bool special : {false, true}) {
    std::vector<std::int32_t> ids;
    try {
      ids = tok->encode(text, {.add_special = special, .parse_special = special});
    } catch (const lwb::Error&) {
      continue;  // PCRE2 may give up on a pathological pattern; that is reported, not a crash
    }
    for (std::int32_t id : ids)
      if (id < 0 || id >= tok->vocab_size()) __builtin_trap();
    (void)tok->decode(ids, {.skip_special = !special});
  }
  return 0;
}
