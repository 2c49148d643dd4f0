#include "core/data/unicode.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <unicode/uchar.h>
#include <unicode/unorm2.h>
#include <unicode/ustring.h>

#include "core/common/errors.h"

namespace lwb::data {

std::size_t utf8_length(std::string_view s, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = byte(i);
  if (c < 0x80) return 1;
  std::size_t len;
  char32_t min;
  if ((c & 0xE0) == 0xC0) len = 2, min = 0x80;
  else if ((c & 0xF0) == 0xE0) len = 3, min = 0x800;
  else if ((c & 0xF8) == 0xF0) len = 4, min = 0x10000;
  else return 0;
  if (i + len > s.size()) return 0;
  for (std::size_t k = 1; k < len; ++k)
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
  const char32_t cp = utf8_decode(s, i, len);
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return len;
}

char32_t utf8_decode(std::string_view s, std::size_t i, std::size_t len) {
  const auto byte = [&](std::size_t k) { return static_cast<char32_t>(static_cast<unsigned char>(s[k])); };
  if (len == 1) return byte(i);
  char32_t cp = byte(i) & (0x7F >> len);
  for (std::size_t k = 1; k < len; ++k) cp = (cp << 6) | (byte(i + k) & 0x3F);
  return cp;
}

void utf8_append(std::string& out, char32_t c) {
  if (c < 0x80) {
    out.push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (c >> 6)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (c >> 12)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (c >> 18)));
    out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

bool is_unicode_whitespace(char32_t c) { return u_isUWhiteSpace(static_cast<UChar32>(c)); }

bool is_word_char(char32_t c) {
  const auto cp = static_cast<UChar32>(c);
  const std::int32_t gc = U_GET_GC_MASK(cp);
  return u_hasBinaryProperty(cp, UCHAR_ALPHABETIC) || u_hasBinaryProperty(cp, UCHAR_JOIN_CONTROL) ||
         (gc & (U_GC_M_MASK | U_GC_ND_MASK | U_GC_PC_MASK)) != 0;
}

namespace {

const UNormalizer2* normalizer(NormalForm form) {
  UErrorCode err = U_ZERO_ERROR;
  const UNormalizer2* n = nullptr;
  switch (form) {
    case NormalForm::nfc: n = unorm2_getNFCInstance(&err); break;
    case NormalForm::nfd: n = unorm2_getNFDInstance(&err); break;
    case NormalForm::nfkc: n = unorm2_getNFKCInstance(&err); break;
    case NormalForm::nfkd: n = unorm2_getNFKDInstance(&err); break;
  }
  if (U_FAILURE(err)) throw Error(std::string("ICU normalizer unavailable: ") + u_errorName(err));
  return n;
}

void check_icu(UErrorCode err, const char* what) {
  if (U_FAILURE(err)) throw Error(std::string("ICU ") + what + ": " + u_errorName(err));
}

}  // namespace

void normalize(NormalForm form, std::string_view in, std::string& out) {
  bool ascii = true;
  for (char c : in) ascii = ascii && static_cast<unsigned char>(c) < 0x80;
  if (ascii) {  // every normal form leaves ASCII as it is
    out.assign(in);
    return;
  }
  // ICU normalizes UTF-16: convert there and back.
  UErrorCode err = U_ZERO_ERROR;
  std::int32_t n16 = 0;
  const auto n8 = static_cast<std::int32_t>(in.size());
  u_strFromUTF8(nullptr, 0, &n16, in.data(), n8, &err);
  if (err == U_BUFFER_OVERFLOW_ERROR) err = U_ZERO_ERROR;
  check_icu(err, "UTF-8 to UTF-16");
  std::u16string src(static_cast<std::size_t>(n16), u'\0');
  u_strFromUTF8(src.data(), n16, nullptr, in.data(), n8, &err);
  check_icu(err, "UTF-8 to UTF-16");

  const UNormalizer2* norm = normalizer(form);
  if (unorm2_isNormalized(norm, src.data(), n16, &err) && U_SUCCESS(err)) {
    out.assign(in);
    return;
  }
  err = U_ZERO_ERROR;
  std::u16string dst(static_cast<std::size_t>(n16) * 3 + 8, u'\0');  // NFKD can grow text ~3x (NFC ≤ 3x too)
  std::int32_t len = unorm2_normalize(norm, src.data(), n16, dst.data(), static_cast<std::int32_t>(dst.size()), &err);
  if (err == U_BUFFER_OVERFLOW_ERROR) {
    err = U_ZERO_ERROR;
    dst.resize(static_cast<std::size_t>(len));
    len = unorm2_normalize(norm, src.data(), n16, dst.data(), len, &err);
  }
  check_icu(err, "normalize");

  std::int32_t out8 = 0;
  u_strToUTF8(nullptr, 0, &out8, dst.data(), len, &err);
  if (err == U_BUFFER_OVERFLOW_ERROR) err = U_ZERO_ERROR;
  check_icu(err, "UTF-16 to UTF-8");
  out.resize(static_cast<std::size_t>(out8));
  u_strToUTF8(out.data(), out8, nullptr, dst.data(), len, &err);
  check_icu(err, "UTF-16 to UTF-8");
}

// ---- Regex

struct Regex::Code {
  pcre2_code* code = nullptr;
  ~Code() { pcre2_code_free(code); }
};

namespace {

std::string pcre2_message(int code) {
  PCRE2_UCHAR buf[256];
  pcre2_get_error_message(code, buf, sizeof buf);
  return reinterpret_cast<const char*>(buf);
}

// Per-thread match state: the match data and a JIT stack larger than the
// default 32 KiB, which long whitespace runs can exhaust.
struct MatchState {
  pcre2_match_data* data = pcre2_match_data_create(1, nullptr);
  pcre2_match_context* context = pcre2_match_context_create(nullptr);
  pcre2_jit_stack* stack = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, nullptr);
  MatchState() { pcre2_jit_stack_assign(context, nullptr, stack); }
  ~MatchState() {
    pcre2_jit_stack_free(stack);
    pcre2_match_context_free(context);
    pcre2_match_data_free(data);
  }
};

}  // namespace

