#pragma once
// What the model will see: the first examples of a data set as tokens, each
// with its id and whether it is scored (like axolotl's preprocess debug
// output), and token-count statistics over the whole set. The CLI's
// `data preview` prints it; the window's Setup tab draws it.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/data/dataset.h"
#include "core/data/instruction_data.h"
#include "core/data/tokenizer.h"

namespace lwb::data {

struct PreviewExample {
  std::string label;  // "line 3", "example 1", "chunk 2"
  std::string text;   // what was tokenized
  Example example;
  bool truncated = false;
};

struct TokenCountStats {
  std::size_t count = 0, min = 0, max = 0, median = 0, p95 = 0;
  double mean = 0;
};
TokenCountStats token_count_stats(std::vector<std::size_t> counts);

struct DataPreview {
  std::string summary;  // "data.jsonl: 200 rows in messages format, ..."
  std::vector<PreviewExample> examples;  // the first ones
  TokenCountStats lengths;  // of every example, before truncation
  std::size_t kept = 0, scored_tokens = 0, total_tokens = 0;  // of the examples kept for training
  std::vector<std::string> notes;  // rows left out or cut
};

// The first `n` rows of read_jsonl's reading, and statistics over all.
DataPreview preview_jsonl(const std::filesystem::path& file, const Tokenizer& tok, const JsonlOptions& options,
                          int max_tokens, std::size_t n);
// Examples already made (a built-in task, text chunks).
DataPreview preview_examples(const std::string& name, const std::vector<Example>& examples, const Tokenizer& tok,
                             std::size_t n);

// A token as it reads in text: its bytes, with newlines, tabs and bytes that
// are not UTF-8 escaped (\n, \t, \xE2).
std::string token_text(const Tokenizer& tok, std::int32_t id);
// The preview as plain text: per example its text, then each token as
// `text(id, label)` where label is the id when scored and -100 when not (as
// in Hugging Face labels), then the statistics and notes.
std::string format_preview(const DataPreview& preview, const Tokenizer& tok);

}  // namespace lwb::data
