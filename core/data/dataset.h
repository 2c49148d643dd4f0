#pragma once
// Training examples, splits and batches. An Example is a token sequence
// [bos] + prompt + completion + [eos] (or a plain text chunk); the model is
// scored on predicting every token after the prompt.
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/data/tokenizer.h"

namespace lwb::data {

struct Example {
  std::vector<std::int32_t> tokens;
  // Leading tokens (bos + prompt) whose next-token predictions are not scored;
  // 0 for plain text, where every next token is.
  std::int32_t prompt_len = 0;
};

// Three disjoint splits: train (what the model learns from), validation
// (what choices such as a learning rate are made on; empty unless asked
// for) and heldout, the test split that reports the result and must never
// inform a choice.
struct Dataset {
  std::string name;  // "task:reverse", "jsonl:/path/file.jsonl", "text:/path"
  std::vector<Example> train, heldout;
  std::vector<Example> validation;
  bool has_completions = false;  // exact-match accuracy is meaningful
  // What was left out while reading, one line each with the file and line
  // numbers ("data.jsonl: 3 rows longer than 65 tokens skipped (lines 4, 9, 12)").
  std::vector<std::string> notes;
  std::int32_t max_tokens() const;
};

// Data files are read whole into memory (and tokenized there), so reading
// stops with a FormatError past this size: /dev/zero or a pipe that never
// ends must not fill the memory.
constexpr std::size_t kMaxDataFileBytes = std::size_t{1} << 30;
// A JSONL line longer than this cannot fit any sequence length: it is
// skipped unparsed (and named in the notes).
constexpr std::size_t kMaxJsonlLineBytes = std::size_t{1} << 20;

// A batch reused across steps: filling it again does not reallocate.
struct Batch {
  int B = 0, T = 0;
  std::vector<std::int32_t> inputs;   // [B*T], padded with the pad id
  std::vector<std::int32_t> targets;  // [B*T], -1 where not scored
  std::int32_t n_targets = 0;
  std::int32_t rows = 0;              // rows holding an example (<= B)
};

// Row i holds rows[i] left-aligned: inputs[t] = tokens[t], targets[t] =
// tokens[t + 1] when t + 1 >= max(prompt_len, 1), else -1. DataError if an
// example has more than T + 1 tokens or there are more than B examples.
void make_batch(std::span<const Example> rows, int B, int T, std::int32_t pad_id, Batch& out);
// Drops the all-padding tail columns of a batch (rows keep their order and
// stay left-aligned), so a batch of short task examples is not computed at
// the full sequence length. T shrinks; the vectors keep their capacity.
void trim_padding(Batch& b, std::int32_t pad_id);

// Epoch-shuffled batches over a split, deterministic for a seed on every
// platform. Each epoch visits every example once; a batch may straddle two
// epochs. The split is referenced, not copied, and must outlive the sampler.
// DataError if the split is empty or holds an example longer than T + 1.
class BatchSampler {
 public:
  BatchSampler(const std::vector<Example>& split, int B, int T, std::int32_t pad_id, std::uint64_t seed);
  void next(Batch& out);
  // 0-based epoch of the last example handed out.
  std::int64_t epoch() const { return epoch_; }

 private:
  void shuffle();
  const std::vector<Example>& split_;
  int B_, T_;
  std::int32_t pad_;
  std::uint64_t seed_;
  std::vector<std::uint32_t> order_;
  std::vector<std::uint32_t> picks_;  // the current batch's examples, reused
  std::size_t cursor_ = 0;
  std::int64_t epoch_ = 0;
};

// Chunks of T + 1 tokens; the last heldout_fraction (at least one chunk) is
// held out. DataError naming `name` with fewer than two chunks.
Dataset text_dataset(std::string_view text, const Tokenizer& tok, int T, double heldout_fraction,
                     std::string name);
// FormatError(file, ...) if unreadable or larger than kMaxDataFileBytes.
Dataset load_text_corpus(const std::filesystem::path& file, const Tokenizer& tok, int T,
                         double heldout_fraction = 0.1);

struct JsonlFields {
  std::string prompt = "prompt";
  std::string completion = "completion";
};
// One JSON object per line (blank lines skipped). FormatError("file:LINE", ...)
// for a malformed line or a missing/non-string field; rows longer than
// max_tokens (or kMaxJsonlLineBytes) are skipped and named in the notes;
// DataError naming the file when no row is usable. The held-out split is a
// seeded choice of rows.
Dataset load_jsonl(const std::filesystem::path& file, const Tokenizer& tok, const JsonlFields& fields,
                   int max_tokens, double heldout_fraction = 0.1, std::uint64_t seed = 0);
// The rows of such a file in its order, unsplit (the same errors; what was
// skipped is appended to `notes`).
std::vector<Example> read_jsonl_examples(const std::filesystem::path& file, const Tokenizer& tok,
                                         const JsonlFields& fields, int max_tokens, std::vector<std::string>& notes);

// Moves `n` training examples (a seeded choice) into the validation split,
// for datasets read from files; the held-out split is untouched, so the three
// stay disjoint. DataError naming the dataset when fewer than n + 1 training
// examples exist (training needs at least one).
void carve_validation(Dataset& d, int n, std::uint64_t seed);

// [bos] + prompt + completion + [eos], prompt_len = 1 + |prompt|.
Example make_example(const Tokenizer& tok, std::string_view prompt, std::string_view completion);

}  // namespace lwb::data
