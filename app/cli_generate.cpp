// `generate`: a model answers a prompt or a chat, streamed to stdout, with
// the base alone or with each of several adapters (or compositions) in turn.
#include <unistd.h>

#include <cstdio>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "app/cli.h"
#include "app/cli_models.h"
#include "app/terminal_progress.h"
#include "core/common/errors.h"
#include "core/cpu/cpu_share.h"
#include "core/data/chat_messages.h"
#include "core/data/chat_template.h"
#include "core/infer/adapter_set.h"
#include "core/infer/decode_weights.h"
#include "core/infer/generator.h"

namespace lwb::cli {

namespace {

// ---- the prompt --------------------------------------------------------------------------

std::vector<std::int32_t> prompt_ids(const Args& args, GenerationBase& g) {
  if (args.has("prompt")) return g.tokenizer->encode(args.get("prompt"), {.add_special = true, .parse_special = false});
  std::vector<data::ChatMessage> messages;
  if (args.has("system")) messages.push_back({"system", args.get("system")});
  if (args.has("chat")) {
    messages.push_back({"user", args.get("chat")});
  } else {
    const std::string file = args.get("messages");
    std::vector<data::ChatMessage> read = data::read_chat_messages(file);
    if (read.empty()) throw FormatError(file, "holds no messages; expected at least one {\"role\", \"content\"}");
    for (data::ChatMessage& m : read) messages.push_back(std::move(m));
  }
  data::ChatOptions options;
  options.add_generation_prompt = true;
  const std::string text = g.chat->render(messages, options);
  // As transformers tokenizes a rendered chat: the template wrote the specials.
  return g.tokenizer->encode(text, {.add_special = false, .parse_special = true});
}

infer::SamplingConfig sampling(const Args& args) {
  infer::SamplingConfig s;
  const bool sample = args.has("temperature") || args.has("top-p") || args.has("top-k") || args.has("min-p") ||
                      args.has("seed");
  if (sample && args.has("greedy"))
    throw UsageError("--greedy picks the most likely token; it does not go with --temperature, --top-p, --top-k, "
                     "--min-p or --seed");
  s.greedy = !sample;
  s.temperature = number_arg(args, "temperature", 1.0);
  s.top_p = number_arg(args, "top-p", 1.0);
  s.top_k = int_arg(args, "top-k", 0);
  s.min_p = number_arg(args, "min-p", 0.0);
  s.repetition_penalty = number_arg(args, "repetition-penalty", 1.0);
  s.seed = static_cast<std::uint64_t>(int_arg(args, "seed", 0));
  s.validate();
  return s;
}

}  // namespace

int cmd_generate(const Args& args) {
  args.check({"model", "adapter", "prompt", "chat", "messages", "system", "max-new", "temperature", "top-p", "top-k",
              "min-p", "repetition-penalty", "seed", "stop", "context", "device", "db", "data-dir"},
             {"greedy", "merged"});
  if (!args.has("model")) throw UsageError("generate needs --model tiny|small|FILE.gguf|HF_FOLDER|CHECKPOINT");
  if (args.has("prompt") + args.has("chat") + args.has("messages") != 1)
    throw UsageError("give exactly one of --prompt TEXT, --chat TEXT or --messages FILE.json");
  if (args.has("system") && args.has("prompt"))
    throw UsageError("--system goes with --chat or --messages (a plain --prompt has no roles)");
  infer::GenerateOptions options;
  options.max_new_tokens = int_arg(args, "max-new", 256, 1, 1 << 20);
  options.sampling = sampling(args);
  options.stop_strings = args.all("stop");
  std::vector<NamedAdapter> adapters;
  for (const std::string& spec : args.all("adapter")) adapters.push_back(resolve_adapter(spec, args));
  if (args.has("merged") && adapters.size() != 1)
    throw UsageError("--merged folds one adapter into a copy of the base; give exactly one --adapter");

  GenerationBase g;
  load_generation_base(args.get("model"), args.get("device", "cpu"), environment(args), g);
  for (NamedAdapter& a : adapters) to_kept_form(a.state, *g.cpu.model, a.label);
  const ModelConfig& mc = g.model().config();
  const std::vector<std::int32_t> prompt = prompt_ids(args, g);
  const int context = int_arg(args, "context", std::min(mc.max_seq, 4096), 1, mc.max_seq);

  std::optional<CpuShare> share;  // the cores, divided with the other runs on them
  if (g.model().backend().device().kind == DeviceKind::Cpu) share.emplace().use_fair_share();
  install_stop_handler();
  options.cancel = &g_stop;
  const bool tty = isatty(fileno(stdout));
  options.on_token = [&](const infer::TokenEvent& e) {
    const std::string text = tty ? terminal_text(e.text, true) : std::string(e.text);
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
  };
  // Base alone, or each adapter in turn over the same base.
  const std::size_t runs = adapters.empty() ? 1 : adapters.size();
  // Decode steps read the base's GGUF blocks when it came from a GGUF file,
  // read once for every run (a merged copy has other weights: its own fp32).
  const auto small_batch =
      args.has("merged") ? nullptr : infer::DecodeWeights::make(g.model(), g.cpu.source.gguf.get(), g.cpu.ledger);
  for (std::size_t i = 0; i < runs; ++i) {
    MemoryLedger ledger;
    std::unique_ptr<Model> merged;
    if (args.has("merged")) merged = infer::merged_model(g.model(), adapters[i].state, ledger);
    infer::Decoder decoder(merged ? *merged : g.model(), infer::DecoderLimits{1, context, 0}, ledger, small_batch);
    std::optional<infer::AdapterSet> set;
    if (!adapters.empty() && !merged) set.emplace(decoder, adapters[i].state, adapters[i].label, g.cpu.fingerprint);
    options.adapter = set ? &*set : nullptr;
    infer::Generator gen(decoder, *g.tokenizer);
    if (runs > 1) std::printf("%s== %s ==\n", i ? "\n" : "", terminal_text(adapters[i].label).c_str());
    std::fflush(stdout);
    const infer::Completion c = gen.generate(std::vector<std::vector<std::int32_t>>{prompt}, options)[0];
    std::printf("\n");
    const infer::GenerateStats& st = gen.stats();
    std::fprintf(stderr, "[%s: %lld prompt + %zu new tokens, ended by %s; prefill %.1f tokens/s, decode %.1f tokens/s on %s]\n",
                 adapters.empty() ? "base" : terminal_text(adapters[i].label).c_str(),
                 static_cast<long long>(c.prompt_tokens), c.tokens.size(), infer::finish_reason_name(c.reason),
                 st.prefill_seconds > 0 ? st.prefill_tokens / st.prefill_seconds : 0.0,
                 st.decode_seconds > 0 ? st.decode_tokens / st.decode_seconds : 0.0,
                 decoder.backend().name().c_str());
    if (c.reason == infer::FinishReason::Cancelled) return 130;
  }
  return 0;
}

}  // namespace lwb::cli
