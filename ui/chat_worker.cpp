#include "ui/chat_worker.h"

#include <algorithm>
#include <chrono>
#include <optional>

#include "core/common/errors.h"
#include "core/compose/library.h"
#include "core/cpu/cpu_share.h"
#include "core/compose/merge.h"
#include "core/infer/adapter_set.h"
#include "core/infer/decode_weights.h"
#include "core/infer/generator.h"
#include "core/source/model_source.h"
#include "core/store/store.h"

namespace lwb::ui {

namespace {

// Positions per column: the model's context, capped so that four columns'
// caches of a long-context model stay small (SmolLM2's 8192 would cost
// 0.4 GB each); a chat turn that outgrows it gets a clear message.
constexpr int kMaxContext = 2048;

AdapterState load_choice(Store& store, const ChatAdapterChoice& choice) {
  if (!choice.composition) return store.load_adapter(choice.id);
  const Composition c = store.load_composition(choice.id);
  std::vector<double> weights;
  for (const CompositionMember& m : c.members) weights.push_back(m.weight);
  compose::Composer composer(compose::load_members(store, c), compose::parse_merge_mode(c.mode));
  return composer.compose(weights);
}

}  // namespace

// Declared in the order they are built; released in reverse, each before
// what it points into.
struct ChatWorker::Session {
  struct Column {
    std::unique_ptr<infer::Decoder> decoder;
    std::unique_ptr<infer::AdapterSet> adapter;  // null: the base
    std::unique_ptr<infer::Generator> generator;
  };
  ChatModels models;
  LoadedBase base;
  std::unique_ptr<data::Tokenizer> tokenizer;
  std::optional<data::ChatTemplate> chat;
  MemoryLedger ledger;
  std::vector<Column> columns;
};

ChatWorker::ChatWorker(std::filesystem::path db, QObject* parent) : BackgroundWorker(parent), db_(std::move(db)) {
  qRegisterMetaType<lwb::ui::ChatAnswer>();
}

ChatWorker::~ChatWorker() { stop_and_wait(); }

bool ChatWorker::generate(ChatRequest request) {
  return start([this, request = std::move(request)] {
    if (!session_ || session_->models != request.models) open(request.models);
    run_turn(request);
  });
}

void ChatWorker::open(const ChatModels& models) {
  session_.reset();  // the old session's memory goes before the new one's comes
  auto s = std::make_unique<Session>();
  s->models = models;
  SourceEnvironment env;
  env.notice = [this](const std::string& m) { emit notice(QString::fromStdString(m)); };
  load_base(models.base, env, s->base);
  s->tokenizer = load_tokenizer(s->base.source);
  s->chat = load_chat_template(s->base.source, "auto", *s->tokenizer);
  const bool own_template = s->chat.has_value();
  if (!s->chat) s->chat = data::ChatTemplate::builtin("chatml");
  const int context = std::min(s->base.model->config().max_seq, kMaxContext);
  std::optional<Store> store;
  if (!models.adapters.empty()) store.emplace(db_);
  // The columns share the base's weights for decode steps (its GGUF blocks
  // when it came from a GGUF file, decode_weights.h).
  const auto small_batch = infer::DecodeWeights::make(*s->base.model, s->base.source.gguf.get(), s->ledger);
  for (std::size_t i = 0; i <= models.adapters.size(); ++i) {
    Session::Column c;
    c.decoder = std::make_unique<infer::Decoder>(*s->base.model, infer::DecoderLimits{1, context, 0}, s->ledger,
                                                 small_batch);
    if (i > 0) {
      const ChatAdapterChoice& choice = models.adapters[i - 1];
      c.adapter = std::make_unique<infer::AdapterSet>(*c.decoder, load_choice(*store, choice), choice.label,
                                                      s->base.fingerprint);
    }
    c.generator = std::make_unique<infer::Generator>(*c.decoder, *s->tokenizer);
    s->columns.push_back(std::move(c));
  }
  session_ = std::move(s);
  emit loaded(tr("%1; %2 chat template; context %3 tokens per column")
                  .arg(QString::fromStdString(session_->base.source.describe()))
                  .arg(own_template ? tr("the model's own") : tr("ChatML (the model has none)"))
                  .arg(context));
}

void ChatWorker::run_turn(const ChatRequest& request) {
  using Clock = std::chrono::steady_clock;
  Session& s = *session_;
  std::optional<CpuShare> share;  // the cores, divided with the other runs on them
  if (s.base.model->backend().device().kind == DeviceKind::Cpu) share.emplace().use_fair_share();
  data::ChatOptions chat_options;
  chat_options.add_generation_prompt = true;
  for (std::size_t i = 0; i < s.columns.size(); ++i) {
    const int column = static_cast<int>(i);
    if (cancel_) {  // stopped during an earlier column
      emit answered({.column = column, .reason = infer::finish_reason_name(infer::FinishReason::Cancelled)});
      continue;
    }
    Session::Column& c = s.columns[i];
    const std::string text = s.chat->render(request.messages.at(i), chat_options);
    emit rendered(column, QString::fromStdString(text));
    // As transformers tokenizes a rendered chat: the template wrote the specials.
    const std::vector<std::int32_t> prompt = s.tokenizer->encode(text, {.add_special = false, .parse_special = true});
    // The generator would refuse it too; here the message says what to do in a chat.
    if (static_cast<std::int64_t>(prompt.size()) > c.decoder->context())
      throw DataError("the chat (" + std::to_string(prompt.size()) + " tokens as the template renders it, system prompt "
                      "and earlier turns included) is longer than the context of " +
                      std::to_string(c.decoder->context()) + " tokens; Clear the conversation or shorten the prompt");
    infer::GenerateOptions options;
    options.sampling = request.sampling;
    options.max_new_tokens = request.max_new_tokens;
    options.adapter = c.adapter.get();
    options.cancel = &cancel_;
    qint64 tokens = 0;
    Clock::time_point first;
    options.on_token = [&](const infer::TokenEvent& e) {
      const Clock::time_point now = Clock::now();
      if (e.token >= 0 && tokens++ == 0) first = now;
      const double seconds = std::chrono::duration<double>(now - first).count();
      emit token(column, QString::fromUtf8(e.text.data(), static_cast<qsizetype>(e.text.size())), tokens,
                 tokens > 1 && seconds > 0 ? static_cast<double>(tokens - 1) / seconds : 0.0);
    };
    const infer::Completion done = c.generator->generate(std::vector<std::vector<std::int32_t>>{prompt}, options)[0];
    const infer::GenerateStats& st = c.generator->stats();
    emit answered({.column = column,
                   .text = QString::fromStdString(done.text),
                   .reason = infer::finish_reason_name(done.reason),
                   .prompt_tokens = done.prompt_tokens,
                   .reused_tokens = done.reused_tokens,
                   .new_tokens = static_cast<qint64>(done.tokens.size()),
                   .prefill_tokens_per_s = st.prefill_seconds > 0 ? st.prefill_tokens / st.prefill_seconds : 0.0,
                   .decode_tokens_per_s = st.decode_seconds > 0 ? st.decode_tokens / st.decode_seconds : 0.0});
  }
}

}  // namespace lwb::ui
