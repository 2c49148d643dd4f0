#pragma once
// The built-in task suite: small generated text-to-text tasks in one format,
// "<task>: <input>\n" -> "<answer>". They are fine-tuning targets for the
// built-in models and the material LoRAHub composes adapters from.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/data/dataset.h"

namespace lwb::data {

struct TaskInfo {
  std::string name;
  std::string description;
  std::string example_prompt, example_completion;
};

const std::vector<TaskInfo>& builtin_tasks();

// Disjoint train / held-out splits (no held-out prompt occurs in train, no
// prompt occurs twice), deterministic for a seed; the held-out split does not
// depend on n_train. ConfigError("data.task", ...) for an unknown task,
// DataError if the task has too few distinct prompts for the request.
Dataset make_task_dataset(const std::string& task, const Tokenizer& tok, int n_train, int n_heldout,
                          std::uint64_t seed);

// Both throw ConfigError("data.task", ...) for an unknown task; task_answer
// throws DataError for an input the task cannot read ("12 plus 7" for add).
std::string task_prompt(const std::string& task, std::string_view input);  // "reverse: abc\n"
std::string task_answer(const std::string& task, std::string_view input);  // "cba"

// Generic pretraining text for the built-in bases: lines of the tasks'
// material and layout (words, letter strings, numbers) and the copy task, but
// none of the other tasks' transformations, so fine-tuning still has
// something to learn.
std::string pretrain_corpus(std::int64_t n_bytes, std::uint64_t seed);
// Bumped whenever pretrain_corpus changes, so cached bases are rebuilt.
inline constexpr int kPretrainCorpusVersion = 2;

}  // namespace lwb::data
