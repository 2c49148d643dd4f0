#include "core/eval/evaluation.h"

#include <algorithm>

namespace lwb {

Evaluator::Evaluator(Model& model, std::int32_t pad) : model_(model), pad_(pad) {}

EvalScore Evaluator::score(std::span<const data::Example> examples, bool exact_match) {
  const auto n = static_cast<std::int64_t>(examples.size());
  const auto B = static_cast<int>(model_.max_batch()), T = static_cast<int>(model_.max_seq());
  double loss_sum = 0;
  std::int64_t scored_tokens = 0, scored_examples = 0, correct = 0;
  for (std::int64_t i = 0; i < n; i += B) {
    const int rows = static_cast<int>(std::min<std::int64_t>(B, n - i));
    data::make_batch(examples.subspan(static_cast<std::size_t>(i), rows), rows, T, pad_, batch_);
    data::trim_padding(batch_, pad_);
    if (batch_.n_targets == 0) continue;
    model_.set_batch(batch_.inputs.data(), batch_.targets.data(), rows, batch_.T);
    model_.forward(false, 0);
    loss_sum += model_.loss(batch_.n_targets, false, exact_match ? &predicted_ : nullptr) *
                batch_.n_targets;
    scored_tokens += batch_.n_targets;
    if (exact_match) {
      for (int r = 0; r < rows; ++r) {
        bool any = false, ok = true;
        for (int t = 0; t < batch_.T; ++t) {
          const std::size_t k = static_cast<std::size_t>(r) * batch_.T + t;
          if (batch_.targets[k] < 0) continue;
          any = true;
          ok = ok && predicted_[k] == batch_.targets[k];
        }
        scored_examples += any;
        correct += any && ok;
      }
    }
  }
  EvalScore s;
  s.examples = n;
  if (scored_tokens > 0) s.loss = loss_sum / static_cast<double>(scored_tokens);
  if (scored_examples > 0) s.accuracy = static_cast<double>(correct) / static_cast<double>(scored_examples);
  return s;
}

}  // namespace lwb
