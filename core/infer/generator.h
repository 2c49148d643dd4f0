#pragma once
// Generation over a Decoder: prompts in, answers out, token by token.
//
// A batch of prompts of different lengths runs together, prompt i in cache
// slot i: the prefill packs every prompt's tokens into shared forward calls
// (chunks of the decoder's max_rows), then each decode step feeds one token
// per sequence still running. A sequence ends on a stop id (the tokenizer's
// eos and turn ends, plus any given), on a stop string, at max_new_tokens,
// when its slot's context is full, or on cancel; the others go on.
//
// The generator is also the conversation's memory: a slot keeps the tokens
// whose keys and values it holds. When the next prompt for that slot starts
// with them (the previous prompt and answer, then a new turn), only the new
// tokens run, at the positions that follow, so RoPE positions continue
// across turns; a prompt that diverges reuses the common start. A cache
// filled with one adapter is never reused for another.
//
// One generate call at a time (the decoder's buffers are shared); cancel may
// be set from any thread and is checked before every forward call.
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/data/tokenizer.h"
#include "core/infer/decoder.h"
#include "core/infer/sampler.h"

namespace lwb::infer {

class AdapterSet;

enum class FinishReason : std::uint8_t {
  Stop,        // a stop id (eos, the chat's turn end, or a given one)
  StopString,  // a stop string appeared in the text
  Length,      // max_new_tokens
  Context,     // the slot's context is full
  Cancelled,
};
const char* finish_reason_name(FinishReason r);  // "stop", "stop_string", "length", "context", "cancelled"

// One streamed step of one sequence: a token and the text it made final, or
// (token -1, finished) the end of the sequence with the rest of its text.
struct TokenEvent {
  int sequence = 0;
  std::int32_t token = -1;
  std::string_view text;  // valid UTF-8; valid only during the callback
  bool finished = false;
  FinishReason reason = FinishReason::Length;
};

struct GenerateOptions {
  SamplingConfig sampling;
  int max_new_tokens = 256;
  bool tokenizer_stops = true;             // stop on Tokenizer::stop_ids()
  std::vector<std::int32_t> stop_ids;      // more ids that end a sequence
  std::vector<std::string> stop_strings;   // end the text before any of these
  const AdapterSet* adapter = nullptr;     // nullptr: the base model
  const std::atomic<bool>* cancel = nullptr;
  std::function<void(const TokenEvent&)> on_token;
};

struct Completion {
  std::vector<std::int32_t> tokens;  // generated, the stop id included (as transformers returns it)
  std::string text;                  // decoded without special tokens, cut before a stop string
  FinishReason reason = FinishReason::Length;
  std::int64_t prompt_tokens = 0;
  std::int64_t reused_tokens = 0;    // of the prompt, found in the slot's cache
};

struct GenerateStats {
  std::int64_t prefill_tokens = 0, decode_tokens = 0;
  double prefill_seconds = 0, decode_seconds = 0;
};

class Generator {
 public:
  // `decoder` and `tokenizer` must outlive the generator; the tokenizer's
  // vocabulary must fit the model's.
  Generator(Decoder& decoder, const data::Tokenizer& tokenizer);

  Decoder& decoder() const { return decoder_; }
  const data::Tokenizer& tokenizer() const { return tokenizer_; }

  // Continues each prompt (token ids; prompt i in slot i). Errors, before
  // anything runs: DataError for no prompt, more prompts than slots, an
  // empty prompt or one longer than the context (naming the prompt and the
  // sizes); ConfigError for max_new_tokens <= 0, bad sampling values, an
  // empty stop string, an adapter of another decoder.
  std::vector<Completion> generate(std::span<const std::vector<std::int32_t>> prompts,
                                   const GenerateOptions& options);
  // Statistics of the last generate call.
  const GenerateStats& stats() const { return stats_; }
  // Forgets what every slot holds (the next prompts run whole).
  void reset();
  // The tokens slot `slot` holds in its cache.
  const std::vector<std::int32_t>& cached_tokens(std::int64_t slot) const { return slots_.at(slot).tokens; }

 private:
  struct SlotState {
    std::vector<std::int32_t> tokens;  // in the cache, positions 0..size()-1
    std::uint64_t adapter_id = 0;      // 0: the base
  };
  struct Sequence;

  void check(std::span<const std::vector<std::int32_t>> prompts, const GenerateOptions& options) const;
  // Runs rows_ in chunks of max_rows; the logits of the rows in logit_rows_
  // land in logits_ (one row of vocab floats per entry, in order).
  void run_rows(const AdapterSet* adapter);

  Decoder& decoder_;
  const data::Tokenizer& tokenizer_;
  std::vector<SlotState> slots_;
  GenerateStats stats_;
  // Per call, sized once: the rows of a forward call and the host logits.
  std::vector<std::int32_t> tokens_, row_slots_, positions_, logit_rows_, chunk_logit_rows_;
  std::vector<float> logits_;
};

}  // namespace lwb::infer
