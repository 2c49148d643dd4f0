#include "ui/planner_view.h"

#include <qcustomplot.h>

#include <QCheckBox>
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QGridLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLocale>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QScrollBar>
#include <QScrollArea>
#include <QSignalBlocker>
#include <QSpinBox>
#include <QSplitter>
#include <QTableWidget>
#include <QTimer>
#include <QVBoxLayout>
#include <algorithm>

#include "core/adapters/descriptor.h"
#include "core/common/paths.h"
#include "ui/memory_view.h"
#include "ui/plot_style.h"
#include "ui/target_picker.h"

namespace lwb::ui {

namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

QString qs(const std::string& s) { return QString::fromStdString(s); }
QString method_of(const MemoryPlan& p) { return qs(method_display_name(p.input.adapter)); }

// A GPU line this far above the largest plan would squash the bars to the
// floor: it is named above the chart instead.
constexpr double kGpuOffScale = 3;

QTableWidgetItem* bytes_item(std::size_t bytes) {
  auto* item = new QTableWidgetItem(format_bytes(static_cast<double>(bytes)));
  item->setData(Qt::UserRole, static_cast<qulonglong>(bytes));
  item->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
  return item;
}

}  // namespace

PlannerView::PlannerView(QWidget* parent) : QWidget(parent) {
  replan_timer_ = new QTimer(this);
  replan_timer_->setSingleShot(true);
  replan_timer_->setInterval(0);
  connect(replan_timer_, &QTimer::timeout, this, &PlannerView::replan);

  summary_ = new QLabel;
  summary_->setWordWrap(true);
  summary_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  error_ = new QLabel;
  error_->setObjectName("planner_error");
  error_->setWordWrap(true);
  error_->setStyleSheet("color: #d62728;");

  methods_plot_ = new QCustomPlot;
  methods_plot_->setMinimumHeight(240);
  methods_plot_->setMinimumWidth(300);
  // The per-layer plot and the table's header name the categories.
  method_bars_ = std::make_unique<CategoryBars>(methods_plot_, Qt::Vertical, false);
  gpu_line_ = new QCPItemStraightLine(methods_plot_);
  gpu_line_->setPen(QPen(QColor(214, 39, 40), 1.5, Qt::DashLine));
  gpu_text_ = new QCPItemText(methods_plot_);
  gpu_text_->setColor(QColor(214, 39, 40));
  gpu_text_->setPositionAlignment(Qt::AlignRight | Qt::AlignBottom);

  details_box_ = new QComboBox;
  details_box_->setObjectName("details_method");
  connect(details_box_, &QComboBox::currentTextChanged, this, &PlannerView::show_details);
  layers_plot_ = new QCustomPlot;
  layers_plot_->setMinimumHeight(240);
  layer_bars_ = std::make_unique<CategoryBars>(layers_plot_, Qt::Horizontal);
  auto* layers_panel = new QWidget;
  auto* layers_layout = new QVBoxLayout(layers_panel);
  layers_layout->setContentsMargins(0, 0, 0, 0);
  auto* details_row = new QHBoxLayout;
  details_row->addWidget(new QLabel(tr("Per layer, terms and formulas of")));
  details_row->addWidget(details_box_);
  details_row->addStretch(1);
  layers_layout->addLayout(details_row);
  layers_layout->addWidget(layers_plot_, 1);

  table_ = new QTableWidget(0, kColumns);
  table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  for (int c = 0; c < kMemCategoryCount; ++c) {
    QPixmap swatch(10, 10);
    swatch.fill(mem_category_color(static_cast<MemCategory>(c)));
    table_->setHorizontalHeaderItem(
        c, new QTableWidgetItem(QIcon(swatch), qs(mem_category_name(static_cast<MemCategory>(c)))));
  }
  table_->setHorizontalHeaderItem(kTotalColumn, new QTableWidgetItem(tr("total")));
  table_->setHorizontalHeaderItem(kTrainableColumn, new QTableWidgetItem(tr("trainable parameters")));
  table_->setHorizontalHeaderItem(kFitsColumn, new QTableWidgetItem(tr("fits the GPU")));
  table_->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);

  terms_ = new QPlainTextEdit;
  terms_->setReadOnly(true);
  terms_->setLineWrapMode(QPlainTextEdit::NoWrap);
  terms_->setFont(QFont("monospace", 8));

  auto* plots = new QSplitter(Qt::Horizontal);
  plots->addWidget(methods_plot_);
  plots->addWidget(layers_panel);
  plots->setStretchFactor(0, 1);
  plots->setStretchFactor(1, 1);
  auto* results = new QSplitter(Qt::Vertical);
  results->addWidget(plots);
  results->addWidget(table_);
  results->addWidget(terms_);
  results->setStretchFactor(0, 3);
  results->setStretchFactor(1, 1);
  results->setStretchFactor(2, 2);
  auto* right = new QVBoxLayout;
  right->addWidget(summary_);
  right->addWidget(error_);
  right->addWidget(results, 1);
  auto* layout = new QHBoxLayout(this);
  layout->addWidget(build_knobs());
  layout->addLayout(right, 1);

  PlanInput start;
  start.threads = default_plan_threads();
  set_knobs(start);
  load_model(model_box_->currentText());
  // Full fine-tuning and the first two adapter variants, as the registry lists them.
  QStringList first;
  for (const VariantDescriptor* v : variants())
    if (first.size() < 3) first << qs(v->name);
  set_methods(first);
}

