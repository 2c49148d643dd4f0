#pragma once
// Instruction data in the JSONL shapes people have, one JSON object per line:
//   alpaca             {"instruction", "input" (optional), "output", "system" (optional)}
//   messages           {"messages": [{"role", "content"}, ...]}   (OpenAI, TRL)
//   conversations      {"conversations": [{"from", "value"}, ...]}  (ShareGPT: human, gpt, system)
//   prompt-completion  {"prompt", "completion"} (field names configurable)
//   text               {"text"}: a document, every token scored
// With a chat template every format but text becomes a conversation rendered
// by it (render_with_spans), and the loss covers the tokens of the
// assistant's turns (the turn-end text included), or every token when asked.
// Without one, prompt-completion and alpaca rows are [bos] prompt completion
// [eos] as make_example builds them (alpaca's prompt: the instruction, a blank
// line and the input, then a newline), and conversations are refused.
// Examples longer than the sequence are dropped or truncated, and counted.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "core/data/chat_template.h"
#include "core/data/dataset.h"
#include "core/data/tokenizer.h"

namespace lwb::data {

// A JSONL line longer than this cannot fit any sequence length: it is
// skipped unparsed (and named in the notes).
constexpr std::size_t kMaxJsonlLineBytes = std::size_t{1} << 20;

enum class JsonlFormat { Auto, Alpaca, Messages, Conversations, PromptCompletion, Text };
const char* jsonl_format_name(JsonlFormat f);  // "auto", "alpaca", ..., "prompt-completion", "text"
// ConfigError(field, ...) listing the names for anything else.
JsonlFormat parse_jsonl_format(const std::string& name, const std::string& field = "data.format");

struct JsonlOptions {
  std::string prompt = "prompt";  // prompt-completion field names
  std::string completion = "completion";
  // Auto: the first row's keys decide (messages, conversations, instruction,
  // the prompt/completion fields, text), and every row must then have that
  // format's fields.
  JsonlFormat format = JsonlFormat::Auto;
  const ChatTemplate* chat = nullptr;  // not owned
  bool loss_all = false;   // score every token, not only the assistant's
  bool truncate = false;   // cut long examples to max_tokens instead of dropping them
};

// One row, whatever its format.
struct Record {
  JsonlFormat format = JsonlFormat::Auto;
  std::vector<ChatMessage> messages;  // alpaca, messages, conversations
  std::string prompt, completion;     // prompt-completion
  std::string text;                   // text
};

// Parses one line. `format` Auto is settled by this row (and set). FormatError
// naming `where` ("file:LINE") for bad JSON, a missing or non-string field,
// an unknown ShareGPT speaker, or a row no format fits.
Record parse_record(std::string_view line, JsonlFormat& format, const JsonlOptions& options, const std::string& where);

struct RenderedExample {
  std::string text;  // what was tokenized (template applied), for previews
  Example example;
};
// The example of a record (see the top of this file). DataError naming
// `where` when the template refuses the conversation; ConfigError
// ("model.chat_template", ...) for a conversation without a template.
RenderedExample render_record(const Record& record, const Tokenizer& tok, const JsonlOptions& options,
                              const std::string& where);

// What reading a file gave, row by row; shared by training and the preview.
struct JsonlRead {
  std::string file;
  int max_tokens = 0;
  JsonlFormat format = JsonlFormat::Auto;  // the one the rows are in
  struct Row {
    std::size_t line = 0;
    RenderedExample rendered;  // text kept only for the first `keep_text` rows
    std::size_t full_tokens = 0;  // before truncation
    bool truncated = false;
  };
  std::vector<Row> rows;  // the usable ones
  std::size_t nonblank = 0;
  // Lines left out: over kMaxJsonlLineBytes, longer than max_tokens (dropped),
  // truncated, and with no scored token (no assistant turn, or none left
  // after truncation).
  std::vector<std::size_t> too_big, too_long, truncated, unscored;
  std::vector<std::size_t> token_counts;  // every parsed row's, before truncation
  // One line per kind of row left out or cut, with the file and line numbers
  // ("data.jsonl: 3 row(s) longer than 65 tokens skipped (lines 4, 9, 12); ...").
  std::vector<std::string> notes() const;
};
// Reads every line (blank ones skipped). FormatError("file:LINE", ...) for a
// bad line, FormatError(file, ...) for a file that cannot be read.
JsonlRead read_jsonl(const std::filesystem::path& file, const Tokenizer& tok, const JsonlOptions& options,
                     int max_tokens, std::size_t keep_text = 0);

// The training set of a JSONL file: read_jsonl's rows split into train and
// held-out by a seeded choice (split_rows), what was left out in the notes;
// DataError naming the file when no row is usable.
Dataset load_jsonl(const std::filesystem::path& file, const Tokenizer& tok, const JsonlOptions& options,
                   int max_tokens, double heldout_fraction = 0.1, std::uint64_t seed = 0);

}  // namespace lwb::data
