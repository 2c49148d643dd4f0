#include "core/data/instruction_data.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "core/common/errors.h"
#include "core/common/json_depth.h"
#include "core/data/data_file.h"

namespace lwb::data {

namespace {

using json = nlohmann::json;

constexpr std::pair<JsonlFormat, const char*> kFormatNames[] = {
    {JsonlFormat::Auto, "auto"},
    {JsonlFormat::Alpaca, "alpaca"},
    {JsonlFormat::Messages, "messages"},
    {JsonlFormat::Conversations, "conversations"},
    {JsonlFormat::PromptCompletion, "prompt-completion"},
    {JsonlFormat::Text, "text"},
};

// nlohmann says "[json.exception.parse_error.101] parse error at line 1,
// column 9: syntax error ..."; its line is always 1 here, so keep the column
// and the reason.
std::string json_message(const json::parse_error& e) {
  const std::string what = e.what();
  const auto reason = what.find(": ");
  return "at column " + std::to_string(e.byte) + ": " + (reason == std::string::npos ? what : what.substr(reason + 2));
}

std::string quoted(const std::string& s) { return "\"" + s + "\""; }

// The format's fields, for messages about a row that lacks one.
std::string format_fields(JsonlFormat f, const JsonlOptions& o) {
  switch (f) {
    case JsonlFormat::Alpaca: return "alpaca rows have \"instruction\", \"output\" and optionally \"input\", \"system\"";
    case JsonlFormat::Messages: return "messages rows have \"messages\": [{\"role\", \"content\"}, ...]";
    case JsonlFormat::Conversations: return "conversations rows have \"conversations\": [{\"from\", \"value\"}, ...]";
    case JsonlFormat::PromptCompletion: return "prompt-completion rows have " + quoted(o.prompt) + " and " + quoted(o.completion);
    case JsonlFormat::Text: return "text rows have \"text\"";
    case JsonlFormat::Auto: break;
  }
  return "";
}

const std::string& string_field(const json& j, const std::string& key, const std::string& where,
                                const std::string& about) {
  const auto it = j.find(key);
  if (it == j.end()) throw FormatError(where, "missing string field " + quoted(key) + " (" + about + ")");
  if (!it->is_string())
    throw FormatError(where, "missing string field " + quoted(key) + " (got " + std::string(it->type_name()) + "; " +
                                 about + ")");
  return it->get_ref<const std::string&>();
}

JsonlFormat detect(const json& j, const JsonlOptions& o, const std::string& where) {
  if (j.contains("messages")) return JsonlFormat::Messages;
  if (j.contains("conversations")) return JsonlFormat::Conversations;
  if (j.contains("instruction")) return JsonlFormat::Alpaca;
  if (j.contains(o.prompt) || j.contains(o.completion)) return JsonlFormat::PromptCompletion;
  if (j.contains("text")) return JsonlFormat::Text;
  std::string keys;
  for (const auto& [k, v] : j.items()) keys += (keys.empty() ? "" : ", ") + quoted(k);
  throw FormatError(where, "cannot tell the format of this row (keys: " + (keys.empty() ? "none" : keys) +
                               "); expected alpaca (instruction, input, output), messages (role, content), "
                               "conversations (from, value), prompt-completion (" + quoted(o.prompt) + ", " +
                               quoted(o.completion) + ") or text; data.format names it");
}

// ShareGPT's speakers, as FastChat and axolotl map them.
std::string sharegpt_role(const std::string& from, const std::string& where) {
  if (from == "human" || from == "user") return "user";
  if (from == "gpt" || from == "assistant" || from == "chatgpt" || from == "bard" || from == "bing" || from == "model")
    return "assistant";
  if (from == "system") return "system";
  throw FormatError(where, "unknown speaker \"from\": " + quoted(from) +
                               "; expected human or user, gpt or assistant, or system");
}

std::vector<ChatMessage> turns(const json& j, const char* list, const char* role_key, const char* content_key,
                               bool sharegpt, const std::string& where, const std::string& about) {
  const auto it = j.find(list);
  if (it == j.end() || !it->is_array())
    throw FormatError(where, std::string("missing list field \"") + list + "\" (" + about + ")");
  std::vector<ChatMessage> out;
  for (std::size_t i = 0; i < it->size(); ++i) {
    const json& m = (*it)[i];
    const std::string at = where + ": " + list + "[" + std::to_string(i) + "]";
    if (!m.is_object()) throw FormatError(at, "expected an object (" + about + ")");
    const std::string& role = string_field(m, role_key, at, about);
    const std::string& content = string_field(m, content_key, at, about);
    out.push_back({sharegpt ? sharegpt_role(role, at) : role, content});
  }
  if (out.empty()) throw FormatError(where, std::string("\"") + list + "\" is empty");
  return out;
}

// The user turn of an alpaca row, and without a template its prompt.
std::string alpaca_prompt(const Record& r) {
  for (const ChatMessage& m : r.messages)
    if (m.role == "user") return m.content;
  return {};
}

std::size_t common_prefix(const std::vector<std::int32_t>& a, const std::vector<std::int32_t>& b) {
  const std::size_t n = std::min(a.size(), b.size());
  std::size_t i = 0;
  while (i < n && a[i] == b[i]) ++i;
  return i;
}

// Marks the tokens of `ids` (the tokenization of `text`) that lie wholly in
// the byte span [begin, end), found as the token counts of prefixes: where a
// prefix's tokens stop being a prefix of the whole, the boundary falls inside
// a token, which is left out.
void mark_span(const Tokenizer& tok, std::string_view text, const ChatSpan& span, const std::vector<std::int32_t>& ids,
               std::vector<std::uint8_t>& scored) {
  const EncodeOptions opt{.add_special = false, .parse_special = true};
  const std::vector<std::int32_t> before = tok.encode(text.substr(0, span.begin), opt);
  std::size_t first = common_prefix(before, ids);
  if (first < before.size()) ++first;
  const std::vector<std::int32_t> upto = tok.encode(text.substr(0, span.end), opt);
  const std::size_t last = common_prefix(upto, ids);
  for (std::size_t t = first; t < last; ++t) scored[t] = 1;
}

}  // namespace

const char* jsonl_format_name(JsonlFormat f) {
  for (const auto& [format, name] : kFormatNames)
    if (format == f) return name;
  return "?";
}

JsonlFormat parse_jsonl_format(const std::string& name, const std::string& field) {
  std::string known;
  for (const auto& [format, n] : kFormatNames) {
    if (name == n) return format;
    known += (known.empty() ? "" : ", ") + std::string(n);
  }
  throw ConfigError(field, "unknown data format " + quoted(name) + "; expected " + known);
}

Record parse_record(std::string_view line, JsonlFormat& format, const JsonlOptions& o, const std::string& where) {
  check_json_depth(line, where);
  json j;
  try {
    j = json::parse(line);
  } catch (const json::parse_error& e) {
    throw FormatError(where, "not valid JSON " + json_message(e));
  } catch (const json::out_of_range& e) {  // a number beyond double's range (1e400)
    throw FormatError(where, std::string("holds a number out of range: ") + e.what());
  }
  if (!j.is_object()) throw FormatError(where, "expected a JSON object per line");
  if (format == JsonlFormat::Auto) format = detect(j, o, where);
  const std::string about = format_fields(format, o);
  Record r;
  r.format = format;
  switch (format) {
    case JsonlFormat::Alpaca: {
      const std::string& instruction = string_field(j, "instruction", where, about);
      std::string user = instruction;
      if (j.contains("input") && !j["input"].is_null()) {
        const std::string& input = string_field(j, "input", where, about);
        if (!input.empty()) user += "\n\n" + input;
      }
      if (j.contains("system") && !j["system"].is_null())
        r.messages.push_back({"system", string_field(j, "system", where, about)});
      r.messages.push_back({"user", user});
      r.messages.push_back({"assistant", string_field(j, "output", where, about)});
      break;
    }
    case JsonlFormat::Messages: r.messages = turns(j, "messages", "role", "content", false, where, about); break;
    case JsonlFormat::Conversations: r.messages = turns(j, "conversations", "from", "value", true, where, about); break;
    case JsonlFormat::PromptCompletion:
      r.prompt = string_field(j, o.prompt, where, about);
      r.completion = string_field(j, o.completion, where, about);
      break;
    case JsonlFormat::Text: r.text = string_field(j, "text", where, about); break;
    case JsonlFormat::Auto: break;
  }
  return r;
}

RenderedExample render_record(const Record& r, const Tokenizer& tok, const JsonlOptions& o, const std::string& where) {
  RenderedExample out;
  Example& e = out.example;
  if (r.format == JsonlFormat::Text) {
    out.text = r.text;
    e.tokens = tok.encode(r.text, {.add_special = true});
    if (tok.eos() >= 0) e.tokens.push_back(tok.eos());
    return out;
  }
  if (!o.chat) {
    if (r.format == JsonlFormat::PromptCompletion || r.format == JsonlFormat::Alpaca) {
      const std::string prompt = r.format == JsonlFormat::Alpaca ? alpaca_prompt(r) + "\n" : r.prompt;
      const std::string& completion = r.format == JsonlFormat::Alpaca ? r.messages.back().content : r.completion;
      out.text = prompt + completion;
      e = make_example(tok, prompt, completion);
      if (o.loss_all) e.scored.clear();
      return out;
    }
    throw ConfigError("model.chat_template", std::string("the data holds conversations (") +
                                                 jsonl_format_name(r.format) +
                                                 " format) and the model has no chat template; choose one "
                                                 "(model.chat_template = chatml, or a .jinja file)");
  }
  std::vector<ChatMessage> messages = r.messages;
  if (r.format == JsonlFormat::PromptCompletion) messages = {{"user", r.prompt}, {"assistant", r.completion}};
  RenderedChat chat;
  try {
    chat = o.chat->render_with_spans(messages);
  } catch (const DataError& err) {
    throw DataError(where + ": " + err.what());
  }
  out.text = std::move(chat.text);
  e.tokens = tok.encode(out.text, {.add_special = false, .parse_special = true});
  if (o.loss_all) return out;
  e.scored.assign(e.tokens.size(), 0);
  for (const ChatSpan& span : chat.assistant) mark_span(tok, out.text, span, e.tokens, e.scored);
  return out;
}

std::vector<std::string> JsonlRead::notes() const {
  std::vector<std::string> out;
  const std::string limit = std::to_string(max_tokens) + " tokens";
  auto note = [&](const std::vector<std::size_t>& lines, const std::string& what) {
    if (!lines.empty())
      out.push_back(file + ": " + std::to_string(lines.size()) + " row(s) " + what + " (" + line_list(lines) + ")");
  };
  note(too_big, "over " + mib_text(kMaxJsonlLineBytes) + " skipped unread");
  if (!too_long.empty())
    out.push_back(file + ": " + std::to_string(too_long.size()) + " row(s) longer than " + limit + " skipped (" +
                  line_list(too_long) + "); a longer train.seq_len keeps them, data.overlong = truncate cuts them");
  note(truncated, "longer than " + limit + " truncated to " + limit);
  note(unscored, "with no token to score skipped (no assistant turn, or none left after truncation)");
  return out;
}

JsonlRead read_jsonl(const std::filesystem::path& file, const Tokenizer& tok, const JsonlOptions& o, int max_tokens,
                     std::size_t keep_text) {
  JsonlRead read;
  read.file = file.string();
  read.max_tokens = max_tokens;
  read.format = o.format;
  LineReader lines(file);
  std::size_t length = 0;
  std::string line;
  while (lines.next(line, length, kMaxJsonlLineBytes)) {
    if (length > kMaxJsonlLineBytes) {
      ++read.nonblank;
      read.too_big.push_back(lines.number());
      continue;
    }
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    ++read.nonblank;
    const std::string where = file.string() + ":" + std::to_string(lines.number());
    const Record record = parse_record(line, read.format, o, where);
    JsonlRead::Row row;
    row.line = lines.number();
    row.rendered = render_record(record, tok, o, where);
    Example& e = row.rendered.example;
    row.full_tokens = e.tokens.size();
    read.token_counts.push_back(row.full_tokens);
    if (static_cast<int>(e.tokens.size()) > max_tokens) {
      if (!o.truncate) {
        read.too_long.push_back(row.line);
        continue;
      }
      e.tokens.resize(static_cast<std::size_t>(max_tokens));
      if (!e.scored.empty()) e.scored.resize(static_cast<std::size_t>(max_tokens));
      row.truncated = true;
      read.truncated.push_back(row.line);
    }
    if (e.scored_count() == 0) {
      read.unscored.push_back(row.line);
      continue;
    }
    if (read.rows.size() >= keep_text) std::string().swap(row.rendered.text);
    read.rows.push_back(std::move(row));
  }
  return read;
}

Dataset load_jsonl(const std::filesystem::path& file, const Tokenizer& tok, const JsonlOptions& o, int max_tokens,
                   double heldout_fraction, std::uint64_t seed) {
  JsonlRead read = read_jsonl(file, tok, o, max_tokens);
  if (read.rows.empty())
    throw DataError(file.string() + ": no usable rows (" + std::to_string(read.nonblank) + " rows, " +
                    std::to_string(read.too_long.size() + read.too_big.size()) + " longer than " +
                    std::to_string(max_tokens) + " tokens" +
                    (read.unscored.empty() ? "" : ", " + std::to_string(read.unscored.size()) + " with nothing to score") +
                    ")");
  Dataset d;
  d.name = "jsonl:" + file.string();
  d.has_completions = read.format != JsonlFormat::Text && !o.loss_all;
  d.notes = read.notes();
  std::vector<Example> rows;
  rows.reserve(read.rows.size());
  for (JsonlRead::Row& r : read.rows) rows.push_back(std::move(r.rendered.example));
  split_rows(std::move(rows), heldout_fraction, seed, d);
  return d;
}

}  // namespace lwb::data
