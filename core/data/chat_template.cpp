#include "core/data/chat_template.h"

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/common/errors.h"
#include "core/common/json_depth.h"
#include "core/data/jinja_internal.h"

namespace lwb::data {

namespace fs = std::filesystem;
using jinja::Value;

namespace {

// The ChatML template as models without their own (and OpenHermes, SmolLM2
// without its default system prompt) write it.
constexpr std::string_view kChatML =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
    "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

std::string read_file(const fs::path& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw FormatError(path.string(), "cannot be read");
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

// A special token in tokenizer_config.json: a string, an AddedToken object
// {"content": ...}, or null.
std::string token_text(const nlohmann::json& config, const char* key) {
  const auto it = config.find(key);
  if (it == config.end()) return {};
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content") && (*it)["content"].is_string()) return (*it)["content"].get<std::string>();
  return {};
}

}  // namespace

ChatTemplate::ChatTemplate(std::string_view text, std::string source, ChatTokens tokens)
    : template_(text, std::move(source)), tokens_(std::move(tokens)) {}

ChatTemplate ChatTemplate::builtin(const std::string& name, const std::string& field) {
  if (name == "chatml") return ChatTemplate(kChatML, "built-in chatml template");
  throw ConfigError(field, "unknown built-in chat template '" + name + "' (built in: chatml)");
}

std::string ChatTemplate::render(std::span<const ChatMessage> messages, const ChatOptions& options) const {
  std::vector<Value> list;
  for (std::size_t i = 0; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    if (!jinja::valid_utf8(m.role) || !jinja::valid_utf8(m.content))
      throw DataError(source() + ": message " + std::to_string(i + 1) + " is not valid UTF-8");
    list.push_back(Value::dict({{"role", m.role}, {"content", m.content}}));
  }
  std::vector<Value::Entry> vars = {
      {"messages", Value::list(std::move(list))},
      {"add_generation_prompt", options.add_generation_prompt},
      {"tools", Value::none()},
      {"documents", Value::none()},
  };
  const std::pair<const char*, const std::string*> tokens[] = {
      {"bos_token", &tokens_.bos}, {"eos_token", &tokens_.eos}, {"unk_token", &tokens_.unk}, {"pad_token", &tokens_.pad}};
  for (const auto& [name, text] : tokens)
    if (!text->empty()) vars.emplace_back(name, *text);
  for (const auto& [name, value] : options.variables) jinja::set_entry(vars, name, value);
  return template_.render(vars, options.settings);
}

RenderedChat ChatTemplate::render_with_spans(std::span<const ChatMessage> messages, const ChatOptions& options) const {
  RenderedChat out;
  out.text = render(messages, options);
  ChatOptions head = options;
  head.add_generation_prompt = true;
  ChatOptions through = options;
  through.add_generation_prompt = false;
  for (std::size_t i = 0; i < messages.size(); ++i) {
    if (messages[i].role != "assistant") continue;
    const std::string where = "assistant spans: message " + std::to_string(i + 1);
    std::string before, upto;
    try {
      before = render(messages.first(i), head);
      upto = render(messages.first(i + 1), through);
    } catch (const Error& e) {
      throw FormatError(source(), where + ": rendering the conversation up to it failed: " + e.what());
    }
    if (out.text.compare(0, before.size(), before) != 0)
      throw FormatError(source(), where + ": the template renders the turns before it differently when the "
                                          "conversation goes on, so its span cannot be found by prefix rendering");
    const auto mismatch = std::mismatch(upto.begin(), upto.end(), out.text.begin(), out.text.end());
    const auto end = static_cast<std::size_t>(mismatch.first - upto.begin());
    if (end < before.size())
      throw FormatError(source(), where + ": the text through it does not extend the text before it");
    out.assistant.push_back({before.size(), end, i});
  }
  return out;
}

ChatTemplate load_hf_chat_template(const fs::path& folder) {
  const fs::path config_path = folder / "tokenizer_config.json";
  const fs::path jinja_path = folder / "chat_template.jinja";
  nlohmann::json config = nlohmann::json::object();
  if (fs::exists(config_path)) {
    const std::string text = read_file(config_path);
    check_json_depth(text, config_path.string());
    try {
      config = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {
      throw FormatError(config_path.string(), std::string("not valid JSON: ") + e.what());
    }
    if (!config.is_object()) throw FormatError(config_path.string(), "expected a JSON object");
  }
  const ChatTokens tokens{token_text(config, "bos_token"), token_text(config, "eos_token"),
                          token_text(config, "unk_token"), token_text(config, "pad_token")};
  if (fs::exists(jinja_path)) return ChatTemplate(read_file(jinja_path), jinja_path.string(), tokens);

  const auto it = config.find("chat_template");
  if (it == config.end() || it->is_null())
    throw FormatError(folder.string(), "no chat template (neither chat_template.jinja nor a \"chat_template\" in "
                                       "tokenizer_config.json); choose a built-in one such as chatml");
  const std::string source = config_path.string() + ": chat_template";
  if (it->is_string()) return ChatTemplate(it->get<std::string>(), source, tokens);
  if (it->is_array()) {
    std::string names;
    for (const auto& entry : *it) {
      if (!entry.is_object() || !entry.contains("name") || !entry["name"].is_string() || !entry.contains("template") ||
          !entry["template"].is_string())
        throw FormatError(source, "expected a list of {\"name\", \"template\"} objects");
      const std::string name = entry["name"].get<std::string>();
      if (name == "default") return ChatTemplate(entry["template"].get<std::string>(), source + "[default]", tokens);
      names += (names.empty() ? "" : ", ") + name;
    }
    throw FormatError(source, "no template named \"default\" among: " + names);
  }
  throw FormatError(source, "expected a string or a list of named templates");
}

bool has_hf_chat_template(const fs::path& folder) {
  if (fs::exists(folder / "chat_template.jinja")) return true;
  const fs::path config_path = folder / "tokenizer_config.json";
  if (!fs::exists(config_path)) return false;
  try {
    const nlohmann::json config = nlohmann::json::parse(read_file(config_path));
    return !config.is_object() || (config.contains("chat_template") && !config["chat_template"].is_null());
  } catch (const nlohmann::json::exception&) {
    return true;
  }
}

}  // namespace lwb::data
