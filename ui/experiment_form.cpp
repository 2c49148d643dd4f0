#include "ui/experiment_form.h"

#include <QCheckBox>
#include <QComboBox>
#include <QFile>
#include <QFileDialog>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QScrollArea>
#include <QSpinBox>
#include <QTextStream>
#include <QVBoxLayout>

#include "core/common/errors.h"
#include "core/data/tasks.h"
#include "core/plan/planner.h"
#include "core/model/config.h"
#include "core/backend/backend_registry.h"
#include "ui/memory_view.h"
#include "ui/target_picker.h"

namespace lwb::ui {

namespace {
enum Group { kModel, kData, kMethod, kOptim, kTrain };

QString qs(const std::string& s) { return QString::fromStdString(s); }

const char* kOutline = "border: 1px solid #d62728;";
}  // namespace

ExperimentForm::ExperimentForm(QWidget* parent) : QWidget(parent) {
  const char* titles[] = {"Model", "Data", "Method", "Optimizer and schedule", "Training"};
  auto* columns = new QHBoxLayout;
  auto* left = new QVBoxLayout, *right = new QVBoxLayout;
  for (int g = 0; g < 5; ++g) {
    auto* box = new QGroupBox(tr(titles[g]));
    forms_[g] = new QFormLayout(box);
    forms_[g]->setFieldGrowthPolicy(QFormLayout::AllNonFixedFieldsGrow);
    (g == kMethod || g == kOptim ? right : left)->addWidget(box);
    if (g == kMethod) method_box_ = box;
  }

  add_line(forms_[kModel], "name", tr("Experiment name"));
  add_combo(forms_[kModel], "model.preset", tr("Base model"), [] {
    QStringList l;
    for (const auto& n : model_preset_names()) l << qs(n);
    return l;
  }());
  add_combo(forms_[kModel], "model.base", tr("Weights"), {"pretrained", "random"}, true);
  editor("model.base")->setProperty(
      "help", tr("\"pretrained\": the preset's built-in base (made on first use); \"random\": a fresh "
                 "initialisation; or the path of a checkpoint (.safetensors or a Hugging Face folder)"));
  add_combo(forms_[kModel], "model.frozen_dtype", tr("Frozen weights"), {"fp32", "bf16"});
  editor("model.frozen_dtype")->setProperty(
      "help", tr("bf16 halves the frozen projections' memory (adapters stay fp32, as in PEFT); "
                 "not with ReLoRA, whose resets merge into the base"));

  add_combo(forms_[kData], "data.kind", tr("Data"), {"task", "jsonl", "text"});
  add_combo(forms_[kData], "data.task", tr("Task"), [] {
    QStringList l;
    for (const auto& t : data::builtin_tasks()) l << qs(t.name);
    return l;
  }());
  add_line(forms_[kData], "data.path", tr("File"), tr("A JSONL file of prompt/completion rows or a plain text file"));
  {
    auto* browse = new QPushButton(tr("Browse..."));
    forms_[kData]->addRow(QString(), browse);
    rows_["data.browse"] = {forms_[kData], browse};
    connect(browse, &QPushButton::clicked, this, [this] {
      const QString f = QFileDialog::getOpenFileName(this, tr("Training data"), {}, tr("Data (*.jsonl *.txt);;All (*)"));
      if (!f.isEmpty()) set_field("data.path", f);
    });
  }
  add_line(forms_[kData], "data.prompt_field", tr("Prompt field"));
  add_line(forms_[kData], "data.completion_field", tr("Completion field"));
  add_int(forms_[kData], "data.n_train", tr("Train examples"), 1, 1000000);
  add_int(forms_[kData], "data.n_heldout", tr("Held-out examples"), 1, 100000);
  add_int(forms_[kData], "data.n_validation", tr("Validation examples (0: none)"), 0, 100000);
  preview_ = new QPlainTextEdit;
  preview_->setReadOnly(true);
  preview_->setMaximumHeight(110);
  preview_->setFont(QFont("monospace", 8));
  forms_[kData]->addRow(tr("Preview"), preview_);

  add_combo(forms_[kMethod], "adapter.method", tr("Method"), {"full", "lora", "rslora", "dora", "adalora", "relora"});
  add_int(forms_[kMethod], "adapter.r", tr("Rank r"), 0, 4096);
  add_line(forms_[kMethod], "adapter.alpha", tr("Alpha"));
  add_line(forms_[kMethod], "adapter.dropout", tr("Dropout"));
  add_combo(forms_[kMethod], "adapter.init", tr("Init of A"), {"kaiming", "gaussian"});
  forms_[kMethod]->addRow(tr("Targets"), targets_editor());
  rows_["adapter.targets"] = {forms_[kMethod], targets_};
  add_check(forms_[kMethod], "adapter.dora.norm_grad", tr("Gradient through the norm"));
  add_int(forms_[kMethod], "adapter.adalora.target_r", tr("Target rank"), 0, 4096);
  add_int(forms_[kMethod], "adapter.adalora.tinit", tr("tinit (steps)"), 0, 100000000);
  add_int(forms_[kMethod], "adapter.adalora.tfinal", tr("tfinal (steps)"), 0, 100000000);
  add_int(forms_[kMethod], "adapter.adalora.delta_t", tr("deltaT"), 0, 1000000);
  add_line(forms_[kMethod], "adapter.adalora.beta1", tr("beta1 (sensitivity)"));
  add_line(forms_[kMethod], "adapter.adalora.beta2", tr("beta2 (uncertainty)"));
  add_line(forms_[kMethod], "adapter.adalora.orth_reg_weight", tr("Orthogonal reg. weight"));
  add_int(forms_[kMethod], "adapter.relora.reset_every", tr("Reset every (steps)"), 0, 100000000);
  add_int(forms_[kMethod], "adapter.relora.restart_warmup", tr("Re-warm-up (steps)"), 0, 100000000);
  add_line(forms_[kMethod], "adapter.relora.prune_ratio", tr("Moment pruning ratio"));
  add_check(forms_[kMethod], "adapter.relora.prune_independently", tr("Prune moments independently (authors')"));

  add_line(forms_[kOptim], "optimizer.lr", tr("Learning rate"));
  add_line(forms_[kOptim], "optimizer.weight_decay", tr("Weight decay"));
  add_line(forms_[kOptim], "optimizer.grad_clip", tr("Gradient clip (norm)"));
  add_line(forms_[kOptim], "optimizer.beta1", tr("beta1"));
  add_line(forms_[kOptim], "optimizer.beta2", tr("beta2"));
  add_line(forms_[kOptim], "optimizer.eps", tr("eps"));
  add_combo(forms_[kOptim], "schedule.kind", tr("Schedule"), {"cosine", "constant"});
  add_int(forms_[kOptim], "schedule.warmup_steps", tr("Warm-up steps"), 0, 100000000);
  add_line(forms_[kOptim], "schedule.min_lr_ratio", tr("Final LR ratio"));

  add_int(forms_[kTrain], "train.steps", tr("Steps"), 0, 100000000);
  add_int(forms_[kTrain], "train.batch", tr("Batch"), 0, 4096);
  add_int(forms_[kTrain], "train.seq_len", tr("Sequence length"), 0, 1000000);
  add_int(forms_[kTrain], "train.seed", tr("Seed"), 0, 2000000000);
  add_int(forms_[kTrain], "train.eval_every", tr("Evaluate every (steps)"), 0, 100000000);
  add_int(forms_[kTrain], "train.eval_examples", tr("Held-out examples per eval"), 0, 1000000);
  add_combo(forms_[kTrain], "train.eval_split", tr("Evaluate on"), {"test", "validation"});
  add_int(forms_[kTrain], "train.state_every_steps", tr("Save resumable state every (steps, 0: never)"), 0,
          100000000);
  add_line(forms_[kTrain], "train.state_every_minutes", tr("... and every (minutes, 0: never)"));
  add_line(forms_[kTrain], "train.divergence_factor", tr("Diverged at a loss this many times the start's (0: off)"));
  add_int(forms_[kTrain], "train.collapse_steps", tr("Collapsed after this many zero-gradient steps (0: off)"), 0,
          1000000);
  add_combo(forms_[kTrain], "train.device", tr("Device"), {"cpu", "auto", "cuda:0"}, true);

  facts_ = new QLabel;
  facts_->setWordWrap(true);
  memory_ = new QLabel;
  memory_->setWordWrap(true);
  memory_->setTextFormat(Qt::RichText);
  problems_label_ = new QLabel;
  problems_label_->setWordWrap(true);
  problems_label_->setStyleSheet("color: #d62728;");
  right->addWidget(facts_);
  right->addWidget(memory_);
  right->addWidget(problems_label_);
  right->addStretch(1);
  left->addStretch(1);
  columns->addLayout(left, 1);
  columns->addLayout(right, 1);

  auto* inner = new QWidget;
  inner->setLayout(columns);
  auto* scroll = new QScrollArea;
  scroll->setWidget(inner);
  scroll->setWidgetResizable(true);
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(0, 0, 0, 0);
  layout->addWidget(scroll);

  set_config(experiment_preset("demo"));
}

void ExperimentForm::add_line(QFormLayout* form, const std::string& key, const QString& label, const QString& tip) {
  auto* e = new QLineEdit;
  e->setProperty("help", tip);
  form->addRow(label, e);
  rows_[key] = {form, e};
  bindings_.push_back({key, e, [e] { return e->text(); }, [e](const QString& v) { e->setText(v); }});
  connect(e, &QLineEdit::textEdited, this, [this, key](const QString& v) { edited(key, v); });
}

void ExperimentForm::add_int(QFormLayout* form, const std::string& key, const QString& label, int lo, int hi) {
  auto* s = new QSpinBox;
  s->setRange(lo, hi);
  form->addRow(label, s);
  rows_[key] = {form, s};
  bindings_.push_back({key, s, [s] { return QString::number(s->value()); },
                       [s](const QString& v) { s->setValue(v.toInt()); }});
  connect(s, QOverload<int>::of(&QSpinBox::valueChanged), this,
          [this, key](int v) { edited(key, QString::number(v)); });
}

void ExperimentForm::add_combo(QFormLayout* form, const std::string& key, const QString& label,
                               const QStringList& items, bool editable) {
  auto* c = new QComboBox;
  c->addItems(items);
  c->setEditable(editable);
  form->addRow(label, c);
  rows_[key] = {form, c};
  bindings_.push_back({key, c, [c] { return c->currentText(); }, [c](const QString& v) {
                         if (c->findText(v) < 0) c->addItem(v);
                         c->setCurrentText(v);
                       }});
  connect(c, &QComboBox::currentTextChanged, this, [this, key](const QString& v) { edited(key, v); });
}

void ExperimentForm::add_check(QFormLayout* form, const std::string& key, const QString& label) {
  auto* b = new QCheckBox;
  form->addRow(label, b);
  rows_[key] = {form, b};
  bindings_.push_back({key, b, [b] { return QString(b->isChecked() ? "true" : "false"); },
                       [b](const QString& v) { b->setChecked(v == "true"); }});
  connect(b, &QCheckBox::toggled, this, [this, key](bool on) { edited(key, on ? "true" : "false"); });
}

QWidget* ExperimentForm::targets_editor() {
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
  bindings_.push_back({"adapter.targets", targets_, read, write});
  connect(targets_, &TargetPicker::changed, this, [this, read] { edited("adapter.targets", read()); });
  return targets_;
}

QWidget* ExperimentForm::editor(const std::string& key) const {
  for (const Binding& b : bindings_)
    if (b.key == key) return b.widget;
  return nullptr;
}

void ExperimentForm::set_field(const std::string& key, const QString& value) {
  for (const Binding& b : bindings_)
    if (b.key == key) {
      // Writing the editor emits its change signal, which edits the config;
      // shortcuts like "all" are expanded by the config and written back.
      b.write(value);
      edited(key, value);
      return;
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
    if (key == "adapter.targets" || key == "adapter.method") {
      // Normalised by the engine (shortcuts expanded, rslora sets use_rslora).
      loading_ = true;
      for (const Binding& b : bindings_)
        if (b.key == "adapter.targets" || b.key == "adapter.use_rslora") b.write(qs(config_.get(b.key)));
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
  for (const auto& [field, message] : parse_errors_) problems_[field] = message;
  for (const Binding& b : bindings_) {
    const auto it = problems_.find(b.key);
    b.widget->setStyleSheet(it == problems_.end() ? QString() : QString(kOutline));
    b.widget->setToolTip(it == problems_.end() ? b.widget->property("help").toString() : qs(it->second));
  }
  QStringList lines;
  for (const auto& [field, message] : problems_) lines << qs(message);
  problems_label_->setText(lines.join('\n'));

  // Facts derived from the engine's own counts.
  try {
    const ModelConfig mc = model_preset(config_.model.preset);
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
  update_preview();
  update_memory_estimate();
  emit config_changed();
}

void ExperimentForm::update_memory_estimate() {
  // The workbench profile: this engine's own buffers, as the run will make them.
  MemoryPlan plan;
  try {
    PlanInput in;
    in.model = model_preset(config_.model.preset);
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
  const auto gb = [](std::size_t b) { return qs(format_plan_bytes(static_cast<double>(b))); };
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
  const Method m = config_.adapter.method;
  auto show = [this](const std::string& key, bool on) {
    const auto it = rows_.find(key);
    if (it != rows_.end()) it->second.first->setRowVisible(it->second.second, on);
  };
  show("data.task", kind == "task");
  show("data.n_train", kind == "task");
  show("data.n_heldout", kind == "task");
  show("data.path", kind != "task");
  show("data.browse", kind != "task");
  show("data.prompt_field", kind == "jsonl");
  show("data.completion_field", kind == "jsonl");
  const bool adapter = m != Method::Full;
  show("model.frozen_dtype", adapter);
  for (const char* k : {"adapter.r", "adapter.alpha", "adapter.dropout", "adapter.init", "adapter.targets"})
    show(k, adapter);
  show("adapter.init", m == Method::Lora || m == Method::Dora || m == Method::ReLora);
  show("adapter.dora.norm_grad", m == Method::Dora);
  for (const char* k : {"adapter.adalora.target_r", "adapter.adalora.tinit", "adapter.adalora.tfinal",
                        "adapter.adalora.delta_t", "adapter.adalora.beta1", "adapter.adalora.beta2",
                        "adapter.adalora.orth_reg_weight"})
    show(k, m == Method::AdaLora);
  for (const char* k : {"adapter.relora.reset_every", "adapter.relora.restart_warmup", "adapter.relora.prune_ratio",
                        "adapter.relora.prune_independently"})
    show(k, m == Method::ReLora);
}

void ExperimentForm::update_preview() {
  QString text;
  if (config_.data.kind == "task") {
    for (const auto& t : data::builtin_tasks())
      if (t.name == config_.data.task)
        text = tr("%1\nprompt:     %2completion: %3")
                   .arg(qs(t.description), qs(t.example_prompt), qs(t.example_completion));
  } else if (!config_.data.path.empty()) {
    QFile f(qs(config_.data.path));
    if (!f.open(QIODevice::ReadOnly)) {
      text = tr("cannot open %1").arg(qs(config_.data.path));
    } else {
      QTextStream in(&f);
      for (int i = 0; i < 5 && !in.atEnd(); ++i) text += in.readLine().left(160) + '\n';
    }
  }
  preview_->setPlainText(text);
}

}  // namespace lwb::ui
