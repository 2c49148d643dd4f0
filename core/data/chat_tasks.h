#pragma once
// Built-in chat tasks: generated instruction data for chat models (a user
// turn and the assistant's answer), the demo tasks of real bases such as
// SmolLM2-135M-Instruct. They share the built-in tasks' split drawing
// (tasks.h) but are rendered like prompt-completion JSONL rows: through the
// model's chat template when it has one (the loss on the assistant's turn),
// else as [bos] prompt completion [eos].
//
//   person-json  a sentence about a person -> {"name": "<first last>", "year": <birth year>}
//                in exactly that shape; the sentences also hold a second,
//                unrelated year, a city and an occupation.
#include <cstdint>
#include <string>
#include <vector>

#include "core/data/dataset.h"
#include "core/data/instruction_data.h"
#include "core/data/tasks.h"

namespace lwb::data {

const std::vector<TaskInfo>& chat_tasks();
bool is_chat_task(const std::string& name);

// The task's pairs in disjoint seeded splits (draw_task_splits).
// ConfigError("data.task", ...) for an unknown chat task.
TaskSplits chat_task_splits(const std::string& task, int n_train, int n_heldout, std::uint64_t seed,
                            int n_validation = 0);

// The splits rendered by render_record as prompt-completion rows with
// `options` (its chat template and loss_on). DataError naming the task and
// the longest example when one has more than max_tokens tokens: the tasks
// are short by design, so a sequence that cuts them is a setting to fix.
Dataset make_chat_task_dataset(const std::string& task, const Tokenizer& tok, const JsonlOptions& options,
                               int max_tokens, int n_train, int n_heldout, std::uint64_t seed, int n_validation = 0);

// One {"prompt": ..., "completion": ...} line per pair: the JSONL that
// predict and `data preview` read.
std::string task_pairs_jsonl(const std::vector<TaskPair>& pairs);

}  // namespace lwb::data
