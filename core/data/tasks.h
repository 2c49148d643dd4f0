#pragma once
// The built-in task suite: small generated text-to-text tasks in one format,
// "<task>: <input>\n" -> "<answer>". They are fine-tuning targets for the
// built-in models and the material LoRAHub composes adapters from.
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/data/dataset.h"
#include "core/tensor/rng.h"

namespace lwb::data {

struct TaskInfo {
  std::string name;
  std::string description;
  std::string example_prompt, example_completion;
};

const std::vector<TaskInfo>& builtin_tasks();

// Disjoint train / validation / held-out splits (no prompt occurs in two
// splits or twice in one), deterministic for a seed. The validation split is
// drawn first, from its own stream, then the held-out split, then train: the
// validation split does not depend on n_heldout or n_train, the held-out one
// not on n_train, and with n_validation = 0 the other two are exactly those of
// a dataset made without one. ConfigError("data.task", ...) for an unknown
// task, DataError if the task has too few distinct prompts for the request.
Dataset make_task_dataset(const std::string& task, const Tokenizer& tok, int n_train, int n_heldout,
                          std::uint64_t seed, int n_validation = 0);

// One generated example before tokenization.
struct TaskPair {
  std::string prompt, answer;
};
struct TaskSplits {
  std::vector<TaskPair> train, heldout, validation;
};
// The split drawing of make_task_dataset for any generator (the built-in
// tasks, the chat tasks of chat_tasks.h): distinct prompts, validation first
// from its own stream, then held-out, then train, so that each split is
// independent of the sizes of the ones drawn after it. DataError naming
// `task` when `draw` cannot produce that many distinct prompts.
TaskSplits draw_task_splits(const std::string& task, const std::function<TaskPair(SplitMix&)>& draw, int n_train,
                            int n_heldout, std::uint64_t seed, int n_validation);

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
