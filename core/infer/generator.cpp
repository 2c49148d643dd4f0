#include "core/infer/generator.h"

#include <algorithm>
#include <chrono>
#include <optional>

#include "core/common/errors.h"
#include "core/infer/adapter_set.h"
#include "core/infer/text_stream.h"

namespace lwb::infer {

const char* finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::Stop: return "stop";
    case FinishReason::StopString: return "stop_string";
    case FinishReason::Length: return "length";
    case FinishReason::Context: return "context";
    case FinishReason::Cancelled: return "cancelled";
  }
  return "?";
}

struct Generator::Sequence {
  std::int64_t slot;
  Sampler sampler;
  TextStream text;
  Completion completion;
  bool running = true;
  std::int32_t pending = -1;  // sampled, to be fed at the next step
};

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

Generator::Generator(Decoder& decoder, const data::Tokenizer& tokenizer)
    : decoder_(decoder), tokenizer_(tokenizer), slots_(static_cast<std::size_t>(decoder.sequences())) {
  if (decoder.model().dtype() != DType::F32)
    throw ConfigError("model.dtype", "generation runs fp32 models");
  if (tokenizer.vocab_size() > decoder.config().vocab)
    throw ConfigError("model.tokenizer", "tokenizer " + tokenizer.name() + " has " +
                                             std::to_string(tokenizer.vocab_size()) + " ids but the model has " +
                                             std::to_string(decoder.config().vocab));
  const auto R = static_cast<std::size_t>(decoder.max_rows()), S = static_cast<std::size_t>(decoder.sequences());
  for (auto* v : {&tokens_, &row_slots_, &positions_}) v->reserve(R);
  logit_rows_.reserve(S);
  chunk_logit_rows_.reserve(S);
  logits_.resize(S * static_cast<std::size_t>(decoder.config().vocab));
}

void Generator::reset() {
  for (SlotState& s : slots_) s = SlotState{};
}

void Generator::check(std::span<const std::vector<std::int32_t>> prompts, const GenerateOptions& o) const {
  if (prompts.empty()) throw DataError("no prompt given");
  if (static_cast<std::int64_t>(prompts.size()) > decoder_.sequences())
    throw DataError(std::to_string(prompts.size()) + " prompts, but the generator holds " +
                    std::to_string(decoder_.sequences()) + " sequences at once");
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    const std::string which = prompts.size() > 1 ? "prompt " + std::to_string(i + 1) : "the prompt";
    if (prompts[i].empty()) throw DataError(which + " is empty (it has no tokens)");
    if (static_cast<std::int64_t>(prompts[i].size()) > decoder_.context())
      throw DataError(which + " has " + std::to_string(prompts[i].size()) +
                      " tokens, more than the context of " + std::to_string(decoder_.context()) + " tokens");
    for (std::int32_t t : prompts[i])
      if (t < 0 || t >= decoder_.config().vocab)
        throw DataError(which + " holds token id " + std::to_string(t) +
                        ", outside the model's vocabulary of " + std::to_string(decoder_.config().vocab));
  }
  if (o.max_new_tokens <= 0)
    throw ConfigError("generate.max_new_tokens", "must be at least 1, not " + std::to_string(o.max_new_tokens));
  o.sampling.validate();
  for (const std::string& s : o.stop_strings)
    if (s.empty()) throw ConfigError("generate.stop", "a stop string must not be empty");
  if (o.adapter && &o.adapter->decoder() != &decoder_)
    throw ConfigError("generate.adapter", "adapter \"" + o.adapter->name() + "\" was loaded for another model");
}

void Generator::run_rows(const AdapterSet* adapter) {
  const auto n = static_cast<std::int64_t>(tokens_.size());
  const std::int64_t V = decoder_.config().vocab;
  std::size_t next_logit = 0;
  for (std::int64_t c0 = 0; c0 < n; c0 += decoder_.max_rows()) {
    const std::int64_t c1 = std::min(n, c0 + decoder_.max_rows());
    const std::size_t first_logit = next_logit;
    chunk_logit_rows_.clear();
    while (next_logit < logit_rows_.size() && logit_rows_[next_logit] < c1)
      chunk_logit_rows_.push_back(static_cast<std::int32_t>(logit_rows_[next_logit++] - c0));
    const auto span = [&](const std::vector<std::int32_t>& v) {
      return std::span<const std::int32_t>(v).subspan(static_cast<std::size_t>(c0), static_cast<std::size_t>(c1 - c0));
    };
    const Tensor logits =
        decoder_.forward(DecoderRows{span(tokens_), span(row_slots_), span(positions_), chunk_logit_rows_}, adapter);
    if (!chunk_logit_rows_.empty())
      decoder_.backend().download(logits_.data() + first_logit * static_cast<std::size_t>(V), logits,
                                  chunk_logit_rows_.size() * static_cast<std::size_t>(V) * sizeof(float));
  }
}

