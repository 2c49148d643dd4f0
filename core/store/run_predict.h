#pragma once
// Evaluate & Predict for a stored run (the Runs view's, `predict --run`):
// the adapter the run kept, on the base it was trained on, answers its
// held-out split or a JSONL file read with the run's data settings, through
// infer::predict (per-example loss, greedy answer, exact match, ROUGE-L).
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "core/data/chat_template.h"
#include "core/data/dataset.h"
#include "core/data/tokenizer.h"
#include "core/infer/predict.h"
#include "core/store/store.h"
#include "core/train/experiment_config.h"
#include "core/train/trainer.h"

namespace lwb {

// The examples of a JSONL file as training reads them with `data` (format,
// fields, chat template), for predictions: only the completion (or the
// assistant's turns) is scored and long rows are left out rather than cut,
// since the answer is compared with what follows the prompt. The notes say
// what was left out. DataError naming the file when no row is usable.
std::vector<data::Example> read_prediction_examples(const std::filesystem::path& file, DataConfig data,
                                                    const data::ChatTemplate* chat, const data::Tokenizer& tokenizer,
                                                    int max_tokens, std::vector<std::string>* notes = nullptr);

// The adapter run `run_id` kept in the library (the newest, should there be
// several); ConfigError naming the run when it kept none (a full
// fine-tuning run, one that failed before it ended).
std::int64_t run_adapter_id(Store& store, std::int64_t run_id);

struct RunPrediction {
  std::int64_t run_id = 0;
  std::filesystem::path data;  // empty: the run's held-out split
  int n = 0;                   // at most this many examples; 0: all
  infer::PredictOptions options;
};

// The rows as CSV (RFC 4180, text fields quoted), in the data's order:
// index,prompt,reference,prediction,loss,exact_match,rouge_l.
std::string predictions_csv(std::span<const infer::Prediction> rows);

// Predicts on the CPU; the set names the run, its adapter and the data, not
// yet saved (Store::save_predictions). Cancelled: the rows done so far.
PredictionSet predict_run(Store& store, const RunPrediction& request, const TrainerEnvironment& env);

}  // namespace lwb
