// libFuzzer target for the chat messages file of `generate --messages` and
// `template --messages`: the input is the file's text, parsed as both read it
// (parse_chat_messages) and, when it parses, rendered through the built-in
// ChatML template as generate renders it, with and without spans. Parsing
// throws an lwb::Error or gives messages whose text the rendering holds;
// rendering throws an lwb::Error (invalid UTF-8, a refused conversation) or
// succeeds. Anything else (a crash, a sanitizer report, a std:: or nlohmann
// exception) is a bug.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/common/errors.h"
#include "core/data/chat_messages.h"
#include "core/data/chat_template.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace lwb::data;
  static const ChatTemplate chatml = ChatTemplate::builtin("chatml");
  const std::string text(reinterpret_cast<const char*>(data), size);
  std::vector<ChatMessage> messages;
  try {
    messages = parse_chat_messages(text, "messages.json");
  } catch (const lwb::Error&) {
    return 0;
  }
  ChatOptions options;
  options.add_generation_prompt = true;
  try {
    const std::string rendered = chatml.render(messages, options);
    for (const ChatMessage& m : messages)
      if (rendered.find(m.content) == std::string::npos) __builtin_trap();
    const RenderedChat r = chatml.render_with_spans(messages, options);
    if (r.text != rendered) __builtin_trap();
    for (const ChatSpan& s : r.assistant)
      if (s.end < s.begin || s.end > r.text.size() || messages[s.message].role != "assistant") __builtin_trap();
  } catch (const lwb::Error&) {
  }
  return 0;
}