std::vector<Completion> Generator::generate(std::span<const std::vector<std::int32_t>> prompts,
                                            const GenerateOptions& o) {
  check(prompts, o);
  stats_ = GenerateStats{};
  const std::int32_t V = decoder_.config().vocab;
  const std::uint64_t adapter_id = o.adapter ? o.adapter->id() : 0;
  std::vector<std::uint8_t> is_stop(static_cast<std::size_t>(V), 0);
  if (o.tokenizer_stops)
    for (std::int32_t t : tokenizer_.stop_ids())
      if (t >= 0 && t < V) is_stop[static_cast<std::size_t>(t)] = 1;
  for (std::int32_t t : o.stop_ids)
    if (t >= 0 && t < V) is_stop[static_cast<std::size_t>(t)] = 1;

  std::vector<Sequence> seqs;
  seqs.reserve(prompts.size());
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    seqs.push_back(Sequence{static_cast<std::int64_t>(i), Sampler(o.sampling, V, i),
                            TextStream(tokenizer_, o.stop_strings), Completion{}});
    seqs.back().sampler.add_context(prompts[i]);
  }

  auto event = [&](const Sequence& s, std::int32_t token, std::string_view text, bool finished) {
    if (o.on_token)
      o.on_token(TokenEvent{static_cast<int>(s.slot), token, text, finished, s.completion.reason});
  };
  auto finish = [&](Sequence& s, FinishReason reason) {
    s.running = false;
    s.completion.reason = reason;
    const std::string_view rest = s.text.finish();
    s.completion.text = s.text.text();
    event(s, -1, rest, true);
  };
  // A sampled token: streamed, then the sequence either ends or feeds it next.
  auto take = [&](Sequence& s, std::int32_t token) {
    s.completion.tokens.push_back(token);
    s.sampler.add_context(token);
    if (is_stop[static_cast<std::size_t>(token)]) {
      event(s, token, {}, false);
      return finish(s, FinishReason::Stop);
    }
    event(s, token, s.text.push(token), false);
    if (s.text.stopped()) return finish(s, FinishReason::StopString);
    if (static_cast<int>(s.completion.tokens.size()) >= o.max_new_tokens) return finish(s, FinishReason::Length);
    if (static_cast<std::int64_t>(slots_[static_cast<std::size_t>(s.slot)].tokens.size()) >= decoder_.context())
      return finish(s, FinishReason::Context);
    s.pending = token;
  };
  auto cancelled = [&] { return o.cancel && o.cancel->load(); };
  auto cancel_all = [&] {
    for (Sequence& s : seqs)
      if (s.running) finish(s, FinishReason::Cancelled);
  };

  // Prefill: every prompt's tokens not already in its slot, packed.
  tokens_.clear();
  row_slots_.clear();
  positions_.clear();
  logit_rows_.clear();
  std::vector<std::size_t> reuse(prompts.size());
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    const SlotState& slot = slots_[i];
    const std::vector<std::int32_t>& p = prompts[i];
    std::size_t r = 0;
    if (slot.adapter_id == adapter_id) {
      const std::size_t limit = std::min(slot.tokens.size(), p.size() - 1);  // the last token must run for its logits
      while (r < limit && slot.tokens[r] == p[r]) ++r;
    }
    reuse[i] = r;
    seqs[i].completion.prompt_tokens = static_cast<std::int64_t>(p.size());
    seqs[i].completion.reused_tokens = static_cast<std::int64_t>(r);
    for (std::size_t t = r; t < p.size(); ++t) {
      tokens_.push_back(p[t]);
      row_slots_.push_back(static_cast<std::int32_t>(i));
      positions_.push_back(static_cast<std::int32_t>(t));
    }
    logit_rows_.push_back(static_cast<std::int32_t>(tokens_.size() - 1));
  }
  if (cancelled()) {
    cancel_all();
  } else {
    const auto t0 = std::chrono::steady_clock::now();
    // The slots forget what they held until the prompts are in.
    for (std::size_t i = 0; i < prompts.size(); ++i) {
      slots_[i].tokens.resize(reuse[i]);
      slots_[i].adapter_id = adapter_id;
    }
    run_rows(o.adapter);
    for (std::size_t i = 0; i < prompts.size(); ++i) slots_[i].tokens = prompts[i];
    stats_.prefill_tokens = static_cast<std::int64_t>(tokens_.size());
    stats_.prefill_seconds = seconds_since(t0);
    for (std::size_t i = 0; i < seqs.size(); ++i)
      take(seqs[i], seqs[i].sampler.next(std::span(logits_).subspan(i * static_cast<std::size_t>(V), static_cast<std::size_t>(V))));
  }

  // Decode: one token per running sequence per step.
  const auto t1 = std::chrono::steady_clock::now();
  std::vector<Sequence*> running;
  running.reserve(seqs.size());
  for (;;) {
    running.clear();
    for (Sequence& s : seqs)
      if (s.running) running.push_back(&s);
    if (running.empty()) break;
    if (cancelled()) {
      cancel_all();
      break;
    }
    tokens_.clear();
    row_slots_.clear();
    positions_.clear();
    logit_rows_.clear();
    for (const Sequence* s : running) {
      logit_rows_.push_back(static_cast<std::int32_t>(tokens_.size()));
      tokens_.push_back(s->pending);
      row_slots_.push_back(static_cast<std::int32_t>(s->slot));
      positions_.push_back(static_cast<std::int32_t>(slots_[static_cast<std::size_t>(s->slot)].tokens.size()));
    }
    run_rows(o.adapter);
    stats_.decode_tokens += static_cast<std::int64_t>(running.size());
    for (std::size_t k = 0; k < running.size(); ++k) {
      Sequence& s = *running[k];
      slots_[static_cast<std::size_t>(s.slot)].tokens.push_back(s.pending);
      take(s, s.sampler.next(std::span(logits_).subspan(k * static_cast<std::size_t>(V), static_cast<std::size_t>(V))));
    }
  }
  stats_.decode_seconds = seconds_since(t1);

  std::vector<Completion> out;
  out.reserve(seqs.size());
  for (Sequence& s : seqs) out.push_back(std::move(s.completion));
  return out;
}

}  // namespace lwb::infer