PlannerView::~PlannerView() = default;

QWidget* PlannerView::build_knobs() {
  auto* knobs = new QWidget;
  auto* column = new QVBoxLayout(knobs);

  auto* model_group = new QGroupBox(tr("Model"));
  auto* model_form = new QFormLayout(model_group);
  model_box_ = new QComboBox;
  model_box_->setObjectName("planner_model");
  for (const auto& n : model_preset_names()) model_box_->addItem(qs(n));
  for (const auto& n : shipped_model_names(resources_dir())) model_box_->addItem(qs(n));
  connect(model_box_, &QComboBox::currentIndexChanged, this, [this](int i) {
    if (i < 0) return;
    const QVariant file = model_box_->itemData(i);
    if (load_model(file.isValid() ? file.toString() : model_box_->itemText(i))) {
      model_index_ = i;
      return;
    }
    // The last good model stays planned; the box shows it again.
    const QSignalBlocker quiet(model_box_);
    model_box_->setCurrentIndex(model_index_);
  });
  auto* open = new QPushButton(tr("Open config.json..."));
  connect(open, &QPushButton::clicked, this, [this] {
    const QString f = QFileDialog::getOpenFileName(this, tr("Hugging Face config.json"), {}, tr("JSON (*.json)"));
    if (!f.isEmpty()) open_config(f);
  });
  lisa_ = new QPushButton(tr("LISA LLaMA-2-7B"));
  lisa_->setToolTip(tr("The LISA paper's memory comparison (Figure 3): full fine-tuning vs LoRA rank 128 on all "
                       "projections, batch 1 x 512 tokens, pure bf16, PyTorch eager; ~60 GB vs ~23 GB as published "
                       "(decimal GB, about 56 GiB vs 21 GiB)"));
  lisa_->setEnabled(model_box_->findText("llama-2-7b") >= 0);
  connect(lisa_, &QPushButton::clicked, this, [this] {
    select_model("llama-2-7b");
    const std::vector<std::string> methods = lisa_methods();
    PlanInput lisa = lisa_llama2_7b_input(model_, methods.back());
    lisa.threads = threads_->value();  // the paper's setting has none; keep this machine's
    set_knobs(lisa);
    QStringList names;
    for (const std::string& m : methods) names << qs(m);
    set_methods(names);
  });
  model_form->addRow(tr("Config"), model_box_);
  model_form->addRow(QString(), open);
  model_form->addRow(tr("Preset"), lisa_);
  column->addWidget(model_group);

  auto* methods_group = new QGroupBox(tr("Methods to compare"));
  auto* methods_grid = new QGridLayout(methods_group);
  for (const auto& m : variant_names()) {
    auto* b = new QCheckBox(qs(m));
    b->setObjectName("method_" + qs(m));
    methods_grid->addWidget(b, static_cast<int>(method_boxes_.size()) / 2, static_cast<int>(method_boxes_.size()) % 2);
    method_boxes_.push_back(b);
    connect(b, &QCheckBox::toggled, this, &PlannerView::schedule);
  }
  column->addWidget(methods_group);

  auto* adapter_group = new QGroupBox(tr("Adapter"));
  auto* adapter_form = new QFormLayout(adapter_group);
  rank_ = new QSpinBox;
  rank_->setRange(1, 65536);
  dropout_ = new QDoubleSpinBox;
  dropout_->setRange(0, 0.95);
  dropout_->setSingleStep(0.05);
  dropout_->setToolTip(tr("Non-zero dropout keeps a mask per adapted input (pytorch-eager)"));
  targets_ = new TargetPicker;
  adapter_form->addRow(tr("Rank r"), rank_);
  adapter_form->addRow(tr("Dropout"), dropout_);
  adapter_form->addRow(tr("Targets"), targets_);
  connect(rank_, &QSpinBox::valueChanged, this, &PlannerView::schedule);
  connect(dropout_, &QDoubleSpinBox::valueChanged, this, &PlannerView::schedule);
  connect(targets_, &TargetPicker::changed, this, &PlannerView::schedule);
  column->addWidget(adapter_group);

  auto* run_group = new QGroupBox(tr("Training"));
  auto* run_form = new QFormLayout(run_group);
  batch_ = new QSpinBox;
  batch_->setRange(1, 1 << 16);
  seq_ = new QSpinBox;
  seq_->setRange(1, 1 << 20);
  precision_ = new QComboBox;
  precision_->addItems({"fp32", "bf16", "fp16", "mixed", "bf16-frozen"});
  precision_->setToolTip(tr("fp32, bf16, fp16: everything in that format; mixed: bf16 weights and activations with "
                            "fp32 master copies and adapters; bf16-frozen: the engine's bf16 frozen projections"));
  optimizer_ = new QComboBox;
  optimizer_->addItems({tr("as the updated tensors"), "fp32", "bf16", "8bit"});
  optimizer_->setToolTip(tr("AdamW's two moments; by default in the dtype of the tensors they update, as "
                            "torch.optim.AdamW keeps them"));
  checkpointing_ = new QCheckBox;
  checkpointing_->setToolTip(tr("Gradient checkpointing per layer (pytorch-eager only)"));
  profile_ = new QComboBox;
  profile_->addItems({plan_profile_name(PlanProfile::Workbench), plan_profile_name(PlanProfile::PytorchEager)});
  profile_->setToolTip(tr("workbench: this engine's buffers, checked against its memory ledger; pytorch-eager: HF "
                          "transformers + PEFT with eager attention. Neither counts the CUDA context."));
  threads_ = new QSpinBox;
  threads_->setRange(1, 1024);
  threads_->setToolTip(tr("workbench: OpenMP threads, which size the CPU attention scratch"));
  run_form->addRow(tr("Batch"), batch_);
  run_form->addRow(tr("Sequence length"), seq_);
  run_form->addRow(tr("Profile"), profile_);
  run_form->addRow(tr("Precision"), precision_);
  run_form->addRow(tr("Optimizer states"), optimizer_);
  run_form->addRow(tr("Gradient checkpointing"), checkpointing_);
  run_form->addRow(tr("Threads"), threads_);
  for (QSpinBox* s : {batch_, seq_, threads_}) connect(s, &QSpinBox::valueChanged, this, &PlannerView::schedule);
  for (QComboBox* c : {precision_, optimizer_}) connect(c, &QComboBox::currentTextChanged, this, &PlannerView::schedule);
  connect(checkpointing_, &QCheckBox::toggled, this, &PlannerView::schedule);
  // Each profile has its own usual precision (the workbench refuses fp16 and mixed).
  connect(profile_, &QComboBox::currentTextChanged, this, [this](const QString& p) {
    precision_->setCurrentText(qs(default_plan_precision(parse_plan_profile(p.toStdString()))));
    schedule();
  });
  column->addWidget(run_group);

  auto* gpu_group = new QGroupBox(tr("GPU"));
  auto* gpu_form = new QFormLayout(gpu_group);
  gpu_box_ = new QComboBox;
  gpu_box_->setObjectName("gpu_size");
  for (double g : kGpuPresets) gpu_box_->addItem(tr("%1 GiB").arg(g), g);
  gpu_box_->addItem(tr("custom"));
  gpu_custom_ = new QDoubleSpinBox;
  gpu_custom_->setRange(0.5, 100000);
  gpu_custom_->setSuffix(tr(" GiB"));
  gpu_custom_->setValue(16);
  gpu_custom_->setEnabled(false);
  gpu_form->addRow(tr("Size"), gpu_box_);
  gpu_form->addRow(tr("Custom"), gpu_custom_);
  connect(gpu_box_, &QComboBox::currentIndexChanged, this, [this] {
    gpu_custom_->setEnabled(!gpu_box_->currentData().isValid());
    schedule();
  });
  connect(gpu_custom_, &QDoubleSpinBox::valueChanged, this, &PlannerView::schedule);
  column->addWidget(gpu_group);
  column->addStretch(1);

  auto* scroll = new QScrollArea;
  scroll->setWidget(knobs);
  scroll->setWidgetResizable(true);
  scroll->setMinimumWidth(knobs->sizeHint().width() + 24);
  scroll->setMaximumWidth(knobs->sizeHint().width() + 80);
  return scroll;
}