Regex::Regex(const std::string& pattern, const std::string& source) {
  int err = 0;
  PCRE2_SIZE offset = 0;
  auto code = std::make_shared<Code>();
  code->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), PCRE2_UTF | PCRE2_UCP,
                             &err, &offset, nullptr);
  if (!code->code)
    throw FormatError(source, "regex \"" + pattern + "\" at offset " + std::to_string(offset) + ": " +
                                  pcre2_message(err));
  pcre2_jit_compile(code->code, PCRE2_JIT_COMPLETE);  // without JIT (an error here) the interpreter runs
  code_ = std::move(code);
}

void Regex::find_all(std::string_view s, std::vector<Match>& out) const {
  thread_local MatchState state;
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(s.data());
  std::size_t start = 0;
  std::uint32_t options = 0;
  while (start <= s.size()) {
    // NO_UTF_CHECK: callers pass only valid UTF-8 (checked once, up front).
    const int rc = pcre2_match(code_->code, subject, s.size(), start, options | PCRE2_NO_UTF_CHECK, state.data,
                               state.context);
    if (rc == PCRE2_ERROR_NOMATCH) {
      if (options == 0) break;
      // An empty match was refused here: step one character and go on.
      options = 0;
      if (start == s.size()) break;
      const std::size_t len = utf8_length(s, start);
      start += len ? len : 1;
      continue;
    }
    if (rc < 0) throw Error("tokenizer regex: " + pcre2_message(rc));
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(state.data);
    out.push_back({ov[0], ov[1]});
    // After an empty match, look for a non-empty one at the same place.
    options = ov[0] == ov[1] ? PCRE2_NOTEMPTY_ATSTART | PCRE2_ANCHORED : 0;
    start = ov[1];
  }
}

}  // namespace lwb::data
