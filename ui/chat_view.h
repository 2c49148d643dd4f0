#pragma once
// The Chat tab: a base model and up to three adapters or compositions from
// the library answer the same prompt side by side, each column streaming its
// answer with its tokens/s; a system prompt, the sampling settings, a
// multi-turn conversation per column, Stop, Clear, Copy per answer and the
// chat template's rendered text. A thin view over ChatWorker, which runs
// core/infer on its own thread; errors (an adapter of another base, a chat
// longer than the context) are shown here.
#include <QWidget>
#include <filesystem>
#include <vector>

#include "core/data/chat_template.h"
#include "ui/chat_worker.h"

class QCheckBox;
class QComboBox;
class QDoubleSpinBox;
class QHBoxLayout;
class QLabel;
class QLineEdit;
class QPlainTextEdit;
class QPushButton;
class QSpinBox;
class QTextEdit;

namespace lwb::ui {

class ChatView : public QWidget {
  Q_OBJECT
 public:
  static constexpr int kMaxAdapters = 3;

  explicit ChatView(std::filesystem::path db, QWidget* parent = nullptr);
  ~ChatView() override;

  // Reloads the library's adapters and compositions into the adapter choices.
  void refresh();
  // Sends the prompt box's text as the next turn; false when it cannot start
  // (a turn is running, or the prompt is empty).
  bool send();
  void stop();
  void clear();
  bool busy() const;

  // Selects a library adapter (or composition) by the name shown; false when
  // there is none of that name.
  bool choose_adapter(int slot, const QString& name);
  // The columns now: the base, then each chosen adapter.
  int columns() const { return static_cast<int>(columns_.size()); }
  QString column_title(int i) const;
  // The last answer of column i (what Copy copies) and everything it shows.
  QString answer(int i) const { return columns_.at(i).answer; }
  QString transcript(int i) const;
  QLabel* rate_label(int i) const { return columns_.at(i).rate; }
  QPushButton* copy_button(int i) const { return columns_.at(i).copy; }

  QComboBox* base_box() const { return base_; }
  QComboBox* adapter_box(int slot) const { return adapter_boxes_.at(slot); }
  QPlainTextEdit* prompt_edit() const { return prompt_; }
  QPlainTextEdit* system_edit() const { return system_; }
  QCheckBox* greedy_box() const { return greedy_; }
  QDoubleSpinBox* temperature_box() const { return temperature_; }
  QSpinBox* max_new_box() const { return max_new_; }
  QSpinBox* seed_box() const { return seed_; }
  QPushButton* send_button() const { return send_; }
  QPushButton* stop_button() const { return stop_; }
  QPushButton* clear_button() const { return clear_; }
  QPushButton* template_button() const { return show_template_; }
  QPlainTextEdit* template_view() const { return template_; }
  QLabel* status_label() const { return status_; }

 protected:
  void showEvent(QShowEvent* event) override;  // the library may have grown
  bool eventFilter(QObject* watched, QEvent* event) override;

 signals:
  // A turn ended (answered, stopped or failed); the view takes prompts again.
  void turn_finished();

 private:
  struct Column {
    QWidget* box = nullptr;
    QLabel* title = nullptr;
    QTextEdit* text = nullptr;
    QLabel* rate = nullptr;
    QPushButton* copy = nullptr;
    QString answer;                          // the last answer, streamed so far
    QString rendered;                        // the last prompt as the template rendered it
    std::vector<data::ChatMessage> history;  // user and assistant turns, this column's own
  };

  ChatModels models() const;
  // Rebuilds the columns for the chosen models (their conversations start over).
  void rebuild_columns();
  void update_controls();
  void show_error(const QString& message);
  void on_token(int column, const QString& text, qint64 tokens, double tokens_per_s);
  void on_answered(const ChatAnswer& a);
  void on_done();
  void update_template_view();

  std::filesystem::path db_;
  ChatWorker* worker_;
  QComboBox* base_;
  std::vector<QComboBox*> adapter_boxes_;
  QPlainTextEdit* system_;
  QCheckBox* greedy_;
  QDoubleSpinBox *temperature_, *top_p_, *min_p_, *repetition_;
  QSpinBox *top_k_, *seed_, *max_new_;
  QHBoxLayout* columns_layout_;
  std::vector<Column> columns_;
  QPlainTextEdit* prompt_;
  QPushButton *send_, *stop_, *clear_, *show_template_;
  QPlainTextEdit* template_;
  QLabel* status_;
  QString loaded_;        // what the session runs, for the status line
  QString pending_user_;  // the turn being answered
  bool failed_ = false;   // the running turn failed
};

}  // namespace lwb::ui
