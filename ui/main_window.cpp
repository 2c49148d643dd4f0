#include "ui/main_window.h"

#include <algorithm>
#include <qcustomplot.h>

#include <QAction>
#include <QApplication>
#include <QCloseEvent>
#include <QComboBox>
#include <QDir>
#include <QFile>
#include <QFileDialog>
#include <QHBoxLayout>
#include <QLabel>
#include <QMenuBar>
#include <QMessageBox>
#include <QPlainTextEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QSplitter>
#include <QStandardPaths>
#include <QTabWidget>
#include <QTextStream>
#include <QTimer>
#include <QToolBar>
#include <QVBoxLayout>
#include <cmath>

#include "core/adapters/descriptor.h"
#include "core/common/paths.h"
#include "core/store/store.h"
#include "core/train/trainer.h"
#include "ui/adapter_library.h"
#include "ui/comparison_view.h"
#include "ui/chat_view.h"
#include "ui/compose_view.h"
#include "ui/experiment_form.h"
#include "ui/library_view.h"
#include "ui/loss_plot.h"
#include "ui/memory_view.h"
#include "ui/planner_view.h"
#include "ui/queue_view.h"
#include "ui/run_compare.h"
#include "ui/run_queue.h"
#include "ui/runs_view.h"
#include "ui/samples_view.h"
#include "ui/training_stats_view.h"
#include "ui/variant_view.h"

