#pragma once
// A conversation given as a file, as `lora-workbench generate --messages` and
// `template --messages` read it: a JSON list of {"role": string, "content":
// string}, or an object holding one as "messages" (a chat-format JSONL row).
#include <string>
#include <vector>

#include "core/data/chat_template.h"

namespace lwb::data {

// FormatError naming `source` (and the message, counted from 1) for anything
// else; an empty list is a conversation of no messages.
std::vector<ChatMessage> parse_chat_messages(const std::string& text, const std::string& source);
// The file's text parsed so; FormatError naming it when it cannot be read.
std::vector<ChatMessage> read_chat_messages(const std::string& path);

}  // namespace lwb::data
