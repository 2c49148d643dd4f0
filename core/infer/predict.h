#pragma once
// Batch predictions over examples that have a reference completion (the
// held-out data of an instruction task): for each, the loss the trainer
// reports, the model's greedy answer and how close it is to the reference.
//
//   loss        mean cross-entropy over the completion's tokens and its eos,
//               teacher-forced: the training model's forward and loss, so the
//               mean over a run's held-out examples is the run's eval loss
//   prediction  the greedy answer to [bos] + prompt (the training format),
//               ended by eos or after the reference's length + extra tokens
//   exact       the prediction equals the reference, ends trimmed of spaces
//   rouge_l     ROUGE-L F1: the longest common subsequence of the two texts'
//               whitespace-separated words, 2PR / (P + R)
#include <atomic>
#include <cmath>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/adapters/adapter_state.h"
#include "core/data/dataset.h"
#include "core/data/tokenizer.h"
#include "core/model/model.h"

namespace lwb::infer {

struct Prediction {
  std::string prompt, reference, prediction;
  double loss = NAN;
  bool exact = false;
  double rouge_l = NAN;
};

struct PredictionSummary {
  std::int64_t examples = 0;
  double loss = NAN, exact_match = NAN, rouge_l = NAN;  // means over the examples
};
PredictionSummary summarize(std::span<const Prediction> rows);

double rouge_l(std::string_view prediction, std::string_view reference);

struct PredictOptions {
  int batch = 8;            // answers generated together
  int extra_tokens = 16;    // an answer may run this far past its reference before it is cut
  const std::atomic<bool>* cancel = nullptr;
  // After each batch: examples done, of how many.
  std::function<void(std::int64_t done, std::int64_t total)> progress;
};

// Predicts every example with `base` (materialised, not modified) and
// `adapter` (nullptr: the base alone) on the base's backend. Examples must
// have a prompt and a completion (scored tokens after an unscored prompt,
// Example::prompt_length). FormatError when the
// adapter does not fit the base or was trained on another one (fingerprints,
// when both are known); DataError naming the example for one without a
// completion or longer than the model's context. Cancelled: the rows done so
// far (whole batches).
// `adapter_name` names the adapter in messages.
std::vector<Prediction> predict(const Model& base, const std::string& base_fingerprint, const AdapterState* adapter,
                                const std::string& adapter_name, const data::Tokenizer& tokenizer,
                                std::span<const data::Example> examples, const PredictOptions& options = {});

}  // namespace lwb::infer
