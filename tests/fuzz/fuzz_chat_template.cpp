// libFuzzer target for the chat-template interpreter: arbitrary bytes as a
// template, rendered over a fixed conversation, must either render or be
// refused with an lwb::Error, within the limits (libFuzzer's -timeout and
// -rss_limit_mb catch a hang or a runaway allocation). Anything else — a
// crash, a sanitizer report, another exception, assistant spans outside the
// text — is a bug.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "core/common/errors.h"
#include "core/data/chat_template.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace lwb::data;
  static const std::vector<ChatMessage> conversation = {
      {"system", "You are a helpful assistant."},
      {"user", "Hello, how are you?"},
      {"assistant", "  Fine, thanks! 👋\n"},
      {"user", "What is 2 + 2?"},
  };
  ChatOptions options;
  options.add_generation_prompt = size % 2 == 0;
  options.settings.now = 1721995200;
  options.settings.limits.max_steps = 200'000;
  options.settings.limits.max_bytes = 1 << 20;
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  try {
    const ChatTemplate t(text, "fuzz input", {"<s>", "</s>", "", ""});
    const std::string rendered = t.render(conversation, options);
    const RenderedChat r = t.render_with_spans(conversation, options);
    if (r.text != rendered) __builtin_trap();
    for (const ChatSpan& s : r.assistant)
      if (s.end < s.begin || s.end > r.text.size() || conversation[s.message].role != "assistant") __builtin_trap();
  } catch (const lwb::Error&) {
  }
  return 0;
}
