#pragma once
// The Chat tab's engine on a background QThread (BackgroundWorker): the base
// model and each chosen adapter (or stored composition) loaded once, over one
// copy of the base, and kept between turns; a turn renders each column's
// conversation with the model's chat template and generates its answer,
// column after column, streaming every token back as a queued signal.
//
// Each column has its own Decoder and Generator (one cache slot), so a
// column's cache holds its own conversation: the next turn re-renders the
// whole chat and only the new tokens run, at the positions that follow
// (RoPE positions continue). Stop is the worker's cancel flag, set from the
// GUI thread; the generator checks it before every forward call, and the
// columns not started yet answer nothing.
#include <QMetaType>
#include <QString>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "core/data/chat_template.h"
#include "core/infer/sampler.h"
#include "ui/background_worker.h"

namespace lwb::ui {

// An adapter of the store's library, or a stored composition (composed with
// its stored weights when the session loads).
struct ChatAdapterChoice {
  bool composition = false;
  std::int64_t id = 0;
  std::string label;
  bool operator==(const ChatAdapterChoice&) const = default;
};

// What a chat session runs: a base as core/source names it (a preset, a GGUF
// file, a Hugging Face folder, a base checkpoint) and up to three adapters.
struct ChatModels {
  std::string base;
  std::vector<ChatAdapterChoice> adapters;
  bool operator==(const ChatModels&) const = default;
};

struct ChatRequest {
  ChatModels models;
  // Per column (the base, then each adapter): its conversation so far and
  // the new user turn, the system prompt first when there is one.
  std::vector<std::vector<data::ChatMessage>> messages;
  infer::SamplingConfig sampling;
  int max_new_tokens = 128;
};

// One column's finished answer.
struct ChatAnswer {
  int column = 0;
  QString text;
  QString reason;  // finish_reason_name: stop, length, context, cancelled, ...
  qint64 prompt_tokens = 0, reused_tokens = 0, new_tokens = 0;
  double prefill_tokens_per_s = 0, decode_tokens_per_s = 0;
};

class ChatWorker : public BackgroundWorker {
  Q_OBJECT
 public:
  explicit ChatWorker(std::filesystem::path db, QObject* parent = nullptr);
  ~ChatWorker() override;

  // Starts a turn (loading the models first when they changed); false, and
  // nothing started, while another turn runs.
  bool generate(ChatRequest request);

 signals:
  // The session was (re)loaded: one line on the base, its template and context.
  void loaded(QString description);
  // A column's prompt as the chat template rendered it, before it runs.
  void rendered(int column, QString text);
  // Text that became final in a column (may be empty), the tokens generated
  // so far and the decode rate since the first of them.
  void token(int column, QString text, qint64 tokens, double tokens_per_s);
  void answered(lwb::ui::ChatAnswer answer);
  void notice(QString line);

 private:
  struct Session;
  void open(const ChatModels& models);
  void run_turn(const ChatRequest& request);

  std::filesystem::path db_;
  std::unique_ptr<Session> session_;  // worker thread only
};

}  // namespace lwb::ui

Q_DECLARE_METATYPE(lwb::ui::ChatAnswer)
