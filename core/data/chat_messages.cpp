#include "core/data/chat_messages.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/common/errors.h"

namespace lwb::data {

std::vector<ChatMessage> parse_chat_messages(const std::string& text, const std::string& source) {
  using json = nlohmann::json;
  json root;
  try {
    root = json::parse(text);
  } catch (const json::exception& e) {  // parse_error, or out_of_range for a number beyond double's range
    throw FormatError(source, std::string("not valid JSON: ") + e.what());
  }
  const json& list = root.is_object() && root.contains("messages") ? root.at("messages") : root;
  if (!list.is_array())
    throw FormatError(source, "expected a list of {\"role\", \"content\"} (or {\"messages\": [...]})");
  std::vector<ChatMessage> out;
  for (std::size_t i = 0; i < list.size(); ++i) {
    const json& m = list[i];
    if (!m.is_object() || !m.contains("role") || !m.at("role").is_string() || !m.contains("content") ||
        !m.at("content").is_string())
      throw FormatError(source, "message " + std::to_string(i + 1) + ": expected {\"role\": string, \"content\": string}");
    out.push_back({m.at("role").get<std::string>(), m.at("content").get<std::string>()});
  }
  return out;
}

std::vector<ChatMessage> read_chat_messages(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw FormatError(path, "cannot be read");
  std::ostringstream text;
  text << in.rdbuf();
  return parse_chat_messages(text.str(), path);
}

}  // namespace lwb::data