namespace lwb::ui {

namespace {
QString duration(double s) {
  if (!std::isfinite(s) || s < 0) return "--:--";
  const long t = std::lround(s);
  return t >= 3600 ? QString("%1:%2:%3").arg(t / 3600).arg((t / 60) % 60, 2, 10, QChar('0')).arg(t % 60, 2, 10, QChar('0'))
                   : QString("%1:%2").arg(t / 60).arg(t % 60, 2, 10, QChar('0'));
}

QString presets_dir() {
  return QStandardPaths::writableLocation(QStandardPaths::AppConfigLocation) + "/presets";
}

QueueItem::State queue_state_of(RunStatus s) {
  switch (s) {
    case RunStatus::Finished: return QueueItem::State::Finished;
    case RunStatus::Stopped: return QueueItem::State::Stopped;
    default: return QueueItem::State::Failed;
  }
}
}  // namespace

bool MainWindow::needs_pretraining(const ExperimentConfig& config) {
  if (config.model.base != "pretrained") return false;
  try {
    return !base_model_ready(config.model.preset, {});
  } catch (const std::exception&) {
    return false;  // a preset without a pretraining recipe: the trainer says what is wrong
  }
}

MainWindow::MainWindow(std::filesystem::path db, QWidget* parent)
    : QMainWindow(parent), db_(db.empty() ? Store::default_path() : std::move(db)) {
  setWindowTitle(tr("LoRA Workbench"));
  tabs_ = new QTabWidget;

  // Setup.
  auto* setup = new QWidget;
  auto* setup_layout = new QVBoxLayout(setup);
  form_ = new ExperimentForm;
  start_reason_ = new QLabel;
  start_reason_->setObjectName("start_reason");
  start_reason_->setWordWrap(true);
  setup_layout->addWidget(form_, 1);
  setup_layout->addWidget(start_reason_);
  tabs_->addTab(setup, tr("Setup"));

  // Monitor.
  auto* monitor = new QWidget;
  auto* monitor_layout = new QVBoxLayout(monitor);
  auto* progress_row = new QHBoxLayout;
  progress_ = new QProgressBar;
  progress_->setFormat("%v / %m");
  status_ = new QLabel(tr("No run yet."));
  status_->setObjectName("run_status");
  status_->setWordWrap(true);
  speed_ = new QLabel;
  speed_->setObjectName("run_speed");
  progress_row->addWidget(progress_, 2);
  progress_row->addWidget(speed_, 1);
  loss_ = new LossPlot;
  variant_ = new VariantView;
  stats_ = new TrainingStatsView;
  below_ = new QTabWidget;
  below_->setObjectName("monitor_below");
  below_->addTab(variant_, tr("Method view"));
  below_->addTab(stats_, tr("Layers and weights"));
  samples_ = new SamplesView;
  below_->addTab(samples_, tr("Samples"));
  log_ = new QPlainTextEdit;
  log_->setObjectName("run_log");
  log_->setReadOnly(true);
  log_->setMaximumBlockCount(2000);
  log_->setMaximumHeight(56);
  auto* split = new QSplitter(Qt::Vertical);
  split->addWidget(loss_);
  split->addWidget(below_);
  split->setStretchFactor(0, 2);
  split->setStretchFactor(1, 1);
  monitor_layout->addLayout(progress_row);
  monitor_layout->addWidget(status_);
  monitor_layout->addWidget(split, 1);
  monitor_layout->addWidget(log_);
  tabs_->addTab(monitor, tr("Monitor"));
  // The method views share the loss plot's steps.
  QCPAxis* steps = loss_->plot()->axisRect()->axis(QCPAxis::atBottom);
  connect(steps, QOverload<const QCPRange&>::of(&QCPAxis::rangeChanged), this, [this](const QCPRange& r) {
    variant_->set_step_range(r);
    stats_->set_step_range(r);
  });

  memory_ = new MemoryView;
  tabs_->addTab(memory_, tr("Memory"));
  runs_ = new RunsView(db_);
  tabs_->addTab(runs_, tr("Runs"));
  queue_ = new RunQueue(this);
  QStringList methods;
  if (auto* box = qobject_cast<QComboBox*>(form_->editor("adapter.method")))
    for (int i = 0; i < box->count(); ++i) methods << box->itemText(i);
  queue_view_ = new QueueView(queue_, [this] { return form_->config(); }, methods);
  tabs_->addTab(queue_view_, tr("Queue"));
  library_ = new LibraryView(db_);
  tabs_->addTab(library_, tr("Library"));
  compare_ = new ComparisonView(db_, ComparisonView::Kind::Compare);
  tabs_->addTab(compare_, tr("Compare"));
  studies_ = new ComparisonView(db_, ComparisonView::Kind::Study);
  tabs_->addTab(studies_, tr("Studies"));
  compose_ = new ComposeView(db_);
  tabs_->addTab(compose_, tr("Compose"));
  chat_ = new ChatView(db_);
  tabs_->addTab(chat_, tr("Chat"));
  planner_ = new PlannerView;
  tabs_->addTab(planner_, tr("Planner"));
  setCentralWidget(tabs_);
  build_toolbar();
  build_menus();

  // A finished run, a library tool or an import may have added an adapter.
  connect(this, &MainWindow::run_finished, this, [this] {
    compose_->library()->refresh();
    library_->refresh();
  });
  connect(library_, &LibraryView::library_changed, compose_->library(), &AdapterLibrary::refresh);
  connect(queue_view_, &QueueView::run_requested, this, &MainWindow::run_queue);
  connect(queue_view_, &QueueView::pause_requested, this, &MainWindow::pause_queue);
  connect(form_, &ExperimentForm::config_changed, this, &MainWindow::update_start_enabled);
  connect(form_, &ExperimentForm::config_changed, this, &MainWindow::update_preset_label);
  connect(runs_, &RunsView::clone_requested, this, [this](const ExperimentConfig& c, qint64 run) {
    form_->set_config(c);
    set_run_source(tr("run %1").arg(run), {});
    tabs_->setCurrentIndex(0);
  });
  connect(runs_, &RunsView::resume_requested, this,
          [this](const ExperimentConfig& c, const QString& state, qint64 parent) {
            if (training()) {
              queue_->add(c, QString(), state, parent);
              log(tr("run %1 will resume after the current run (queued)").arg(parent));
              return;
            }
            form_->set_config(c);
            set_run_source(tr("run %1").arg(parent), tr("resume"));
            log(tr("resuming run %1 from %2").arg(parent).arg(state));
            start_run(c, state, parent);
          });
  connect(runs_, &RunsView::error, this, [this](const QString& m) { log(tr("error: %1").arg(m)); });
  connect(tabs_, &QTabWidget::currentChanged, this, [this](int i) {
    if (tabs_->widget(i) == runs_) runs_->refresh();
    if (tabs_->widget(i) == library_) library_->refresh();
    if (tabs_->widget(i) == studies_) studies_->refresh();
  });
  set_preset(QString::fromStdString(form_->config().name), {});
  update_start_enabled();
}

MainWindow::~MainWindow() = default;

void MainWindow::build_toolbar() {
  auto* bar = addToolBar(tr("Experiment"));
  bar->setObjectName("experiment_toolbar");
  bar->setMovable(false);
  presets_ = new QComboBox;
  presets_->setObjectName("presets");
  presets_->setMinimumContentsLength(16);
  bar->addWidget(new QLabel(tr(" Preset: ")));
  bar->addWidget(presets_);
  refresh_presets();
  connect(presets_, &QComboBox::activated, this, &MainWindow::load_preset);
  bar->addSeparator();
  start_ = new QPushButton(tr("Start"));
  start_->setObjectName("start");
  start_->setToolTip(tr("Start the Setup experiment now (F5)"));
  pause_ = new QPushButton(tr("Pause"));
  pause_->setObjectName("pause");
  pause_->setCheckable(true);
  stop_ = new QPushButton(tr("Stop"));
  stop_->setObjectName("stop");
  stop_->setToolTip(tr("Stop after the current step; the run is kept, resumable, with its adapter (Esc)"));
  pause_->setEnabled(false);
  stop_->setEnabled(false);
  bar->addWidget(start_);
  bar->addWidget(pause_);
  bar->addWidget(stop_);
  auto* add = new QPushButton(tr("Add to queue"));
  add->setObjectName("add_to_queue");
  add->setToolTip(tr("Queue the Setup experiment to run after the others (Queue tab)"));
  bar->addWidget(add);
  connect(add, &QPushButton::clicked, this, [this] {
    if (!form_->valid()) return;
    queue_->add(form_->config());
    log(tr("queued %1 (%2 waiting)").arg(QString::fromStdString(form_->config().name)).arg(queue_->waiting()));
  });
  connect(start_, &QPushButton::clicked, this, [this] { start_run(form_->config()); });
  connect(pause_, &QPushButton::toggled, this, [this](bool paused) {
    if (!worker_) return;
    worker_->set_paused(paused);
    pause_->setText(paused ? tr("Resume") : tr("Pause"));
    status_->setText(paused ? tr("Paused after the current step.") : tr("Resumed."));
  });
  connect(stop_, &QPushButton::clicked, this, &MainWindow::stop_run);
}

void MainWindow::build_menus() {
  QMenu* file = menuBar()->addMenu(tr("&File"));
  QAction* open = file->addAction(tr("&Open experiment..."), this, &MainWindow::open_config);
  open->setShortcut(QKeySequence::Open);
  QAction* save = file->addAction(tr("&Save experiment as..."), this, &MainWindow::save_config);
  save->setShortcut(QKeySequence::Save);
  file->addAction(tr("&Duplicate experiment"), this, [this] {
    ExperimentConfig c = form_->config();
    c.name += "-copy";
    form_->set_config(c);
    log(tr("duplicated as %1; change a field and start it").arg(QString::fromStdString(c.name)));
  });
  file->addSeparator();
  file->addAction(tr("Export &plots..."), this, [this] {
    const QString base = QFileDialog::getSaveFileName(this, tr("Export plots (PNG and PDF)"), "lora-run");
    if (!base.isEmpty()) export_plots(base);
  });
  file->addAction(tr("Export metrics &CSV..."), this, [this] {
    const QString f = QFileDialog::getSaveFileName(this, tr("Export metrics"), "metrics.csv", "CSV (*.csv)");
    if (!f.isEmpty()) export_csv(f);
  });
  file->addSeparator();
  QAction* quit = file->addAction(tr("&Quit"), this, &QWidget::close);
  quit->setShortcut(QKeySequence(Qt::CTRL | Qt::Key_Q));

  QMenu* run = menuBar()->addMenu(tr("&Run"));
  start_action_ = run->addAction(tr("&Start"), start_, &QPushButton::click);
  start_action_->setShortcut(QKeySequence(Qt::Key_F5));
  pause_action_ = run->addAction(tr("&Pause / resume"), pause_, &QPushButton::click);
  pause_action_->setShortcut(QKeySequence(Qt::Key_F6));
  stop_action_ = run->addAction(tr("S&top"), this, &MainWindow::stop_run);
  stop_action_->setShortcut(QKeySequence(Qt::Key_Escape));
  run->addSeparator();
  run->addAction(tr("Run &queue"), this, &MainWindow::run_queue);
  run->addAction(tr("Pause queue &after this run"), this, &MainWindow::pause_queue);

  QMenu* view = menuBar()->addMenu(tr("&View"));
  for (int i = 0; i < tabs_->count(); ++i) {
    QAction* a = view->addAction(tabs_->tabText(i), this, [this, i] { tabs_->setCurrentIndex(i); });
    a->setShortcut(QKeySequence(Qt::CTRL | static_cast<Qt::Key>(Qt::Key_1 + i)));
  }
}

// Items: the built-in presets by name, then the saved files (their path as
// the item's data), then the run the form was cloned or resumed from (its
// config as the item's data); the plain name is kept apart, the text may say
// "(edited)".
constexpr int kPresetNameRole = Qt::UserRole + 1;
constexpr int kPresetConfigRole = Qt::UserRole + 2;

void MainWindow::refresh_presets() {
  presets_->clear();
  auto add = [this](const QString& name, const QVariant& file) {
    presets_->addItem(name, file);
    presets_->setItemData(presets_->count() - 1, name, kPresetNameRole);
  };
  for (const auto& n : experiment_preset_names())
    if (n.rfind("pretrain", 0) != 0) add(QString::fromStdString(n), {});
  const QDir dir(presets_dir());
  for (const QString& f : dir.entryList({"*.json"}, QDir::Files, QDir::Name))
    add(QFileInfo(f).completeBaseName(), QFileInfo(dir.filePath(f)).absoluteFilePath());
}

void MainWindow::set_preset(const QString& name, const QString& file) {
  refresh_presets();
  const QString path = file.isEmpty() ? QString() : QFileInfo(file).absoluteFilePath();
  int i = path.isEmpty() ? presets_->findData(name, kPresetNameRole) : presets_->findData(path);
  if (i < 0) {
    presets_->addItem(name, path.isEmpty() ? QVariant() : QVariant(path));
    i = presets_->count() - 1;
    presets_->setItemData(i, name, kPresetNameRole);
  }
  presets_->setCurrentIndex(i);
  preset_name_ = name;
  preset_note_.clear();
  preset_json_ = form_->config().to_json();
  update_preset_label();
}

void MainWindow::set_run_source(const QString& name, const QString& note) {
  set_preset(name, {});
  presets_->setItemData(presets_->currentIndex(), QString::fromStdString(preset_json_), kPresetConfigRole);
  preset_note_ = note;
  update_preset_label();
}

void MainWindow::update_preset_label() {
  const int i = presets_->currentIndex();
  if (i < 0 || presets_->itemData(i, kPresetNameRole).toString() != preset_name_) return;
  // The note (a resumption) holds only while the form is as it came.
  const bool as_loaded = form_->config().to_json() == preset_json_;
  presets_->setItemText(i, !as_loaded                ? tr("%1 (edited)").arg(preset_name_)
                           : preset_note_.isEmpty() ? preset_name_
                                                    : QString("%1 (%2)").arg(preset_name_, preset_note_));
}

void MainWindow::load_preset(int index) {
  const QString name = presets_->itemData(index, kPresetNameRole).toString();
  const QVariant file = presets_->itemData(index);
  if (file.isValid()) {
    open_config_from(file.toString());
    return;
  }
  if (const QVariant run = presets_->itemData(index, kPresetConfigRole); run.isValid()) {
    // A run's settings again, to start afresh from them (not a resumption).
    const std::string json = run.toString().toStdString();
    try {
      form_->set_config(ExperimentConfig::from_json(json, name.toStdString()));
    } catch (const std::exception& e) {
      QMessageBox::warning(this, tr("Preset"), QString::fromUtf8(e.what()));
      return;
    }
    set_run_source(name, {});
    return;
  }
  try {
    form_->set_config(experiment_preset(name.toStdString()));
    set_preset(name, {});
  } catch (const std::exception& e) {
    QMessageBox::warning(this, tr("Preset"), QString::fromUtf8(e.what()));
  }
}

void MainWindow::save_config() {
  QDir().mkpath(presets_dir());
  const QString f = QFileDialog::getSaveFileName(
      this, tr("Save experiment"), presets_dir() + "/" + QString::fromStdString(safe_file_name(form_->config().name)) + ".json",
      "JSON (*.json)");
  if (!f.isEmpty()) save_config_to(f);
}

bool MainWindow::save_config_to(const QString& file) {
  try {
    form_->config().save(file.toStdString());
  } catch (const std::exception& e) {
    QMessageBox::warning(this, tr("Save"), QString::fromUtf8(e.what()));
    return false;
  }
  set_preset(QFileInfo(file).completeBaseName(), file);
  log(tr("saved %1").arg(file));
  return true;
}

void MainWindow::open_config() {
  const QString f = QFileDialog::getOpenFileName(this, tr("Open experiment"), presets_dir(), "JSON (*.json)");
  if (!f.isEmpty()) open_config_from(f);
}

bool MainWindow::open_config_from(const QString& file) {
  try {
    form_->set_config(ExperimentConfig::load(file.toStdString()));
  } catch (const std::exception& e) {
    QMessageBox::warning(this, tr("Open"), QString::fromUtf8(e.what()));
    return false;
  }
  set_preset(QFileInfo(file).completeBaseName(), file);
  return true;
}

void MainWindow::update_start_enabled() {
  const bool busy = training();
  const bool ok = form_->valid();
  start_->setEnabled(ok && !busy);
  start_action_->setEnabled(ok && !busy);
  pause_action_->setEnabled(busy);
  stop_action_->setEnabled(busy);
  if (busy) {
    start_reason_->setText(tr("A run is in progress (%1).").arg(run_label_));
  } else if (!ok) {
    start_reason_->setText(tr("<span style='color:#d62728'>Cannot start: %1</span>")
                               .arg(form_->problem_text(form_->problems().begin()->first).toHtmlEscaped()));
  } else if (needs_pretraining(form_->config())) {
    const ExperimentConfig pre = experiment_preset("pretrain-" + form_->config().model.preset);
    start_reason_->setText(
        tr("<span style='color:#b35900'><b>The %1 base model is not cached yet:</b> Start pretrains it first, as a "
           "run of its own (%2 steps, a few minutes on a CPU; plotted, stoppable and resumable like any run), then "
           "starts this experiment.</span>")
            .arg(QString::fromStdString(pre.model.preset))
            .arg(pre.train.steps));
  } else {
    start_reason_->setText(tr("Ready."));
  }
  start_->setToolTip(ok ? tr("Start the Setup experiment now (F5)") : start_reason_->text());
}

void MainWindow::log(const QString& line) { log_->appendPlainText(line); }

void MainWindow::start_run(const ExperimentConfig& config, const QString& resume_state, qint64 parent_run) {
  if (training()) return;
  if (resume_state.isEmpty() && !form_->valid()) return;
  start_item(queue_->insert_before(0, config, QString(), resume_state, parent_run));
}

void MainWindow::start_item(qint64 key) {
  if (training()) return;
  const QueueItem* item = queue_->item(key);
  if (!item) return;
  // A base that is not cached is pretrained first, as its own run.
  if (item->resume_state.isEmpty() && needs_pretraining(item->config)) {
    // Inserting moves the queue's items: nothing of `item` is read after it.
    const std::string preset = item->config.model.preset;
    const QString label = item->label;
    ExperimentConfig pre = experiment_preset("pretrain-" + preset);
    pre.train.device = item->config.train.device;
    after_pretrain_ = key;
    const qint64 pre_key = queue_->insert_before(
        key, pre, tr("pretrain the %1 base (for %2)").arg(QString::fromStdString(preset), label));
    log(tr("the %1 base is not cached: pretraining it first, as a run of its own; %2 starts when it is done")
            .arg(QString::fromStdString(preset), label));
    start_item(pre_key);
    return;
  }
  const ExperimentConfig config = item->config;
  const QString state = item->resume_state;
  const qint64 parent = item->parent_run;
  current_item_ = key;
  run_label_ = item->label;
  loss_->clear();
  memory_->clear();
  variant_->clear();
  stats_->clear();
  samples_->clear(config.train.samples > 0
                      ? tr("The first answers come at step %1.").arg(std::min<std::int64_t>(config.train.sample_every,
                                                                                             config.train.steps))
                      : tr("No samples in this run: set Samples during training in Setup."));
  // The layer statistics until the method reports something of its own
  // (plain LoRA and full fine-tuning never do).
  below_->setCurrentWidget(stats_);
  method_view_shown_ = false;
  history_.clear();
  run_id_ = 0;
  stopping_ = false;
  if (parent) load_parent_history(parent);
  progress_->setRange(0, static_cast<int>(config.train.steps));
  progress_->setValue(0);
  speed_->clear();
  worker_ = std::make_unique<TrainingWorker>(config, db_, state.toStdString(), parent);
  connect(worker_.get(), &TrainingWorker::queued, this, [this](qint64 run_id) {
    run_id_ = run_id;
    queue_->set_run_id(current_item_, run_id);
  });
  connect(worker_.get(), &TrainingWorker::started, this, &MainWindow::on_started);
  connect(worker_.get(), &TrainingWorker::step, this, &MainWindow::on_step);
  connect(worker_.get(), &TrainingWorker::finished, this, &MainWindow::on_finished);
  connect(worker_.get(), &TrainingWorker::notice, this, &MainWindow::log);
  connect(worker_.get(), &TrainingWorker::pretrain_progress, this, [this](qint64 step, qint64 total) {
    progress_->setRange(0, static_cast<int>(total));
    progress_->setValue(static_cast<int>(step));
    if (!stopping_) status_->setText(tr("Building the base model first (pretraining, step %1 of %2)...").arg(step).arg(total));
  });
  queue_->set_running(key, 0);
  start_->setEnabled(false);
  pause_->setEnabled(true);
  pause_->setChecked(false);
  stop_->setEnabled(true);
  status_->setText(tr("Preparing %1...").arg(run_label_));
  tabs_->setCurrentIndex(1);
  worker_->start();
  update_start_enabled();
}

// The run a resumed one continues: its curve up to where this one takes over.
void MainWindow::load_parent_history(qint64 parent_run) {
  try {
    Store store(db_);
    const RunData parent = load_run_data(store, parent_run);
    for (const MetricRow& m : parent.metrics) {
      if (std::isfinite(m.loss)) loss_->add_train_point(static_cast<double>(m.step), m.loss, m.lr);
      if (std::isfinite(m.eval_loss) || std::isfinite(m.accuracy))
        loss_->add_eval_point(static_cast<double>(m.step), m.eval_loss, m.accuracy);
      if (!m.layer_grad_norms.empty()) stats_->add_layer_norms(static_cast<double>(m.step), m.layer_grad_norms);
    }
    if (!parent.metrics.empty())
      loss_->add_marker(static_cast<double>(parent.metrics.back().step), tr("resumed from run %1").arg(parent_run));
  } catch (const std::exception& e) {
    log(tr("the curve of run %1 could not be read: %2").arg(parent_run).arg(QString::fromUtf8(e.what())));
  }
}

void MainWindow::stop_run() {
  if (!worker_ || !training()) return;
  worker_->request_stop();
  worker_->set_paused(false);
  stop_->setEnabled(false);
  stop_action_->setEnabled(false);
  stopping_ = true;
  // Stopping ends the queue's turn too: what waits, waits.
  if (queue_running_) pause_queue();
  const QueueItem* item = queue_->item(current_item_);
  status_->setText(tr("Stopping %1 after the current step; it is kept as a stopped, resumable run%2...")
                       .arg(run_label_)
                       .arg(item && item->config.adapter.is_adapter() ? tr(" with its adapter") : QString()));
}

void MainWindow::run_queue() {
  queue_running_ = true;
  queue_view_->set_running(true);
  if (!training()) start_next_if_any();
}

void MainWindow::pause_queue() {
  queue_running_ = false;
  queue_view_->set_running(false);
}

void MainWindow::start_next_if_any() {
  if (training()) return;
  // After a pretraining, the run that waited for it starts whether or not the queue runs.
  if (after_pretrain_ && queue_->item(after_pretrain_) &&
      queue_->item(after_pretrain_)->state == QueueItem::State::Waiting && !needs_pretraining(queue_->item(after_pretrain_)->config)) {
    start_item(std::exchange(after_pretrain_, 0));
    return;
  }
  if (!queue_running_) return;
  if (const QueueItem* next = queue_->next_waiting()) {
    start_item(next->key);
  } else {
    pause_queue();
    log(tr("the queue is done"));
  }
}

void MainWindow::on_started(const lwb::RunInfo& info, qint64 run_id) {
  run_id_ = run_id;
  progress_->setRange(0, static_cast<int>(info.config.train.steps));
  memory_->set_snapshot(info.memory);
  log(tr("run %1 (%2): %3 on %4, %5 trainable of %6 parameters")
          .arg(run_id)
          .arg(run_label_, QString::fromStdString(info.dataset), QString::fromStdString(info.backend))
          .arg(info.trainable_params)
          .arg(info.model_params));
}

void MainWindow::on_step(const lwb::StepEvent& e) {
  history_.push_back(e);
  const double step = static_cast<double>(e.step);
  loss_->add_train_point(step, e.loss, e.lr);
  if (e.eval) loss_->add_eval_point(step, e.eval->loss, e.eval->accuracy);
  if (e.memory) memory_->set_snapshot(*e.memory);
  if (e.device_total_bytes > 0) memory_->add_device_point(step, e.device_used_bytes, e.device_total_bytes);
  if (!e.layer_grad_norms.empty()) stats_->add_layer_norms(step, e.layer_grad_norms);
  samples_->add(e.step, e.samples);
  for (const VariantEvent& v : e.variant_events) {
    if (!method_view_shown_ && !v.kind.starts_with("train.")) {
      below_->setCurrentWidget(variant_);
      method_view_shown_ = true;
    }
    variant_->add_event(v, step);
    stats_->add_event(v);
    if (const std::string marker = event_marker(v.kind); !marker.empty())
      loss_->add_marker(step, QString::fromStdString(marker));
  }
  progress_->setValue(static_cast<int>(e.step));
  const double eta = e.step > 0 ? e.elapsed_s / e.step * static_cast<double>(e.total_steps - e.step) : NAN;
  speed_->setText(tr("%1 tokens/s, elapsed %2, ETA %3")
                      .arg(e.tokens_per_s, 0, 'f', 0)
                      .arg(duration(e.elapsed_s), duration(eta)));
  QString text = tr("%1: step %2/%3  loss %4  lr %5  grad-norm %6")
                     .arg(run_label_)
                     .arg(e.step)
                     .arg(e.total_steps)
                     .arg(e.loss, 0, 'f', 4)
                     .arg(e.lr, 0, 'g', 3)
                     .arg(e.grad_norm, 0, 'f', 3);
  if (e.eval) {
    text += tr("  held-out %1").arg(e.eval->loss, 0, 'f', 4);
    if (std::isfinite(e.eval->accuracy)) text += tr("  exact match %1%").arg(100 * e.eval->accuracy, 0, 'f', 1);
  }
  // Pausing and stopping say so until the run moves on or ends.
  if (!stopping_ && (!worker_ || !worker_->paused())) status_->setText(text);
}

void MainWindow::on_finished(const lwb::RunResult& r, qint64 run_id, const QString& adapter) {
  last_result_ = r;
  if (run_id) run_id_ = run_id;
  const double last = static_cast<double>(r.steps_done);
  for (const VariantEvent& v : r.summary) variant_->add_event(v, last);
  if (r.memory.total > 0) memory_->set_run_ended(r.memory);
  // The evaluation a stopped run ends with belongs on the curve and in the CSV.
  const bool final_eval = std::isfinite(r.final_eval.loss) || std::isfinite(r.final_eval.accuracy);
  if (final_eval && !history_.empty() && history_.back().step == r.steps_done && !history_.back().eval) {
    history_.back().eval = r.final_eval;
    loss_->add_eval_point(last, r.final_eval.loss, r.final_eval.accuracy);
  }
  QString text = tr("Run %1 (%2) %3 after %4 steps")
                     .arg(run_id_)
                     .arg(run_label_, QString::fromUtf8(run_status_name(r.status)))
                     .arg(r.steps_done);
  if (std::isfinite(r.final_eval.loss)) text += tr("; held-out loss %1").arg(r.final_eval.loss, 0, 'f', 4);
  if (std::isfinite(r.final_eval.accuracy)) text += tr(", exact match %1%").arg(100 * r.final_eval.accuracy, 0, 'f', 1);
  if (!adapter.isEmpty()) text += tr("; adapter stored as \"%1\"").arg(adapter);
  if (r.status == RunStatus::Stopped) text += tr(". Resume it from the Runs tab.");
  if (r.status == RunStatus::Diverged) {
    // Plainly: the adapter is no result, only a record.
    text = tr("Run %1 %2. The training cannot recover: lower optimizer.lr (or keep optimizer.grad_clip on) and "
              "start again.")
               .arg(run_id_)
               .arg(QString::fromStdString(r.error));
    if (!adapter.isEmpty())
      text += tr(" Its adapter is kept in the library as \"%1\", marked diverged; it is not a usable result.")
                  .arg(adapter);
  }
  status_->setText(text);
  log(text);
  queue_->set_ended(current_item_, queue_state_of(r.status),
                    QString::fromUtf8(run_status_name(r.status)) +
                        (std::isfinite(r.final_eval.loss) ? tr(", held-out %1").arg(r.final_eval.loss, 0, 'f', 4)
                                                          : QString()));
  if (r.status == RunStatus::Failed || r.status == RunStatus::Diverged) {
    const bool failed = r.status == RunStatus::Failed;
    if (failed) log(tr("error: %1").arg(QString::fromStdString(r.error)));
    // Not modal: the window stays usable and the message stays readable.
    auto* box = new QMessageBox(QMessageBox::Warning, failed ? tr("Run failed") : tr("Run diverged"),
                                failed ? QString::fromStdString(r.error) : text, QMessageBox::Ok, this);
    box->setObjectName(failed ? "run_failed_message" : "run_diverged_message");
    box->setAttribute(Qt::WA_DeleteOnClose);
    box->open();
  }
  if (after_pretrain_ && r.status != RunStatus::Finished) {
    log(tr("%1 waits in the queue for its base; resume the pretraining (Runs tab) or press Start again")
            .arg(queue_->item(after_pretrain_) ? queue_->item(after_pretrain_)->label : QString()));
    after_pretrain_ = 0;
  }
  pause_->setEnabled(false);
  pause_->setChecked(false);
  stop_->setEnabled(false);
  if (worker_) worker_->wait();
  current_item_ = 0;
  update_start_enabled();
  runs_->refresh();
  emit run_finished(run_id_);
  // The next run starts once everyone has seen this one end.
  QTimer::singleShot(0, this, &MainWindow::start_next_if_any);
}

bool MainWindow::export_plots(const QString& base) {
  bool ok = loss_->save_png(base + "-loss.png") && loss_->save_pdf(base + "-loss.pdf");
  ok = memory_->save_png(base + "-memory.png") && ok;
  if (variant_->rank_updates() > 0) ok = variant_->save_png(base + "-variant.png") && ok;
  log(ok ? tr("exported plots to %1-*.png/pdf").arg(base) : tr("could not write all plots to %1-*").arg(base));
  return ok;
}

bool MainWindow::export_csv(const QString& file) {
  QFile f(file);
  if (!f.open(QIODevice::WriteOnly | QIODevice::Truncate)) {
    log(tr("cannot write %1").arg(file));
    return false;
  }
  QTextStream out(&f);
  out << "step,loss,lr,grad_norm,tokens_per_s,elapsed_s,eval_loss,eval_accuracy\n";
  auto num = [](double v) { return std::isfinite(v) ? QString::number(v, 'g', 10) : QString(); };
  for (const StepEvent& e : history_)
    out << e.step << ',' << num(e.loss) << ',' << num(e.lr) << ',' << num(e.grad_norm) << ','
        << num(e.tokens_per_s) << ',' << num(e.elapsed_s) << ',' << (e.eval ? num(e.eval->loss) : QString()) << ','
        << (e.eval ? num(e.eval->accuracy) : QString()) << '\n';
  log(tr("exported %1 rows to %2").arg(history_.size()).arg(file));
  return true;
}

void MainWindow::closeEvent(QCloseEvent* event) {
  if (!compose_->confirm_discard()) {
    event->ignore();
    return;
  }
  // An evaluation or export cannot be interrupted and the window would wait
  // for it without a word: say so, and let the user choose.
  if (compose_->busy() || library_->busy()) {
    if (QMessageBox::question(this, tr("Job running"),
                              tr("A composition or library job is still running. Cancel it (an evaluation or export "
                                 "finishes first) and quit?")) != QMessageBox::Yes) {
      event->ignore();
      return;
    }  // the views' workers cancel and wait as they go
    library_->cancel();
  }
  if (compare_->busy() || studies_->busy()) {
    if (QMessageBox::question(this, tr("Comparison running"),
                              tr("A comparison or study is still running. Stop it (the runs so far stay stored) and "
                                 "quit?")) != QMessageBox::Yes) {
      event->ignore();
      return;
    }  // the views' workers stop and wait as they go
  }
  if (training()) {
    const auto answer = QMessageBox::question(
        this, tr("Training is running"), tr("Stop the run (it is kept as a stopped run with its adapter) and quit?"));
    if (answer != QMessageBox::Yes) {
      event->ignore();
      return;
    }
    pause_queue();
    worker_->request_stop();
    worker_->set_paused(false);
    worker_->wait();
  }
  event->accept();
}

}  // namespace lwb::ui
