#include "ui/chat_view.h"

#include <QApplication>
#include <QCheckBox>
#include <QClipboard>
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QFileDialog>
#include <QFormLayout>
#include <QFrame>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QScrollBar>
#include <QKeyEvent>
#include <QSpinBox>
#include <QTextEdit>
#include <QVBoxLayout>

#include "core/source/downloads.h"
#include "core/source/model_source.h"
#include "core/store/store.h"

namespace lwb::ui {

namespace {

QDoubleSpinBox* number_box(double lo, double hi, double value, double step, int decimals) {
  auto* b = new QDoubleSpinBox;
  b->setRange(lo, hi);
  b->setDecimals(decimals);
  b->setSingleStep(step);
  b->setValue(value);
  return b;
}

QSpinBox* int_box(int lo, int hi, int value) {
  auto* b = new QSpinBox;
  b->setRange(lo, hi);
  b->setValue(value);
  return b;
}

// Appends to a transcript in the given style and keeps its end in view.
void append(QTextEdit* edit, const QString& text, bool user_turn) {
  QTextCharFormat f;
  if (user_turn) {
    f.setFontWeight(QFont::Bold);
    f.setForeground(QColor(0x1f, 0x4e, 0x8c));
  }
  QTextCursor c(edit->document());
  c.movePosition(QTextCursor::End);
  c.insertText(text, f);
  edit->verticalScrollBar()->setValue(edit->verticalScrollBar()->maximum());
}

}  // namespace

ChatView::ChatView(std::filesystem::path db, QWidget* parent)
    : QWidget(parent), db_(std::move(db)), worker_(new ChatWorker(db_, this)) {
  // The models: a base as core/source names it, and adapters from the library.
  base_ = new QComboBox;
  base_->setEditable(true);
  for (const std::string& p : available_model_presets(SourceEnvironment{}.data_folder()))
    base_->addItem(QString::fromStdString(p));
  base_->setMinimumContentsLength(14);
  base_->setToolTip(tr("A model preset, or the path of a GGUF file, a Hugging Face folder or a base checkpoint"));
  auto* browse = new QPushButton(tr("Browse…"));
  connect(browse, &QPushButton::clicked, this, [this] {
    const QString f = QFileDialog::getOpenFileName(this, tr("Base model"), {},
                                                   tr("Models (*.gguf *.safetensors);;All files (*)"));
    if (!f.isEmpty()) base_->setEditText(f);
  });
  auto* models_row = new QHBoxLayout;
  models_row->addWidget(new QLabel(tr("Base")));
  models_row->addWidget(base_);
  models_row->addWidget(browse);
  models_row->addSpacing(12);
  for (int i = 0; i < kMaxAdapters; ++i) {
    auto* box = new QComboBox;
    box->setMinimumContentsLength(16);
    box->setSizeAdjustPolicy(QComboBox::AdjustToMinimumContentsLengthWithIcon);
    models_row->addWidget(new QLabel(tr("Adapter %1").arg(i + 1)));
    models_row->addWidget(box, 1);
    adapter_boxes_.push_back(box);
    connect(box, &QComboBox::currentIndexChanged, this, &ChatView::rebuild_columns);
  }
  connect(base_, &QComboBox::currentTextChanged, this, &ChatView::rebuild_columns);

  // The settings beside the columns.
  system_ = new QPlainTextEdit;
  system_->setPlaceholderText(tr("Optional: how the assistant should behave"));
  system_->setMaximumHeight(90);
  greedy_ = new QCheckBox(tr("Greedy (most likely token)"));
  greedy_->setChecked(true);
  temperature_ = number_box(0.01, 5, 0.7, 0.05, 2);
  top_p_ = number_box(0.01, 1, 0.95, 0.01, 2);
  top_k_ = int_box(0, 100000, 40);
  min_p_ = number_box(0, 0.99, 0, 0.01, 2);
  repetition_ = number_box(0.5, 3, 1, 0.05, 2);
  seed_ = int_box(0, 2147483647, 0);
  max_new_ = int_box(1, 8192, 128);
  top_k_->setSpecialValueText(tr("off"));
  min_p_->setSpecialValueText(tr("off"));
  auto* sampling = new QFormLayout;
  sampling->addRow(greedy_);
  sampling->addRow(tr("Temperature"), temperature_);
  sampling->addRow(tr("Top-p"), top_p_);
  sampling->addRow(tr("Top-k"), top_k_);
  sampling->addRow(tr("Min-p"), min_p_);
  sampling->addRow(tr("Seed"), seed_);
  sampling->addRow(tr("Repetition penalty"), repetition_);
  sampling->addRow(tr("Max new tokens"), max_new_);
  connect(greedy_, &QCheckBox::toggled, this, &ChatView::update_controls);
  auto* system_group = new QGroupBox(tr("System prompt"));
  (new QVBoxLayout(system_group))->addWidget(system_);
  auto* sampling_group = new QGroupBox(tr("Sampling"));
  sampling_group->setLayout(sampling);
  auto* side = new QVBoxLayout;
  side->addWidget(system_group);
  side->addWidget(sampling_group);
  side->addStretch(1);
  auto* side_panel = new QWidget;
  side_panel->setLayout(side);
  side_panel->setFixedWidth(270);

  // The answers, one column per model, and the rendered template below them.
  columns_layout_ = new QHBoxLayout;
  template_ = new QPlainTextEdit;
  template_->setReadOnly(true);
  template_->setMaximumHeight(180);
  template_->setVisible(false);
  template_->setPlaceholderText(tr("Each column's prompt as the chat template renders it appears here after a turn."));
  auto* answers = new QVBoxLayout;
  answers->addLayout(columns_layout_, 1);
  answers->addWidget(template_);
  auto* middle = new QHBoxLayout;
  middle->addLayout(answers, 1);
  middle->addWidget(side_panel);

  // The prompt and the turn's buttons.
  prompt_ = new QPlainTextEdit;
  prompt_->setPlaceholderText(tr("Ask something (Ctrl+Enter sends)"));
  prompt_->setFixedHeight(70);
  send_ = new QPushButton(tr("Send"));
  stop_ = new QPushButton(tr("Stop"));
  clear_ = new QPushButton(tr("Clear"));
  show_template_ = new QPushButton(tr("Show template"));
  show_template_->setCheckable(true);
  send_->setDefault(true);
  connect(send_, &QPushButton::clicked, this, &ChatView::send);
  connect(stop_, &QPushButton::clicked, this, &ChatView::stop);
  connect(clear_, &QPushButton::clicked, this, &ChatView::clear);
  connect(show_template_, &QPushButton::toggled, template_, &QWidget::setVisible);
  prompt_->installEventFilter(this);  // Ctrl+Enter sends
  auto* buttons = new QGridLayout;
  buttons->addWidget(send_, 0, 0);
  buttons->addWidget(stop_, 0, 1);
  buttons->addWidget(clear_, 1, 0);
  buttons->addWidget(show_template_, 1, 1);
  auto* prompt_row = new QHBoxLayout;
  prompt_row->addWidget(prompt_, 1);
  prompt_row->addLayout(buttons);
  status_ = new QLabel;
  status_->setWordWrap(true);
  status_->setTextInteractionFlags(Qt::TextSelectableByMouse);

  auto* layout = new QVBoxLayout(this);
  layout->addLayout(models_row);
  layout->addLayout(middle, 1);
  layout->addLayout(prompt_row);
  layout->addWidget(status_);

  connect(worker_, &ChatWorker::loaded, this, [this](const QString& d) {
    loaded_ = tr("Loaded: %1").arg(d);
    status_->setText(tr("%1. Generating…").arg(loaded_));
  });
  connect(worker_, &ChatWorker::notice, this, [this](const QString& line) { status_->setText(line); });
  connect(worker_, &ChatWorker::rendered, this, [this](int column, const QString& text) {
    columns_.at(column).rendered = text;
    update_template_view();
  });
  connect(worker_, &ChatWorker::token, this, &ChatView::on_token);
  connect(worker_, &ChatWorker::answered, this, &ChatView::on_answered);
  connect(worker_, &ChatWorker::failed, this, &ChatView::show_error);
  connect(worker_, &ChatWorker::done, this, &ChatView::on_done);
  refresh();
  rebuild_columns();
}

// The worker goes first: a turn still running is cancelled and joined while
// the columns it streams into are still here.
ChatView::~ChatView() { delete worker_; }

void ChatView::showEvent(QShowEvent* event) {
  QWidget::showEvent(event);
  refresh();
}

bool ChatView::eventFilter(QObject* watched, QEvent* event) {
  if (watched == prompt_ && event->type() == QEvent::KeyPress) {
    const auto* key = static_cast<QKeyEvent*>(event);
    if ((key->key() == Qt::Key_Return || key->key() == Qt::Key_Enter) && key->modifiers() & Qt::ControlModifier) {
      send();
      return true;
    }
  }
  return QWidget::eventFilter(watched, event);
}

bool ChatView::busy() const { return worker_->busy(); }

void ChatView::refresh() {
  std::vector<AdapterRow> adapters;
  std::vector<CompositionRow> compositions;
  try {
    Store store(db_);
    adapters = store.list_adapters();
    compositions = store.list_compositions();
  } catch (const std::exception& e) {
    show_error(tr("Cannot read the adapter library: %1").arg(QString::fromUtf8(e.what())));
    return;
  }
  const ChatModels before = models();
  for (QComboBox* box : adapter_boxes_) {
    const QString chosen = box->currentData().toString();
    QSignalBlocker block(box);
    box->clear();
    box->addItem(tr("(none)"), QString());
    for (const AdapterRow& a : adapters) {
      box->addItem(QString::fromStdString(a.name), QString("a:%1").arg(a.id));
      box->setItemData(box->count() - 1,
                       tr("%1 rank %2 on %3, task %4").arg(QString::fromStdString(a.variant)).arg(a.rank)
                           .arg(QString::fromStdString(a.base_model), QString::fromStdString(a.task)),
                       Qt::ToolTipRole);
    }
    for (const CompositionRow& c : compositions)
      box->addItem(tr("%1 (composition)").arg(QString::fromStdString(c.name)), QString("c:%1").arg(c.id));
    box->setCurrentIndex(std::max(0, box->findData(chosen)));
  }
  if (models() != before) rebuild_columns();  // a chosen adapter left the library
}

bool ChatView::choose_adapter(int slot, const QString& name) {
  QComboBox* box = adapter_boxes_.at(slot);
  const int i = box->findText(name);
  if (i < 0) return false;
  box->setCurrentIndex(i);
  return true;
}

ChatModels ChatView::models() const {
  ChatModels m;
  m.base = base_->currentText().trimmed().toStdString();
  for (QComboBox* box : adapter_boxes_) {
    const QString data = box->currentData().toString();
    if (data.isEmpty()) continue;
    m.adapters.push_back({data.startsWith("c:"), data.mid(2).toLongLong(), box->currentText().toStdString()});
  }
  return m;
}

QString ChatView::column_title(int i) const { return columns_.at(i).title->text(); }

QString ChatView::transcript(int i) const { return columns_.at(i).text->toPlainText(); }

void ChatView::rebuild_columns() {
  for (Column& c : columns_) delete c.box;
  columns_.clear();
  const ChatModels m = models();
  std::vector<QString> titles{tr("Base: %1").arg(QString::fromStdString(m.base))};
  for (const ChatAdapterChoice& a : m.adapters) titles.push_back(QString::fromStdString(a.label));
  for (const QString& title : titles) {
    Column c;
    auto* frame = new QFrame;
    frame->setFrameShape(QFrame::StyledPanel);
    c.box = frame;
    c.title = new QLabel(title);
    c.title->setStyleSheet("font-weight: bold");
    c.title->setToolTip(title);
    c.title->setMinimumWidth(1);  // long names are cut rather than widening the column
    c.text = new QTextEdit;
    c.text->setReadOnly(true);
    c.rate = new QLabel(tr("no answer yet"));
    c.rate->setMinimumWidth(1);
    c.rate->setMinimumHeight(2 * c.rate->fontMetrics().lineSpacing());  // the count, then why it ended
    c.rate->setWordWrap(true);
    c.copy = new QPushButton(tr("Copy"));
    c.copy->setToolTip(tr("Copy this column's last answer"));
    const int index = static_cast<int>(columns_.size());
    connect(c.copy, &QPushButton::clicked, this,
            [this, index] { QApplication::clipboard()->setText(columns_.at(index).answer); });
    auto* foot = new QHBoxLayout;
    foot->addWidget(c.rate, 1);
    foot->addWidget(c.copy);
    auto* v = new QVBoxLayout(frame);
    v->addWidget(c.title);
    v->addWidget(c.text, 1);
    v->addLayout(foot);
    columns_layout_->addWidget(frame, 1);
    columns_.push_back(std::move(c));
  }
  update_template_view();
  update_controls();
}

void ChatView::update_controls() {
  const bool running = busy();
  send_->setEnabled(!running);
  stop_->setEnabled(running);
  clear_->setEnabled(!running);
  base_->setEnabled(!running);
  for (QComboBox* box : adapter_boxes_) box->setEnabled(!running);
  for (QWidget* w : std::initializer_list<QWidget*>{temperature_, top_p_, top_k_, min_p_, seed_})
    w->setEnabled(!greedy_->isChecked());
  for (const Column& c : columns_) c.copy->setEnabled(!c.answer.isEmpty());
}

void ChatView::show_error(const QString& message) {
  failed_ = busy();
  status_->setStyleSheet("color: #b00020");
  status_->setText(message);
}

bool ChatView::send() {
  const QString user = prompt_->toPlainText().trimmed();
  if (busy() || user.isEmpty()) return false;
  ChatRequest r;
  r.models = models();
  if (r.models.base.empty()) {
    show_error(tr("Choose a base model first."));
    return false;
  }
  const std::string system = system_->toPlainText().trimmed().toStdString();
  for (Column& c : columns_) {
    std::vector<data::ChatMessage> messages;
    if (!system.empty()) messages.push_back({"system", system});
    messages.insert(messages.end(), c.history.begin(), c.history.end());
    messages.push_back({"user", user.toStdString()});
    r.messages.push_back(std::move(messages));
    c.answer.clear();
    append(c.text, (c.history.empty() ? QString() : QStringLiteral("\n\n")) + tr("You: %1").arg(user) + "\n\n", true);
    c.rate->setText(tr("waiting…"));
  }
  r.sampling.greedy = greedy_->isChecked();
  r.sampling.temperature = temperature_->value();
  r.sampling.top_p = top_p_->value();
  r.sampling.top_k = top_k_->value();
  r.sampling.min_p = min_p_->value();
  r.sampling.repetition_penalty = repetition_->value();
  r.sampling.seed = static_cast<std::uint64_t>(seed_->value());
  r.max_new_tokens = max_new_->value();
  pending_user_ = user;
  failed_ = false;
  status_->setStyleSheet({});
  status_->setText(tr("Generating…"));
  worker_->generate(std::move(r));
  prompt_->clear();
  update_controls();
  return true;
}

void ChatView::stop() {
  if (!busy()) return;
  worker_->cancel();
  status_->setText(tr("Stopping…"));
}

void ChatView::clear() {
  if (busy()) return;
  for (Column& c : columns_) {
    c.history.clear();
    c.answer.clear();
    c.rendered.clear();
    c.text->clear();
    c.rate->setText(tr("no answer yet"));
  }
  status_->setStyleSheet({});
  status_->clear();
  update_template_view();
  update_controls();
}

void ChatView::on_token(int column, const QString& text, qint64 tokens, double tokens_per_s) {
  Column& c = columns_.at(column);
  c.answer += text;
  if (!text.isEmpty()) append(c.text, text, false);
  c.rate->setText(tokens_per_s > 0 ? tr("%1 tokens · %2 tokens/s").arg(tokens).arg(tokens_per_s, 0, 'f', 1)
                                   : tr("%1 tokens").arg(tokens));
}

namespace {

// Why an answer ended, in the view's words (finish_reason_name's names).
QString ending(const QString& reason) {
  if (reason == "stop") return ChatView::tr("end of answer");
  if (reason == "stop_string") return ChatView::tr("stop string");
  if (reason == "length") return ChatView::tr("max new tokens");
  if (reason == "context") return ChatView::tr("context full");
  if (reason == "cancelled") return ChatView::tr("stopped");
  return reason;
}

}  // namespace

void ChatView::on_answered(const ChatAnswer& a) {
  Column& c = columns_.at(a.column);
  c.answer = a.text;
  c.history.push_back({"user", pending_user_.toStdString()});
  c.history.push_back({"assistant", a.text.toStdString()});
  if (a.new_tokens == 0) append(c.text, QString("(%1)").arg(ending(a.reason)), false);
  c.rate->setText(tr("%1 tokens · %2 tokens/s\nended: %3")
                      .arg(a.new_tokens)
                      .arg(a.decode_tokens_per_s, 0, 'f', 1)
                      .arg(ending(a.reason)));
  c.rate->setToolTip(tr("Prompt %1 tokens (%2 reused from the cache), prefill %3 tokens/s; decode %4 tokens/s; "
                        "ended by %5")
                         .arg(a.prompt_tokens)
                         .arg(a.reused_tokens)
                         .arg(a.prefill_tokens_per_s, 0, 'f', 1)
                         .arg(a.decode_tokens_per_s, 0, 'f', 1)
                         .arg(ending(a.reason)));
}

void ChatView::on_done() {
  if (!failed_) status_->setText(loaded_);
  // A turn that failed gives its prompt back, to send again after the fix.
  if (failed_ && prompt_->toPlainText().isEmpty()) prompt_->setPlainText(pending_user_);
  for (Column& c : columns_)
    if (c.rate->text() == tr("waiting…")) c.rate->setText(tr("no answer"));
  pending_user_.clear();
  update_controls();
  emit turn_finished();
}

void ChatView::update_template_view() {
  // Columns whose prompts render alike (a first turn) are shown once.
  QString text;
  std::vector<bool> shown(columns_.size(), false);
  for (std::size_t i = 0; i < columns_.size(); ++i) {
    if (shown[i] || columns_[i].rendered.isEmpty()) continue;
    QStringList titles;
    for (std::size_t j = i; j < columns_.size(); ++j)
      if (columns_[j].rendered == columns_[i].rendered) {
        shown[j] = true;
        titles << columns_[j].title->text();
      }
    text += QString("── %1 ──\n%2\n").arg(titles.join(", "), columns_[i].rendered);
  }
  template_->setPlainText(text);
}

}  // namespace lwb::ui
