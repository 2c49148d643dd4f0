#pragma once
// One evaluation of a model on examples, for every caller: the trainer's
// held-out checks, LoRAHub's few-shot objective and held-out scores, and
// predictions. Teacher-forced forward passes in batches; the loss is the
// mean cross-entropy over the scored (completion) tokens, and exact match
// counts the examples whose every scored token is the argmax: greedy
// decoding reproduces a completion exactly iff the argmax is right at every
// scored position given the correct prefix, so one pass suffices.
#include <cmath>
#include <cstdint>
#include <span>
#include <vector>

#include "core/data/dataset.h"
#include "core/model/model.h"

namespace lwb {

struct EvalScore {
  double loss = NAN;      // mean cross-entropy per scored token; NaN when nothing is scored
  double accuracy = NAN;  // exact match over the examples with scored tokens; NaN without
  std::int64_t examples = 0;
};

class Evaluator {
 public:
  // `model` is materialised; batches are its max_batch rows of at most its
  // max_seq tokens, padded with `pad`.
  Evaluator(Model& model, std::int32_t pad);
  // exact_match false (data without completions): accuracy stays NaN. A
  // batch with no scored token is skipped (it has no loss), and an example
  // without scored tokens counts in neither part of the accuracy.
  EvalScore score(std::span<const data::Example> examples, bool exact_match);

 private:
  Model& model_;
  std::int32_t pad_;
  data::Batch batch_;
  std::vector<std::int32_t> predicted_;
};

}  // namespace lwb
