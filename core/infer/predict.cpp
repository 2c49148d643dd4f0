#include "core/infer/predict.h"

#include <algorithm>
#include <optional>

#include "core/adapters/attach.h"
#include "core/common/errors.h"
#include "core/cpu/cpu_share.h"
#include "core/infer/adapter_set.h"
#include "core/infer/generator.h"
#include "core/infer/text_stream.h"
#include "core/model/checkpoint.h"

namespace lwb::infer {

namespace {

std::string_view trimmed(std::string_view s) {
  const std::size_t a = s.find_first_not_of(" \t\r\n");
  if (a == std::string_view::npos) return {};
  return s.substr(a, s.find_last_not_of(" \t\r\n") - a + 1);
}

std::vector<std::string_view> words(std::string_view s) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (true) {
    i = s.find_first_not_of(" \t\r\n", i);
    if (i == std::string_view::npos) return out;
    const std::size_t end = std::min(s.find_first_of(" \t\r\n", i), s.size());
    out.push_back(s.substr(i, end - i));
    i = end;
  }
}

double mean(std::span<const Prediction> rows, double (*value)(const Prediction&)) {
  double sum = 0;
  for (const Prediction& r : rows) sum += value(r);
  return rows.empty() ? NAN : sum / static_cast<double>(rows.size());
}

}  // namespace

double rouge_l(std::string_view prediction, std::string_view reference) {
  const std::vector<std::string_view> p = words(prediction), r = words(reference);
  if (p.empty() || r.empty()) return p.empty() && r.empty() ? 1.0 : 0.0;
  // LCS length by the usual table, one row at a time.
  std::vector<std::size_t> prev(r.size() + 1, 0), cur(r.size() + 1, 0);
  for (std::size_t i = 1; i <= p.size(); ++i) {
    for (std::size_t j = 1; j <= r.size(); ++j)
      cur[j] = p[i - 1] == r[j - 1] ? prev[j - 1] + 1 : std::max(prev[j], cur[j - 1]);
    std::swap(prev, cur);
  }
  const double lcs = static_cast<double>(prev[r.size()]);
  if (lcs == 0) return 0.0;
  const double precision = lcs / static_cast<double>(p.size()), recall = lcs / static_cast<double>(r.size());
  return 2 * precision * recall / (precision + recall);
}

PredictionSummary summarize(std::span<const Prediction> rows) {
  PredictionSummary s;
  s.examples = static_cast<std::int64_t>(rows.size());
  s.loss = mean(rows, [](const Prediction& r) { return r.loss; });
  s.exact_match = mean(rows, [](const Prediction& r) { return r.exact ? 1.0 : 0.0; });
  s.rouge_l = mean(rows, [](const Prediction& r) { return r.rouge_l; });
  return s;
}

