#pragma once
// Training examples, splits and batches. An Example is a token sequence with
// a flag per token saying whether predicting it counts: a completion after its
// prompt, the assistant's turns of a conversation (instruction_data.h), or
// every token of a plain text chunk.
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
  // scored[t]: whether predicting tokens[t] from the tokens before it counts
  // (loss and exact match); as long as tokens, or empty when every token
  // does (plain text). The first token is never predicted.
  std::vector<std::uint8_t> scored;
  bool is_scored(std::size_t t) const { return t >= 1 && (scored.empty() || scored[t] != 0); }
  std::size_t scored_count() const;
  // The tokens before the first scored one: the prompt a model answers (the
  // completion, or the first assistant turn, follows). 0 when every token is
  // scored (plain text) or none is.
  std::size_t prompt_length() const;
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

// A batch reused across steps: filling it again does not reallocate.
struct Batch {
  int B = 0, T = 0;
  std::vector<std::int32_t> inputs;   // [B*T], padded with the pad id
  std::vector<std::int32_t> targets;  // [B*T], -1 where not scored
  std::int32_t n_targets = 0;
  std::int32_t rows = 0;              // rows holding an example (<= B)
};

// Row i holds rows[i] left-aligned: inputs[t] = tokens[t], targets[t] =
// tokens[t + 1] when that token is scored, else -1. DataError if an example
// has more than T + 1 tokens or there are more than B examples.
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

// Moves `n` training examples (a seeded choice) into the validation split,
// for datasets read from files; the held-out split is untouched, so the three
// stay disjoint. DataError naming the dataset when fewer than n + 1 training
// examples exist (training needs at least one).
void carve_validation(Dataset& d, int n, std::uint64_t seed);


// The prompt as the model's post-processor wraps a text ([bos] for byte and
// Llama-style tokenizers, nothing for GPT-2-style ones), the completion, and
// eos when the tokenizer has one; the completion and eos are scored.
Example make_example(const Tokenizer& tok, std::string_view prompt, std::string_view completion);

// The id batches are padded with: the tokenizer's pad, else its eos, else 0
// (Llama-3 has no pad). Padding is never scored and, being after the
// example, never seen by its positions, so any valid id serves.
std::int32_t batch_pad_id(const Tokenizer& tok);

// Splits rows into train and held-out: a seeded choice of
// max(1, heldout_fraction * n) held-out rows (a single row is both).
void split_rows(std::vector<Example> rows, double heldout_fraction, std::uint64_t seed, Dataset& out);

}  // namespace lwb::data
