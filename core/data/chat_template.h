#pragma once
// Chat templates: a conversation rendered into a model's prompt text exactly
// as transformers' apply_chat_template renders it, from the model's own Jinja
// template (see jinja.h) or the built-in ChatML one.
//
// Assistant spans. A trainer scoring only the assistant's tokens needs to know
// which bytes of the rendered text the assistant wrote. The templates of real
// models carry no markers for that (transformers' {% generation %} appears in
// few of them), so the spans are found by rendering prefixes of the
// conversation, as open-instruct and similar trainers do with token counts:
// for an assistant message i,
//   begin = |render(messages[0, i), add_generation_prompt=true)|
//   end   = the length of the common prefix of render(messages[0, i]) and the
//           full text.
// The span so covers the message's content and the end-of-turn text the
// template writes after it (`<|im_end|>\n`, `<|eot_id|>`, ` </s>`), and not
// the assistant header the generation prompt writes. Every prefix render is
// checked to be a prefix of the full text; a template that renders an earlier
// turn differently depending on what follows it (Mistral-Nemo puts the system
// prompt into the last user turn) gets a FormatError instead of wrong spans.
// Where a template ends a conversation differently from how it continues one
// (Phi-3 appends eos_token when there is no generation prompt), the common
// prefix can run a few bytes into the next turn (the "<|" of "<|user|>"); map
// spans to tokens by keeping the tokens that lie wholly inside a span, and
// such partial overlaps mark nothing.
#include <cstddef>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/data/jinja.h"

namespace lwb::data {

struct ChatMessage {
  std::string role;  // system, user, assistant, ...
  std::string content;
};

// The special tokens' text, which transformers passes to the template as
// bos_token, eos_token, unk_token and pad_token. An empty one is not passed
// (the template sees it undefined), as transformers leaves out unset tokens.
struct ChatTokens {
  std::string bos, eos, unk, pad;
};

struct ChatOptions {
  bool add_generation_prompt = false;
  // More template variables (date_string, tools, enable_thinking...); they
  // override the defaults (tools and documents are none, as in transformers).
  std::vector<jinja::Value::Entry> variables;
  jinja::RenderSettings settings;  // limits, and the clock strftime_now() reads
};

// Bytes [begin, end) of the rendered text, written for messages[message].
struct ChatSpan {
  std::size_t begin = 0, end = 0;
  std::size_t message = 0;
};

struct RenderedChat {
  std::string text;
  std::vector<ChatSpan> assistant;  // one per assistant message, in order
};

class ChatTemplate {
 public:
  // Parses the template; `source` names it in errors (the file, and the key
  // within it). FormatError for a syntax error or an unsupported construct.
  ChatTemplate(std::string_view text, std::string source, ChatTokens tokens = {});
  // A template models do not ship, chosen by name: "chatml". ConfigError
  // naming `field` for any other name.
  static ChatTemplate builtin(const std::string& name, const std::string& field = "model.chat_template");

  // DataError when the template refuses the conversation (raise_exception:
  // roles that do not alternate, a system role it does not support);
  // FormatError naming template and line for other evaluation errors; the
  // messages must be valid UTF-8 (DataError otherwise).
  std::string render(std::span<const ChatMessage> messages, const ChatOptions& options = {}) const;
  // The same text, with the byte spans of the assistant messages (see above).
  RenderedChat render_with_spans(std::span<const ChatMessage> messages, const ChatOptions& options = {}) const;

  const std::string& source() const { return template_.source(); }
  const ChatTokens& tokens() const { return tokens_; }

 private:
  jinja::Template template_;
  ChatTokens tokens_;
};

// The chat template of a Hugging Face model folder, as transformers loads it:
// chat_template.jinja beside tokenizer_config.json (transformers 5), else
// tokenizer_config.json's "chat_template" (a string, or a list of {name,
// template} of which "default" is taken); the special tokens from
// tokenizer_config.json (strings or AddedToken objects). FormatError naming
// the file when none is there or it cannot be read.
ChatTemplate load_hf_chat_template(const std::filesystem::path& folder);
// Whether the folder has one for load_hf_chat_template to load (a
// tokenizer_config.json that is not valid JSON counts, so that loading says
// what is wrong with it).
bool has_hf_chat_template(const std::filesystem::path& folder);

}  // namespace lwb::data