bool PlannerView::load_model(const QString& name_or_path) {
  try {
    model_ = load_plan_model(name_or_path.toStdString(), resources_dir());
  } catch (const std::exception& e) {
    error_->setText(QString::fromUtf8(e.what()));
    return false;
  }
  // A new model brings the plan command's defaults for it.
  const PlanProfile profile = default_plan_profile(name_or_path.toStdString());
  profile_->setCurrentText(plan_profile_name(profile));
  precision_->setCurrentText(qs(default_plan_precision(profile)));
  optimizer_->setCurrentIndex(0);
  seq_->setValue(static_cast<int>(default_plan_seq(model_)));
  schedule();
  return true;
}

void PlannerView::select_model(const QString& name) {
  const int i = model_box_->findText(name);
  if (i < 0)
    error_->setText(tr("no model \"%1\" in the list").arg(name));
  else
    model_box_->setCurrentIndex(i);
}

bool PlannerView::open_config(const QString& file) {
  if (!load_model(file)) return false;
  int i = model_box_->findData(file);
  if (i < 0) {
    model_box_->addItem(QFileInfo(file).fileName(), file);
    i = model_box_->count() - 1;
  }
  const QSignalBlocker quiet(model_box_);  // loaded already
  model_box_->setCurrentIndex(i);
  model_index_ = i;
  return true;
}