std::vector<Prediction> predict(const Model& base, const std::string& base_fingerprint, const AdapterState* adapter,
                                const std::string& adapter_name, const data::Tokenizer& tokenizer,
                                std::span<const data::Example> examples, const PredictOptions& options) {
  if (options.batch < 1) throw ConfigError("predict.batch", "must be at least 1");
  if (options.extra_tokens < 0) throw ConfigError("predict.extra_tokens", "must not be negative");
  const ModelConfig& mc = base.config();
  std::int64_t longest = 1, context = 1;
  for (std::size_t i = 0; i < examples.size(); ++i) {
    const data::Example& e = examples[i];
    const auto n = static_cast<std::int64_t>(e.tokens.size());
    if (e.prompt_length() < 1)
      throw DataError("example " + std::to_string(i + 1) + " has no prompt or no completion to compare with");
    if (n > mc.max_seq)
      throw DataError("example " + std::to_string(i + 1) + " has " + std::to_string(n) +
                      " tokens, more than the model's context of " + std::to_string(mc.max_seq));
    longest = std::max(longest, n);
    context = std::max(context, std::min<std::int64_t>(n + options.extra_tokens, mc.max_seq));
  }
  if (examples.empty()) return {};
  if (adapter) check_adapter_fits(*adapter, mc, adapter_name);
  std::optional<CpuShare> share;  // the cores, divided with the other runs on them
  if (base.backend().device().kind == DeviceKind::Cpu) share.emplace().use_fair_share();

  // One copy of the base with the adapter's modules: its forward and loss
  // are the trainer's (teacher-forced loss), and the decoder reads the same
  // base weights in place for the answers, the adapter beside them unmerged.
  MemoryLedger ledger;
  AdapterConfig shape;
  if (adapter) {
    shape = adapter->config;
    shape.dropout = 0;  // evaluation only: no dropout buffers
  }
  Model model(mc, adapter ? model_mode_for(shape) : Model::Mode::Frozen, base.dtype());
  if (adapter) attach_adapters(model, shape);
  model.materialize(base.backend(), ledger, 1, longest - 1);
  copy_base_weights(base, model);
  const int batch = static_cast<int>(std::min<std::int64_t>(options.batch, static_cast<std::int64_t>(examples.size())));
  Decoder decoder(model, DecoderLimits{batch, context, 0}, ledger);
  std::optional<AdapterSet> set;
  if (adapter) {
    set.emplace(decoder, *adapter, adapter_name, base_fingerprint);
    load_adapter(model, *adapter, adapter_name);
  }
  Generator generator(decoder, tokenizer);

  std::vector<Prediction> out;
  out.reserve(examples.size());
  data::Batch rows;
  std::vector<std::vector<std::int32_t>> prompts;
  const data::DecodeOptions text{.skip_special = true};
  for (std::size_t first = 0; first < examples.size(); first += static_cast<std::size_t>(batch)) {
    if (options.cancel && options.cancel->load()) break;
    const std::span<const data::Example> part =
        examples.subspan(first, std::min<std::size_t>(static_cast<std::size_t>(batch), examples.size() - first));
    prompts.clear();
    int max_new = 1;
    for (const data::Example& e : part) {
      const auto prompt_len = static_cast<std::ptrdiff_t>(e.prompt_length());
      prompts.emplace_back(e.tokens.begin(), e.tokens.begin() + prompt_len);
      max_new = std::max(max_new, static_cast<int>(std::ssize(e.tokens) - prompt_len) + options.extra_tokens);
    }
    GenerateOptions g;
    g.sampling.greedy = true;
    g.max_new_tokens = max_new;
    g.adapter = set ? &*set : nullptr;
    g.cancel = options.cancel;
    const std::vector<Completion> answers = generator.generate(prompts, g);
    if (std::any_of(answers.begin(), answers.end(), [](const Completion& c) { return c.reason == FinishReason::Cancelled; }))
      break;
    for (std::size_t i = 0; i < part.size(); ++i) {
      const data::Example& e = part[i];
      data::make_batch(part.subspan(i, 1), 1, static_cast<int>(longest - 1), tokenizer.pad(), rows);
      data::trim_padding(rows, tokenizer.pad());
      model.set_batch(rows.inputs.data(), rows.targets.data(), 1, rows.T);
      model.forward(false, 0);
      Prediction p;
      p.loss = model.loss(rows.n_targets, false);
      const std::span<const std::int32_t> tokens(e.tokens);
      const std::size_t prompt_len = e.prompt_length();
      p.prompt = tokenizer.decode(tokens.first(prompt_len), text);
      p.reference = tokenizer.decode(tokens.subspan(prompt_len), text);
      // The batch ran to its longest limit; each answer is cut to its own,
      // so that it does not depend on the examples beside it.
      const std::size_t limit = e.tokens.size() - prompt_len +
                                static_cast<std::size_t>(options.extra_tokens);
      const std::vector<std::int32_t>& got = answers[i].tokens;
      if (got.size() <= limit) {
        p.prediction = answers[i].text;
      } else {
        TextStream cut(tokenizer, {});  // the text the generator makes of those tokens
        for (std::size_t k = 0; k < limit; ++k) cut.push(got[k]);
        cut.finish();
        p.prediction = cut.text();
      }
      p.exact = trimmed(p.prediction) == trimmed(p.reference);
      p.rouge_l = rouge_l(p.prediction, p.reference);
      out.push_back(std::move(p));
    }
    if (options.progress) options.progress(static_cast<std::int64_t>(out.size()), static_cast<std::int64_t>(examples.size()));
  }
  return out;
}

}  // namespace lwb::infer
