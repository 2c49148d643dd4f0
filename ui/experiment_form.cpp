#include "ui/experiment_form.h"

#include <QCheckBox>
#include <QComboBox>
#include <QFileDialog>
#include <QFormLayout>
#include <QFrame>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QRegularExpression>
#include <QResizeEvent>
#include <QScrollBar>
#include <QStackedWidget>
#include <QFutureWatcher>
#include <QPointer>
#include <QProgressBar>
#include <QPushButton>
#include <QScrollArea>
#include <QSpinBox>
#include <QTextBrowser>
#include <QVBoxLayout>
#include <QtConcurrent>
#include <algorithm>
#include <climits>

#include "core/adapters/descriptor.h"
#include "core/common/errors.h"
#include "core/common/paths.h"
#include "core/data/tasks.h"
#include "core/plan/planner.h"
#include "core/model/config.h"
#include "core/backend/backend_registry.h"
#include "core/source/downloads.h"
#include "core/train/data_setup.h"
#include "ui/data_preview_view.h"
#include "ui/memory_view.h"
#include "ui/target_picker.h"

namespace lwb::ui {

namespace {
enum Group { kModel, kData, kMethod, kOptim, kTrain, kSamples, kGroups };
static_assert(kGroups == ExperimentForm::kSections);

QString qs(const std::string& s) { return QString::fromStdString(s); }

// The form's column at most this wide (no field wider than about 700 px),
// the side column at least this, and wide enough for the data preview from
// this on.
constexpr int kColumnMaxWidth = 860;
constexpr int kSideMinWidth = 340;
constexpr int kSidePreviewWidth = 520;

// The frame around a field: by its name only, so the editor inside keeps
// its native look (a border on a spin box itself loses its arrows).
const char* kOutline = "#field_frame { border: 1px solid #d62728; border-radius: 3px; }";
const char* kNoOutline = "#field_frame { border: 1px solid transparent; border-radius: 3px; }";

// What makes the model's source (and its tokenizer and template).
std::string model_key(const ExperimentConfig& c) {
  return c.model.preset + "\n" + c.model.base + "\n" + c.model.tokenizer + "\n" + c.model.chat_template;
}

// The field a failure to read the model belongs to.
std::string model_field(const ExperimentConfig& c, const std::exception& e) {
  if (const auto* ce = dynamic_cast<const ConfigError*>(&e)) return ce->field();
  return c.model.base == "pretrained" || c.model.base == "random" ? "model.preset" : "model.base";
}

// A background preview's result.
struct PreviewResult {
  std::string key, config_json;
  std::shared_ptr<const DataSetup> setup;
  std::string setup_field, setup_error;
  QString html;
  std::string data_error;
};

PreviewResult make_preview(ExperimentConfig c, std::shared_ptr<const DataSetup> cached, std::string cached_key) {
  PreviewResult r;
  r.key = model_key(c);
  r.config_json = c.to_json();
  try {
    r.setup = cached && cached_key == r.key
                  ? cached
                  : std::make_shared<const DataSetup>(make_data_setup(c, user_data_dir()));
  } catch (const std::exception& e) {
    r.setup_field = model_field(c, e);
    r.setup_error = e.what();
    return r;
  }
  if (c.data.kind != "task" && c.data.path.empty()) return r;
  try {
    r.html = data_preview_html(preview_experiment_data(c, *r.setup, 3), *r.setup->tokenizer);
  } catch (const std::exception& e) {
    r.data_error = e.what();
  }
  return r;
}

}  // namespace

ExperimentForm::ExperimentForm(QWidget* parent) : QWidget(parent) {
  const char* titles[kGroups] = {"Model", "Data", "Method", "Optimizer and schedule", "Training",
                                 "Samples during training"};
  // One column of sections, read top to bottom.
  auto* column = new QVBoxLayout;
  sections_ = new QListWidget;
  sections_->setObjectName("form_sections");
  for (int g = 0; g < kGroups; ++g) {
    boxes_[g] = new QGroupBox(tr(titles[g]));
    forms_[g] = new QFormLayout(boxes_[g]);
    forms_[g]->setFieldGrowthPolicy(QFormLayout::AllNonFixedFieldsGrow);
    column->addWidget(boxes_[g]);
    sections_->addItem(tr(titles[g]));
  }

  add_line(forms_[kModel], "name", tr("Experiment name"),
           tr("The run's name in the Runs table, the store and the names of exported files"));
  {
    // The model picker, and beside it the button that downloads the known real models.
    auto* fetch_box = new QWidget;
    auto* fetch_row = new QHBoxLayout(fetch_box);
    fetch_row->setContentsMargins(0, 0, 0, 0);
    fetch_ = new QPushButton;
    fetch_->setObjectName("fetch_model");
    fetch_progress_ = new QProgressBar;
    fetch_progress_->setMaximumWidth(120);
    fetch_progress_->setVisible(false);
    fetch_row->addWidget(fetch_);
    fetch_row->addWidget(fetch_progress_);
    add_combo(forms_[kModel], "model.preset", tr("Base model"),
              tr("The model's architecture and weights: a built-in preset (its base is pretrained on first use) or "
                 "a downloaded real model (Fetch); when Weights is a path, that file's shape is used instead"),
              {}, false, fetch_box);
    presets_ = qobject_cast<QComboBox*>(editor("model.preset"));
    connect(fetch_, &QPushButton::clicked, this, &ExperimentForm::fetch_clicked);
    refresh_presets();
  }
  add_combo(forms_[kModel], "model.base", tr("Weights"),
            tr("\"pretrained\": the preset's weights (built-in bases are made on first use); \"random\": a fresh "
               "initialisation; or the path of a Hugging Face folder, a .gguf file or a checkpoint "
               "(.safetensors), whose shape, tokenizer and chat template are then the model's"),
            {"pretrained", "random"}, true);
  add_combo(forms_[kModel], "model.tokenizer", tr("Tokenizer"),
            tr("\"auto\": the model's own; or the path of a Hugging Face folder, tokenizer.json or .gguf file"),
            {"auto", "byte"}, true);
  add_combo(forms_[kModel], "model.chat_template", tr("Chat template"),
            tr("How chat rows become text: \"auto\": the model's own (none when it has none); chatml; or the path "
               "of a .jinja file"),
            {"auto", "none", "chatml"}, true);
  QStringList fp32_only;
  for (const VariantDescriptor* v : variants())
    if (v->is_adapter && !v->caps.bf16_base) fp32_only << qs(v->title);
  add_combo(forms_[kModel], "model.frozen_dtype", tr("Frozen weights"),
            tr("bf16 halves the frozen projections' memory (adapters stay fp32, as in PEFT); not with %1, which "
               "need an fp32 base (full fine-tuning has no frozen weights)")
                .arg(fp32_only.join(", ")),
            {"fp32", "bf16"});

  add_combo(forms_[kData], "data.kind", tr("Data"),
            tr("task: a built-in generated task with one right answer per example, scored by exact match; jsonl: "
               "instruction or chat rows from a file; text: a plain text file, every token trained on"),
            {"task", "jsonl", "text"});
  add_combo(forms_[kData], "data.task", tr("Task"),
            tr("The built-in task; its held-out examples are never trained on, so their exact match measures what "
               "was learnt"),
            [] {
              QStringList l;
              for (const auto& t : data::builtin_tasks()) l << qs(t.name);
              return l;
            }());
  add_line(forms_[kData], "data.path", tr("File"),
           tr("A JSONL file (alpaca, messages, conversations, prompt/completion or text rows) or a plain text file"));
  {
    auto* browse = new QPushButton(tr("Browse..."));
    forms_[kData]->addRow(QString(), browse);
    rows_["data.browse"] = {forms_[kData], browse};
    connect(browse, &QPushButton::clicked, this, [this] {
      const QString f = QFileDialog::getOpenFileName(this, tr("Training data"), {}, tr("Data (*.jsonl *.txt);;All (*)"));
      if (!f.isEmpty()) set_field("data.path", f);
    });
  }
  add_combo(forms_[kData], "data.format", tr("Format"),
            tr("How the JSONL rows are read; auto recognises alpaca (instruction, input, output), messages, "
               "conversations (ShareGPT), prompt/completion and text rows"),
            {"auto", "alpaca", "messages", "conversations", "prompt-completion", "text"});
  add_line(forms_[kData], "data.prompt_field", tr("Prompt field"),
           tr("The key of the prompt in each prompt/completion row"));
  add_line(forms_[kData], "data.completion_field", tr("Completion field"),
           tr("The key of the completion in each prompt/completion row"));
  add_combo(forms_[kData], "data.loss_on", tr("Loss on"),
            tr("assistant: the completion or the assistant's turns (the prompt is context only); all: every token"),
            {"assistant", "all"});
  add_combo(forms_[kData], "data.overlong", tr("Longer than the sequence"),
            tr("Examples longer than the sequence length: left out of training, or cut at the end"),
            {"drop", "truncate"});
  add_int(forms_[kData], "data.n_train", tr("Train examples"), tr("How many training examples the task generates"),
          1, 1000000);
  add_int(forms_[kData], "data.n_heldout", tr("Held-out examples"),
          tr("How many held-out (test) examples the task generates, apart from the training ones"), 1, 100000);
  add_int(forms_[kData], "data.n_validation", tr("Validation examples (0: none)"),
          tr("A validation split apart from train and test, for choosing settings (such as a learning rate) "
             "without looking at the test split: generated for tasks, carved out of the training rows for files"),
          0, 100000);
  preview_ = new QTextBrowser;
  preview_->setObjectName("data_preview");
  preview_->setMinimumHeight(160);
  preview_->setToolTip(tr("The first examples as the run reads them: tokens, and in colour those the loss is on"));
  preview_label_ = new QLabel(tr("Preview"));
  forms_[kData]->addRow(preview_label_, preview_);

  // Every adapter setting, with its label and help, from the variants'
  // descriptors: the shared ones in the Method section, each variant's own
  // on its page of a stack under them, headed by what the variant does.
  method_pages_ = new QStackedWidget;
  method_pages_->setObjectName("method_pages");
  std::vector<QFormLayout*> pages;
  for (const VariantDescriptor* v : variants()) {
    auto* page = new QWidget;
    auto* form = new QFormLayout(page);
    form->setContentsMargins(0, 0, 0, 0);
    form->setFieldGrowthPolicy(QFormLayout::AllNonFixedFieldsGrow);
    auto* about = new QLabel(QString("<b>%1</b>: %2").arg(qs(v->title), qs(v->description).toHtmlEscaped()));
    about->setWordWrap(true);
    about->setStyleSheet("color: palette(placeholder-text);");
    form->addRow(about);
    method_pages_->addWidget(page);
    pages.push_back(form);
  }
  const auto page_of = [&](const std::string& key) {
    for (std::size_t i = 0; i < variants().size(); ++i)
      for (const VariantOption& o : variants()[i]->options)
        if ("adapter." + o.key == key) return pages[i];
    return forms_[kMethod];
  };
  for (const AdapterField& f : adapter_fields()) {
    QFormLayout* form = page_of(f.key);
    const QString label = tr(f.label.c_str()), tip = tr(f.help.c_str());
    switch (f.kind) {
      case FieldKind::Int:
        add_int(form, f.key, label, tip, 0, static_cast<int>(std::min<std::int64_t>(f.max, INT_MAX)));
        break;
      case FieldKind::Float: add_line(form, f.key, label, tip); break;
      case FieldKind::Bool: add_check(form, f.key, label, tip); break;
      case FieldKind::Choice: {
        QStringList items;
        for (const std::string& c : f.choices) items << qs(c);
        add_combo(form, f.key, label, tip, items);
        break;
      }
      case FieldKind::Targets: add_targets(form, f.key, label, tip); break;
    }
  }
  forms_[kMethod]->addRow(method_pages_);

  add_line(forms_[kOptim], "optimizer.lr", tr("Learning rate"),
           tr("AdamW's peak learning rate, reached after the warm-up; adapters usually take 1e-4 to 1e-3, full "
              "fine-tuning about ten times less"));
  add_line(forms_[kOptim], "optimizer.weight_decay", tr("Weight decay"),
           tr("AdamW's decoupled weight decay on the trained parameters (0: off)"));
  add_line(forms_[kOptim], "optimizer.grad_clip", tr("Gradient clip (norm)"),
           tr("The gradient is scaled down to this global L2 norm before each step when above it (0: off)"));
  add_line(forms_[kOptim], "optimizer.beta1", tr("beta1"),
           tr("AdamW's decay of the gradient's running mean (first moment); 0.9 is usual"));
  add_line(forms_[kOptim], "optimizer.beta2", tr("beta2"),
           tr("AdamW's decay of the squared gradient's running mean (second moment); 0.999 is usual, 0.95 "
              "steadier on long runs"));
  add_line(forms_[kOptim], "optimizer.eps", tr("eps"),
           tr("Added to AdamW's denominator; larger values damp the updates of parameters with tiny gradients"));
  add_combo(forms_[kOptim], "schedule.kind", tr("Schedule"),
            tr("After the warm-up, cosine: the learning rate falls along a half cosine to the final ratio; "
               "constant: it stays at its peak"),
            {"cosine", "constant"});
  add_int(forms_[kOptim], "schedule.warmup_steps", tr("Warm-up steps"),
          tr("Steps over which the learning rate climbs linearly from 0 to its peak; steadies the first updates"),
          0, 100000000);
  add_line(forms_[kOptim], "schedule.min_lr_ratio", tr("Final LR ratio"),
           tr("The cosine's last learning rate as a fraction of the peak (0: down to zero)"));

  add_int(forms_[kTrain], "train.steps", tr("Steps"), tr("Optimizer steps, each on one batch of Batch examples"), 0, 100000000);
  add_int(forms_[kTrain], "train.batch", tr("Batch"),
          tr("Examples per step; activation memory grows with batch × sequence length"), 0, 4096);
  add_int(forms_[kTrain], "train.seq_len", tr("Sequence length"),
          tr("Tokens per example, at most the model's context; longer examples are dropped or cut (Data)"), 0,
          1000000);
  add_int(forms_[kTrain], "train.seed", tr("Seed"),
          tr("Seeds the initialisation, the batch order and dropout: the same seed and settings repeat a run"), 0,
          2000000000);
  add_int(forms_[kTrain], "train.eval_every", tr("Evaluate every (steps)"),
          tr("Steps between evaluations on the held-out examples (loss and exact match on the plot); 0: only at "
             "the end"),
          0, 100000000);
  add_int(forms_[kTrain], "train.eval_examples", tr("Held-out examples per eval"),
          tr("Examples scored at each evaluation: more gives a steadier curve and slower evaluations"), 0, 1000000);
  add_combo(forms_[kTrain], "train.eval_split", tr("Evaluate on"),
            tr("test: the held-out split; validation: the validation examples, so a run used to choose settings "
               "never looks at the test split"),
            {"test", "validation"});
  add_int(forms_[kTrain], "train.state_every_steps", tr("Save resumable state every (steps, 0: never)"),
          tr("The adapter, optimizer moments and data position are saved this often, so a killed run resumes "
             "from its last save"),
          0, 100000000);
  add_line(forms_[kTrain], "train.state_every_minutes", tr("... and every (minutes, 0: never)"),
           tr("Also saves the resumable state this often in wall time, whichever comes first"));
  add_line(forms_[kTrain], "train.divergence_factor", tr("Diverged at a loss this many times the start's (0: off)"),
           tr("Ends the run as diverged when the loss averaged over 10 steps exceeds this multiple of the first "
              "10 steps' loss; a non-finite loss always ends it"));
  add_int(forms_[kTrain], "train.collapse_steps", tr("Collapsed after this many zero-gradient steps (0: off)"),
          tr("Ends the run as diverged after this many steps in a row with a zero gradient norm (nothing learns)"),
          0, 1000000);
  add_combo(forms_[kTrain], "train.device", tr("Device"),
            tr("cpu; auto: the first CUDA GPU when there is one, else the CPU; or cuda:N"), {"cpu", "auto", "cuda:0"},
            true);

  // Samples during training (core/train/training_samples.h).
  boxes_[kSamples]->setObjectName("samples_group");
  add_int(forms_[kSamples], "train.samples", tr("Prompts (0: off)"),
          tr("How many of the held-out split's first prompts the model answers while it trains; "
             "the answers show in the Monitor's Samples tab and stay with the run"),
          0, kMaxTrainingSamples);
  add_int(forms_[kSamples], "train.sample_every", tr("Every (steps)"),
          tr("Answer the prompts every this many steps, and at the last step"), 1, 100000000);
  add_int(forms_[kSamples], "train.sample_max_new", tr("Max new tokens"),
          tr("The longest answer, in tokens; generation also ends at the end-of-sequence token"), 1, 4096);
  add_check(forms_[kSamples], "train.sample_greedy", tr("Greedy"),
            tr("Greedy decoding (the likeliest token each time); off: sampled with the run's seed"));

  facts_ = new QLabel;
  facts_->setWordWrap(true);
  memory_ = new QLabel;
  memory_->setWordWrap(true);
  memory_->setTextFormat(Qt::RichText);
  problems_label_ = new QLabel;
  problems_label_->setObjectName("form_problems");
  problems_label_->setWordWrap(true);
  problems_label_->setTextFormat(Qt::RichText);
  problems_label_->setStyleSheet("color: #d62728;");
  connect(problems_label_, &QLabel::linkActivated, this, [this](const QString& key) { show_field(key.toStdString()); });
  column->addStretch(1);

  auto* inner = new QWidget;
  inner->setLayout(column);
  scroll_ = new QScrollArea;
  scroll_->setWidget(inner);
  scroll_->setWidgetResizable(true);
  // The jump list follows the scrolling: the current section is the last one
  // whose top has been scrolled past.
  connect(sections_, &QListWidget::itemClicked, this, [this](QListWidgetItem* item) {
    const int g = sections_->row(item);
    scroll_->verticalScrollBar()->setValue(boxes_[g]->y());
    sections_->setCurrentRow(g);  // the last sections may not reach the top
  });
  connect(scroll_->verticalScrollBar(), &QScrollBar::valueChanged, this, [this](int y) {
    int current = 0;
    for (int g = 0; g < kGroups; ++g)
      if (boxes_[g]->y() <= y + 8) current = g;
    const QSignalBlocker block(sections_);
    sections_->setCurrentRow(current);
  });
  sections_->setCurrentRow(0);
  sections_->setFixedWidth(sections_->sizeHintForColumn(0) + 2 * sections_->frameWidth() + 12);

  // The column stops growing where its fields would be wider than anything
  // typed into them; the side column takes the rest of a wide window, and
  // there the data preview (place_preview).
  scroll_->setMaximumWidth(kColumnMaxWidth);
  side_ = new QVBoxLayout;
  side_->addWidget(facts_);
  side_->addWidget(memory_);
  side_->addWidget(problems_label_);
  side_preview_title_ = new QLabel(tr("<b>Data preview</b>"));
  side_preview_title_->setVisible(false);
  side_->addWidget(side_preview_title_);
  side_->addStretch(1);
  auto* side_box = new QWidget;
  side_box->setObjectName("form_side");
  side_box->setLayout(side_);
  side_box->setMinimumWidth(kSideMinWidth);
  auto* layout = new QHBoxLayout(this);
  layout->setContentsMargins(0, 0, 0, 0);
  layout->addWidget(sections_);
  layout->addWidget(scroll_, 3);
  layout->addWidget(side_box, 1);

  set_config(experiment_preset("demo"));
}

void ExperimentForm::resizeEvent(QResizeEvent* event) {
  QWidget::resizeEvent(event);
  place_preview(width() >= sections_->width() + kColumnMaxWidth + kSidePreviewWidth);
}

void ExperimentForm::place_preview(bool beside) {
  if (beside == preview_beside_) return;
  preview_beside_ = beside;
  // The spacer at the side's end gives way to the preview beside the column.
  const int spacer = side_->count() - 1;
  if (beside) {
    const QFormLayout::TakeRowResult row = forms_[kData]->takeRow(preview_);
    delete row.labelItem;
    delete row.fieldItem;
    preview_label_->setVisible(false);
    side_->insertWidget(spacer, preview_, 1);
    side_->setStretch(spacer + 1, 0);
  } else {
    side_->removeWidget(preview_);
    side_->setStretch(spacer - 1, 1);
    preview_label_->setVisible(true);
    forms_[kData]->addRow(preview_label_, preview_);
  }
  side_preview_title_->setVisible(beside);
  preview_->setVisible(true);  // a widget that changes parent is hidden until shown
}

void ExperimentForm::add_row(QFormLayout* form, const std::string& key, const QString& label, const QString& tip,
                             QWidget* editor, std::function<QString()> read, std::function<void(const QString&)> write,
                             QWidget* beside) {
  // The frame keeps its (transparent) border when the field is fine, so
  // outlining it moves nothing, and the editor itself keeps its native look.
  auto* frame = new QFrame;
  frame->setObjectName("field_frame");
  frame->setStyleSheet(kNoOutline);
  auto* h = new QHBoxLayout(frame);
  h->setContentsMargins(2, 2, 2, 2);
  h->addWidget(editor, 1);
  QWidget* row = frame;
  if (beside) {
    row = new QWidget;
    auto* r = new QHBoxLayout(row);
    r->setContentsMargins(0, 0, 0, 0);
    r->addWidget(frame, 1);
    r->addWidget(beside);
  }
  form->addRow(label, row);
  editor->setProperty("help", tip);
  if (QWidget* l = form->labelForField(row)) l->setToolTip(tip);
  rows_[key] = {form, row};
  bindings_.push_back({key, label, editor, frame, std::move(read), std::move(write)});
}

void ExperimentForm::add_line(QFormLayout* form, const std::string& key, const QString& label, const QString& tip) {
  auto* e = new QLineEdit;
  add_row(form, key, label, tip, e, [e] { return e->text(); }, [e](const QString& v) { e->setText(v); });
  connect(e, &QLineEdit::textEdited, this, [this, key](const QString& v) { edited(key, v); });
}

void ExperimentForm::add_int(QFormLayout* form, const std::string& key, const QString& label, const QString& tip,
                             int lo, int hi) {
  auto* s = new QSpinBox;
  s->setRange(lo, hi);
  add_row(form, key, label, tip, s, [s] { return QString::number(s->value()); },
          [s](const QString& v) { s->setValue(v.toInt()); });
  connect(s, QOverload<int>::of(&QSpinBox::valueChanged), this,
          [this, key](int v) { edited(key, QString::number(v)); });
}

void ExperimentForm::add_combo(QFormLayout* form, const std::string& key, const QString& label, const QString& tip,
                               const QStringList& items, bool editable, QWidget* beside) {
  auto* c = new QComboBox;
  c->addItems(items);
  c->setEditable(editable);
  add_row(
      form, key, label, tip, c, [c] { return c->currentText(); },
      [c](const QString& v) {
        if (c->findText(v) < 0) c->addItem(v);
        c->setCurrentText(v);
      },
      beside);
  connect(c, &QComboBox::currentTextChanged, this, [this, key](const QString& v) { edited(key, v); });
}

void ExperimentForm::add_check(QFormLayout* form, const std::string& key, const QString& label, const QString& tip) {
  auto* b = new QCheckBox;
  add_row(form, key, label, tip, b, [b] { return QString(b->isChecked() ? "true" : "false"); },
          [b](const QString& v) { b->setChecked(v == "true"); });
  connect(b, &QCheckBox::toggled, this, [this, key](bool on) { edited(key, on ? "true" : "false"); });
}

void ExperimentForm::add_targets(QFormLayout* form, const std::string& key, const QString& label, const QString& tip) {
  targets_ = new TargetPicker;
  auto read = [this] {
    QStringList on;
    for (Target t : targets_->targets()) on << qs(target_short_name(t));
    return on.join(',');
  };
  auto write = [this](const QString& v) {
    const QStringList on = v.split(',', Qt::SkipEmptyParts);
    std::vector<Target> targets;
    for (Target t : kAllTargets)
      if (on.contains(qs(target_short_name(t)))) targets.push_back(t);
    targets_->set_targets(targets);
  };
  add_row(form, key, label, tip, targets_, read, write);
  connect(targets_, &TargetPicker::changed, this, [this, key, read] { edited(key, read()); });
}

const ExperimentForm::Binding* ExperimentForm::binding(const std::string& key) const {
  for (const Binding& b : bindings_)
    if (b.key == key) return &b;
  return nullptr;
}

QWidget* ExperimentForm::editor(const std::string& key) const {
  const Binding* b = binding(key);
  return b ? b->widget : nullptr;
}

QString ExperimentForm::label(const std::string& key) const {
  const Binding* b = binding(key);
  return b ? b->label : qs(key);
}

QString ExperimentForm::problem_text(const std::string& field) const {
  const auto it = problems_.find(field);
  if (it == problems_.end()) return {};
  // The engine's messages start with their key and may name others
  // ("train.steps - adapter.adalora.tfinal"): each becomes its label, the
  // longest keys first so that none is read as part of another.
  std::string text = it->second;
  if (text.starts_with(field + ": ")) text.erase(0, field.size() + 2);
  QString out = qs(text);
  std::vector<const Binding*> by_length;
  for (const Binding& b : bindings_) by_length.push_back(&b);
  std::sort(by_length.begin(), by_length.end(),
            [](const Binding* a, const Binding* b) { return a->key.size() > b->key.size(); });
  for (const Binding* b : by_length)
    out.replace(QRegularExpression("(?<![\\w.])" + QRegularExpression::escape(qs(b->key)) + "(?![\\w]|\\.\\w)"),
                "“" + b->label + "”");
  return label(field) + ": " + out;
}

void ExperimentForm::show_field(const std::string& key) {
  const Binding* b = binding(key);
  if (!b) return;
  scroll_->ensureWidgetVisible(b->frame);
  for (int g = 0; g < kGroups; ++g)
    if (boxes_[g]->isAncestorOf(b->frame)) sections_->setCurrentRow(g);
  b->widget->setFocus(Qt::OtherFocusReason);
}

void ExperimentForm::set_field(const std::string& key, const QString& value) {
  if (const Binding* b = binding(key)) {
    // Writing the editor emits its change signal, which edits the config;
    // shortcuts like "all" are expanded by the config and written back.
    b->write(value);
    edited(key, value);
  }
}

void ExperimentForm::set_config(const ExperimentConfig& config) {
  config_ = config;
  parse_errors_.clear();
  loading_ = true;
  for (const Binding& b : bindings_) b.write(qs(config_.get(b.key)));
  loading_ = false;
  refresh();
}

void ExperimentForm::edited(const std::string& key, const QString& value) {
  if (loading_) return;
  try {
    config_.set(key, value.trimmed().toStdString());
    parse_errors_.erase(key);
    if (key.starts_with("adapter.")) {
      // Normalised by the engine: shortcuts expanded, a method's name sets
      // what it implies ("rslora": use_rslora) and a setting can rename it.
      loading_ = true;
      for (const Binding& b : bindings_)
        if (b.key != key && b.key.starts_with("adapter.")) b.write(qs(config_.get(b.key)));
      loading_ = false;
    }
  } catch (const ConfigError& e) {
    parse_errors_[key] = e.what();
  }
  refresh();
}

void ExperimentForm::refresh() {
  problems_.clear();
  for (const auto& [field, message] : config_.problems()) problems_.emplace(field, message);
  // What the background found reading the model and the data, while it still applies.
  if (setup_key_ == model_key(config_) && !setup_error_.empty()) problems_.emplace(setup_field_, setup_error_);
  if (previewed_config_ == config_.to_json() && !data_error_.empty())
    problems_.emplace(config_.data.kind == "task" ? "data.task" : "data.path", data_error_);
  for (const auto& [field, message] : parse_errors_) problems_[field] = message;
  QStringList lines;
  for (const Binding& b : bindings_) {
    const bool bad = problems_.count(b.key) > 0;
    const QString sheet = bad ? kOutline : kNoOutline;
    if (b.frame->styleSheet() != sheet) b.frame->setStyleSheet(sheet);
    b.frame->setProperty("problem", bad);
    const QString help = b.widget->property("help").toString();
    b.widget->setToolTip(bad ? problem_text(b.key) + "\n\n" + help : help);
  }
  // Each problem links to its field.
  for (const auto& [field, message] : problems_)
    lines << QString("<a href=\"%1\" style=\"color:#d62728\">%2</a>")
                 .arg(qs(field).toHtmlEscaped(), problem_text(field).toHtmlEscaped());
  problems_label_->setText(lines.join("<br>"));

  // Facts derived from the engine's own counts.
  try {
    const ModelConfig* model = model_config();
    if (!model) throw ConfigError("model", "not read yet");
    const ModelConfig& mc = *model;
    const std::int64_t total = mc.param_count();
    const std::int64_t trainable = config_.adapter.trainable_params(mc);
    facts_->setText(tr("<b>%1</b> trainable of %2 parameters (%3%)")
                        .arg(QLocale().toString(static_cast<qlonglong>(trainable)))
                        .arg(QLocale().toString(static_cast<qlonglong>(total)))
                        .arg(100.0 * static_cast<double>(trainable) / static_cast<double>(total), 0, 'f', 3));
  } catch (const Error&) {
    facts_->setText(tr("trainable parameters: choose a valid model and method"));
  }
  update_visibility();
  start_preview();
  update_memory_estimate();
  emit config_changed();
}

const ModelConfig* ExperimentForm::model_config() const {
  if (setup_ && setup_key_ == model_key(config_)) return &setup_->source.config;
  const auto builtin = model_preset_names();
  if ((config_.model.base != "pretrained" && config_.model.base != "random") ||
      std::find(builtin.begin(), builtin.end(), config_.model.preset) == builtin.end())
    return nullptr;
  const_cast<ExperimentForm*>(this)->builtin_config_ = model_preset(config_.model.preset);
  return &builtin_config_;
}

void ExperimentForm::start_preview() {
  const std::string json = config_.to_json();
  if (preview_running_) {
    preview_again_ = json != running_config_;
    return;
  }
  if (json == previewed_config_) return;
  preview_running_ = true;
  preview_again_ = false;
  running_config_ = json;
  auto* watcher = new QFutureWatcher<PreviewResult>(this);
  connect(watcher, &QFutureWatcher<PreviewResult>::finished, this, [this, watcher] {
    PreviewResult r = watcher->result();
    watcher->deleteLater();
    preview_running_ = false;
    setup_key_ = r.key;
    setup_ = r.setup;
    setup_field_ = r.setup_field;
    setup_error_ = r.setup_error;
    previewed_config_ = r.config_json;
    data_error_ = r.data_error;
    if (!r.setup_error.empty())
      preview_->setHtml("<span style='color:#d62728'>" + qs(r.setup_error).toHtmlEscaped() + "</span>");
    else if (!r.data_error.empty())
      preview_->setHtml("<span style='color:#d62728'>" + qs(r.data_error).toHtmlEscaped() + "</span>");
    else
      preview_->setHtml(r.html);
    refresh();  // starts the next preview when the config changed meanwhile
    if (!preview_running_) emit preview_ready();
  });
  watcher->setFuture(QtConcurrent::run(make_preview, config_, setup_, setup_key_));
}

void ExperimentForm::refresh_presets() {
  const std::filesystem::path data = user_data_dir();
  const QString current = presets_->currentText();
  QStringList names;
  for (const std::string& n : available_model_presets(data)) names << qs(n);
  const bool was = loading_;
  loading_ = true;
  presets_->clear();
  presets_->addItems(names);
  if (!current.isEmpty()) {
    if (presets_->findText(current) < 0) presets_->addItem(current);
    presets_->setCurrentText(current);
  }
  loading_ = was;
  const DownloadableModel& m = downloadable_models().front();
  const bool have = names.contains(qs(m.preset));
  fetch_->setText(have ? tr("%1 downloaded").arg(qs(m.preset)) : tr("Fetch %1...").arg(qs(m.preset)));
  fetch_->setEnabled(!have);
  fetch_->setToolTip(qs(m.description) + tr("; kept in %1").arg(qs((data / "models").string())));
}

void ExperimentForm::fetch_clicked() {
  if (fetch_cancel_) {  // fetching: the button cancels
    fetch_cancel_->store(true);
    return;
  }
  const DownloadableModel m = downloadable_models().front();
  fetch_cancel_ = std::make_shared<std::atomic<bool>>(false);
  fetch_->setText(tr("Cancel"));
  fetch_progress_->setVisible(true);
  fetch_progress_->setRange(0, 0);
  QPointer<ExperimentForm> self(this);
  auto cancel = fetch_cancel_;
  // The fetched file's path, or why there is none.
  using Outcome = std::pair<QString, QString>;
  auto* watcher = new QFutureWatcher<Outcome>(this);
  connect(watcher, &QFutureWatcher<Outcome>::finished, this, [this, watcher, m] {
    const auto [path, error] = watcher->result();
    watcher->deleteLater();
    fetch_cancel_.reset();
    fetch_progress_->setVisible(false);
    refresh_presets();
    if (error.isEmpty()) {
      set_field("model.preset", qs(m.preset));
      set_field("model.base", "pretrained");
    } else {
      fetch_->setToolTip(error);
      problems_label_->setText(error);
    }
    emit fetch_finished(path, error);
  });
  watcher->setFuture(QtConcurrent::run([self, cancel, m]() -> Outcome {
    FetchOptions o;
    o.cancel = cancel.get();
    o.progress = [self](const FetchProgress& p) {
      QMetaObject::invokeMethod(
          self, [self, p] {
            if (!self) return;
            self->fetch_progress_->setRange(0, p.total > 0 ? 1000 : 0);
            if (p.total > 0) self->fetch_progress_->setValue(static_cast<int>(1000.0 * p.done / p.total));
            self->fetch_progress_->setToolTip(QString::fromStdString(p.stage));
          },
          Qt::QueuedConnection);
    };
    try {
      return {QString::fromStdString(fetch_model(m, user_data_dir(), o).string()), QString()};
    } catch (const std::exception& e) {
      return {QString(), QString::fromStdString(e.what())};
    }
  }));
}

void ExperimentForm::update_memory_estimate() {
  // The workbench profile: this engine's own buffers, as the run will make them.
  MemoryPlan plan;
  try {
    PlanInput in;
    const ModelConfig* model = model_config();
    if (!model) throw ConfigError("model", "reading the model...");
    in.model = *model;
    in.adapter = config_.adapter;
    in.batch = config_.train.batch;
    in.seq = config_.train.seq_len;
    const bool bf16_frozen = config_.model.frozen_dtype == "bf16" && config_.adapter.is_adapter();
    in.precision = parse_plan_precision(bf16_frozen ? "bf16-frozen" : "fp32");
    in.optimizer = default_optimizer_states(in.precision);
    in.threads = default_plan_threads();
    plan = plan_memory(in);
  } catch (const std::exception& e) {
    memory_->setText(tr("Memory estimate: %1").arg(qs(e.what()).toHtmlEscaped()));
    return;
  }
  if (config_.train.device != probed_device_) {
    probed_device_ = config_.train.device;
    try {
      const auto backend = make_backend(probed_device_);
      device_free_ = backend->device_free_bytes();
      device_label_ = qs(backend->name());
    } catch (const std::exception& e) {
      device_free_ = 0;
      device_label_ = qs(e.what());
    }
  }
  const auto gb = [](std::size_t b) { return format_bytes(static_cast<double>(b)); };  // binary units, as every view
  QString html = tr("<b>Estimated memory: %1</b> (planner, this engine's buffers)<table>").arg(gb(plan.total));
  for (int c = 0; c < kMemCategoryCount; ++c)
    html += QString("<tr><td>%1</td><td align='right'>&nbsp;%2</td></tr>")
                .arg(mem_category_html(static_cast<MemCategory>(c)), gb(plan.totals[c]));
  html += "</table>";
  if (device_free_ == 0)
    html += tr("Free memory of %1 unknown: %2").arg(qs(probed_device_), device_label_.toHtmlEscaped());
  else if (plan.total > device_free_)
    html += tr("<span style='color:#d62728'><b>Exceeds the free memory of %1: needs %2, %3 free.</b></span>")
                .arg(device_label_.toHtmlEscaped(), gb(plan.total), gb(device_free_));
  else
    html += tr("%1 free on %2.").arg(gb(device_free_), device_label_.toHtmlEscaped());
  memory_->setText(html);
}

void ExperimentForm::update_visibility() {
  const std::string kind = config_.data.kind;
  auto show = [this](const std::string& key, bool on) {
    const auto it = rows_.find(key);
    if (it != rows_.end()) it->second.first->setRowVisible(it->second.second, on);
  };
  show("data.task", kind == "task");
  show("data.n_train", kind == "task");
  show("data.n_heldout", kind == "task");
  show("data.path", kind != "task");
  show("data.browse", kind != "task");
  // The field names apply to prompt/completion rows only.
  const bool fields = kind == "jsonl" && (config_.data.format == "auto" || config_.data.format == "prompt-completion");
  show("data.prompt_field", fields);
  show("data.completion_field", fields);
  show("data.format", kind == "jsonl");
  show("data.loss_on", kind == "jsonl");
  show("data.overlong", kind == "jsonl");
  // What depends on the method is enabled or disabled, never hidden, and its
  // own options are on its page: switching the method moves nothing.
  auto enable = [this](const std::string& key, bool on) {
    const auto it = rows_.find(key);
    if (it == rows_.end()) return;
    it->second.second->setEnabled(on);
    if (QWidget* l = it->second.first->labelForField(it->second.second)) l->setEnabled(on);
  };
  const VariantDescriptor* method = nullptr;
  try {
    method = &config_.adapter.variant();
  } catch (const Error&) {
  }
  enable("model.frozen_dtype", method && method->is_adapter);
  for (const AdapterField& f : adapter_fields()) enable(f.key, f.applies(config_.adapter));
  for (std::size_t i = 0; i < variants().size(); ++i)
    if (variants()[i] == method) method_pages_->setCurrentIndex(static_cast<int>(i));
}

}  // namespace lwb::ui