void PlannerView::set_knobs(const PlanInput& in) {
  profile_->setCurrentText(plan_profile_name(in.profile));  // before the precision, which it resets
  precision_->setCurrentText(qs(plan_precision_name(in.precision)));
  optimizer_->setCurrentText(optimizer_states_name(in.optimizer));
  rank_->setValue(in.adapter.r);
  dropout_->setValue(in.adapter.dropout);
  targets_->set_targets(in.adapter.targets);
  batch_->setValue(static_cast<int>(in.batch));
  seq_->setValue(static_cast<int>(in.seq));
  checkpointing_->setChecked(in.checkpointing);
  threads_->setValue(in.threads);
  schedule();
}

PlanInput PlannerView::knobs() const {
  PlanInput in;
  in.model = model_;
  in.adapter.r = rank_->value();
  in.adapter.dropout = dropout_->value();
  in.adapter.targets = targets_->targets();
  in.batch = batch_->value();
  in.seq = seq_->value();
  in.precision = parse_plan_precision(precision_->currentText().toStdString());
  in.optimizer = optimizer_->currentIndex() == 0 ? default_optimizer_states(in.precision)
                                                 : parse_optimizer_states(optimizer_->currentText().toStdString());
  in.checkpointing = checkpointing_->isChecked();
  in.profile = parse_plan_profile(profile_->currentText().toStdString());
  in.threads = threads_->value();
  return in;
}

void PlannerView::set_methods(const QStringList& methods) {
  for (QCheckBox* b : method_boxes_) b->setChecked(methods.contains(b->text()));
}

QStringList PlannerView::methods() const {
  QStringList on;
  for (QCheckBox* b : method_boxes_)
    if (b->isChecked()) on << b->text();
  return on;
}

void PlannerView::set_gpu_gib(double gib) {
  const int preset = gpu_box_->findData(gib);
  if (preset >= 0) {
    gpu_box_->setCurrentIndex(preset);
    return;
  }
  gpu_custom_->setValue(gib);
  gpu_box_->setCurrentIndex(gpu_box_->count() - 1);
}

double PlannerView::gpu_gib() const {
  const QVariant preset = gpu_box_->currentData();
  return preset.isValid() ? preset.toDouble() : gpu_custom_->value();
}

bool PlannerView::fits(const QString& method) const {
  for (const MemoryPlan& p : plans_)
    if (method_of(p) == method) return static_cast<double>(p.total) <= gpu_gib() * kGiB;
  return false;
}

void PlannerView::show_details_of(const QString& method) { details_box_->setCurrentText(method); }

void PlannerView::schedule() { replan_timer_->start(); }

void PlannerView::replan() {
  const QStringList names = methods();
  if (names.isEmpty()) {
    error_->setText(tr("Choose at least one method to plan."));
    return;
  }
  std::vector<MemoryPlan> plans;
  const PlanInput in = knobs();
  for (const QString& m : names) {
    PlanInput one = in;
    select_method(one.adapter, m.toStdString());
    try {
      plans.push_back(plan_memory(one));
    } catch (const std::exception& e) {
      // The last plans that worked stay on screen.
      error_->setText(tr("%1: %2").arg(m, QString::fromUtf8(e.what())));
      return;
    }
  }
  error_->clear();
  plans_ = std::move(plans);
  show_plans();
}

void PlannerView::show_plans() {
  const double gpu = gpu_gib() * kGiB;
  summary_->setText(qs(format_plan_comparison(plans_)).section('\n', 0, 0) +
                    tr(" · sizes in binary units (1 GiB = 2^30 bytes)"));

  // Methods side by side, against the GPU line.
  std::size_t largest = 0;
  for (const MemoryPlan& p : plans_) largest = std::max(largest, p.total);
  const auto [unit, unit_name] = binary_unit(static_cast<double>(largest));
  QVector<QString> labels;
  std::vector<CategoryBytes> stacks;
  for (const MemoryPlan& p : plans_) {
    QString label = method_of(p) + "\n" + format_bytes(static_cast<double>(p.total));
    if (static_cast<double>(p.total) > gpu) label += tr("\ndoes not fit");
    labels.push_back(label);
    stacks.push_back(p.totals);
  }
  const double top = method_bars_->set(labels, stacks, unit);
  methods_plot_->yAxis->setLabel(unit_name);
  const bool gpu_on_scale = gpu / unit <= kGpuOffScale * top;
  methods_plot_->yAxis->setRange(0, (gpu_on_scale ? std::max(top, gpu / unit) : top) * 1.15 + 1e-12);
  gpu_line_->setVisible(gpu_on_scale);
  gpu_line_->point1->setCoords(0, gpu / unit);
  gpu_line_->point2->setCoords(1, gpu / unit);
  if (gpu_on_scale) {
    gpu_text_->position->setType(QCPItemPosition::ptPlotCoords);
    gpu_text_->setPositionAlignment(Qt::AlignRight | Qt::AlignBottom);
    gpu_text_->position->setCoords(static_cast<double>(plans_.size()) - 0.35, gpu / unit);
    gpu_text_->setText(tr("%1 GiB GPU").arg(gpu_gib()));
  } else {
    gpu_text_->position->setType(QCPItemPosition::ptAxisRectRatio);
    gpu_text_->setPositionAlignment(Qt::AlignRight | Qt::AlignTop);
    gpu_text_->position->setCoords(0.98, 0.02);
    gpu_text_->setText(tr("%1 GiB GPU:\noff the scale,\n%2x the largest plan")
                           .arg(gpu_gib())
                           .arg(gpu / (top * unit), 0, 'f', 0));
  }
  methods_plot_->replot(QCustomPlot::rpQueuedReplot);

  table_->setRowCount(static_cast<int>(plans_.size()));
  QStringList rows;
  for (int i = 0; i < static_cast<int>(plans_.size()); ++i) {
    const MemoryPlan& p = plans_[static_cast<std::size_t>(i)];
    rows << method_of(p);
    for (int c = 0; c < kMemCategoryCount; ++c) table_->setItem(i, c, bytes_item(p.totals[c]));
    auto* total = bytes_item(p.total);
    total->setToolTip(qs(describe_plan_input(p.input)));
    table_->setItem(i, kTotalColumn, total);
    auto* trainable = new QTableWidgetItem(
        tr("%1 (%2%)")
            .arg(QLocale().toString(static_cast<qlonglong>(p.trainable_params)))
            .arg(100.0 * static_cast<double>(p.trainable_params) / static_cast<double>(p.total_params), 0, 'f', 2));
    trainable->setData(Qt::UserRole, static_cast<qlonglong>(p.trainable_params));
    table_->setItem(i, kTrainableColumn, trainable);
    const double share = static_cast<double>(p.total) / gpu;
    auto* fit = new QTableWidgetItem(share <= 1 ? tr("yes, %1%").arg(100 * share, 0, 'f', 0)
                                                : tr("no, %1%").arg(100 * share, 0, 'f', 0));
    if (share > 1) fit->setForeground(QColor(214, 39, 40));
    table_->setItem(i, kFitsColumn, fit);
  }
  table_->setVerticalHeaderLabels(rows);
  table_->horizontalHeaderItem(kFitsColumn)->setText(tr("fits %1 GiB").arg(gpu_gib()));
  // Every compared method in view: the table is as tall as its rows.
  table_->resizeRowsToContents();
  int height = table_->horizontalHeader()->height() + 2 * table_->frameWidth() +
               table_->horizontalScrollBar()->sizeHint().height();
  for (int r = 0; r < table_->rowCount(); ++r) height += table_->rowHeight(r);
  table_->setMinimumHeight(height);

  // Keep the detailed method when it is still compared.
  const QString shown = details_box_->currentText();
  {
    const QSignalBlocker quiet(details_box_);
    details_box_->clear();
    details_box_->addItems(rows);
    if (rows.contains(shown)) details_box_->setCurrentText(shown);
  }
  show_details();
}

void PlannerView::show_details() {
  const auto it = std::find_if(plans_.begin(), plans_.end(),
                               [this](const MemoryPlan& p) { return method_of(p) == details_box_->currentText(); });
  if (it == plans_.end()) return;
  std::size_t biggest = 0;
  for (const auto& row : it->rows) {
    std::size_t sum = 0;
    for (std::size_t b : row.bytes) sum += b;
    biggest = std::max(biggest, sum);
  }
  const auto [unit, unit_name] = binary_unit(static_cast<double>(biggest));
  const double largest = layer_bars_->set_layers(it->rows, unit);
  layers_plot_->xAxis->setLabel(unit_name);
  layers_plot_->xAxis->setRange(0, largest * 1.08 + 1e-9);
  layers_plot_->replot(QCustomPlot::rpQueuedReplot);
  terms_->setPlainText(qs(format_plan_table(*it) + "\nper layer:\n" + format_plan_layers(*it)));
}

}  // namespace lwb::ui
