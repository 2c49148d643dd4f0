#include "ui/main_window.h"

#include <QCloseEvent>
#include <QComboBox>
#include <QDir>
#include <QFile>
#include <QFileDialog>
#include <QHBoxLayout>
#include <QInputDialog>
#include <QLabel>
#include <QMessageBox>
#include <QPlainTextEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QSplitter>
#include <QStandardPaths>
#include <QTabWidget>
#include <QTextStream>
#include <QToolBar>
#include <QVBoxLayout>
#include <cmath>

#include "core/store/store.h"
#include "core/common/paths.h"
#include "ui/adapter_library.h"
#include "ui/comparison_view.h"
#include "ui/compose_view.h"
#include "ui/experiment_form.h"
#include "ui/loss_plot.h"
#include "ui/memory_view.h"
#include "ui/planner_view.h"
#include "ui/runs_view.h"
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
}  // namespace

MainWindow::MainWindow(std::filesystem::path db, QWidget* parent)
    : QMainWindow(parent), db_(db.empty() ? Store::default_path() : std::move(db)) {
  setWindowTitle(tr("LoRA Workbench"));
  tabs_ = new QTabWidget;

  // Setup.
  auto* setup = new QWidget;
  auto* setup_layout = new QVBoxLayout(setup);
  form_ = new ExperimentForm;
  start_reason_ = new QLabel;
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
  speed_ = new QLabel;
  progress_row->addWidget(progress_, 2);
  progress_row->addWidget(speed_, 1);
  loss_ = new LossPlot;
  variant_ = new VariantView;
  log_ = new QPlainTextEdit;
  log_->setObjectName("run_log");
  log_->setReadOnly(true);
  log_->setMaximumBlockCount(2000);
  log_->setMaximumHeight(90);
  auto* split = new QSplitter(Qt::Vertical);
  split->addWidget(loss_);
  split->addWidget(variant_);
  split->setStretchFactor(0, 3);
  split->setStretchFactor(1, 1);
  monitor_layout->addLayout(progress_row);
  monitor_layout->addWidget(status_);
  monitor_layout->addWidget(split, 1);
  monitor_layout->addWidget(log_);
  tabs_->addTab(monitor, tr("Monitor"));

  memory_ = new MemoryView;
  tabs_->addTab(memory_, tr("Memory"));
  runs_ = new RunsView(db_);
  tabs_->addTab(runs_, tr("Runs"));
  compare_ = new ComparisonView(db_, ComparisonView::Kind::Compare);
  tabs_->addTab(compare_, tr("Compare"));
  studies_ = new ComparisonView(db_, ComparisonView::Kind::Study);
  tabs_->addTab(studies_, tr("Studies"));
  compose_ = new ComposeView(db_);
  tabs_->addTab(compose_, tr("Compose"));
  // A finished run may have added an adapter to the library.
  connect(this, &MainWindow::run_finished, compose_, [this] { compose_->library()->refresh(); });
  planner_ = new PlannerView;
  tabs_->addTab(planner_, tr("Planner"));
  setCentralWidget(tabs_);
  build_toolbar();

  connect(form_, &ExperimentForm::config_changed, this, &MainWindow::update_start_enabled);
  connect(runs_, &RunsView::clone_requested, this, [this](const ExperimentConfig& c) {
    form_->set_config(c);
    tabs_->setCurrentIndex(0);
  });
  connect(runs_, &RunsView::resume_requested, this, [this](const ExperimentConfig& c, const QString& state) {
    form_->set_config(c);
    log(tr("resuming from %1").arg(state));
    start_run(state.toStdString());
  });
  connect(runs_, &RunsView::error, this, [this](const QString& m) { log(tr("error: %1").arg(m)); });
  connect(tabs_, &QTabWidget::currentChanged, this, [this](int i) {
    if (tabs_->widget(i) == runs_) runs_->refresh();
  });
  update_start_enabled();
}

MainWindow::~MainWindow() = default;

void MainWindow::build_toolbar() {
  auto* bar = addToolBar(tr("Experiment"));
  bar->setMovable(false);
  presets_ = new QComboBox;
  presets_->setObjectName("presets");
  presets_->setMinimumContentsLength(16);
  bar->addWidget(new QLabel(tr(" Preset: ")));
  bar->addWidget(presets_);
  refresh_presets();
  connect(presets_, &QComboBox::activated, this, [this](int) { load_preset(presets_->currentText()); });
  bar->addAction(tr("Open..."), this, &MainWindow::open_config);
  bar->addAction(tr("Save as..."), this, &MainWindow::save_config);
  bar->addAction(tr("Duplicate"), this, [this] {
    ExperimentConfig c = form_->config();
    c.name += "-copy";
    form_->set_config(c);
    log(tr("duplicated as %1; change a field and start it").arg(QString::fromStdString(c.name)));
  });
  bar->addSeparator();
  start_ = new QPushButton(tr("Start"));
  start_->setObjectName("start");
  pause_ = new QPushButton(tr("Pause"));
  pause_->setObjectName("pause");
  pause_->setCheckable(true);
  stop_ = new QPushButton(tr("Stop"));
  stop_->setObjectName("stop");
  pause_->setEnabled(false);
  stop_->setEnabled(false);
  bar->addWidget(start_);
  bar->addWidget(pause_);
  bar->addWidget(stop_);
  bar->addSeparator();
  bar->addAction(tr("Export plots..."), this, [this] {
    const QString base = QFileDialog::getSaveFileName(this, tr("Export plots (PNG and PDF)"), "lora-run");
    if (!base.isEmpty()) export_plots(base);
  });
  bar->addAction(tr("Export metrics CSV..."), this, [this] {
    const QString f = QFileDialog::getSaveFileName(this, tr("Export metrics"), "metrics.csv", "CSV (*.csv)");
    if (!f.isEmpty()) export_csv(f);
  });
  connect(start_, &QPushButton::clicked, this, [this] { start_run(); });
  connect(pause_, &QPushButton::toggled, this, [this](bool paused) {
    if (!worker_) return;
    worker_->set_paused(paused);
    pause_->setText(paused ? tr("Resume") : tr("Pause"));
    status_->setText(paused ? tr("Paused after the current step.") : tr("Resumed."));
  });
  connect(stop_, &QPushButton::clicked, this, [this] {
    if (!worker_) return;
    worker_->request_stop();
    worker_->set_paused(false);
    stop_->setEnabled(false);
    status_->setText(tr("Stopping after the current step; the adapter will be saved."));
  });
}

void MainWindow::refresh_presets() {
  presets_->clear();
  for (const auto& n : experiment_preset_names())
    if (n.rfind("pretrain", 0) != 0) presets_->addItem(QString::fromStdString(n));
  const QDir dir(presets_dir());
  for (const QString& f : dir.entryList({"*.json"}, QDir::Files, QDir::Name))
    presets_->addItem(QFileInfo(f).completeBaseName(), dir.filePath(f));
}

void MainWindow::load_preset(const QString& name) {
  try {
    const QVariant file = presets_->currentData();
    form_->set_config(file.isValid() ? ExperimentConfig::load(file.toString().toStdString())
                                     : experiment_preset(name.toStdString()));
  } catch (const std::exception& e) {
    QMessageBox::warning(this, tr("Preset"), QString::fromUtf8(e.what()));
  }
}

void MainWindow::save_config() {
  QDir().mkpath(presets_dir());
  const QString f = QFileDialog::getSaveFileName(
      this, tr("Save experiment"), presets_dir() + "/" + QString::fromStdString(safe_file_name(form_->config().name)) + ".json",
      "JSON (*.json)");
  if (f.isEmpty()) return;
  try {
    form_->config().save(f.toStdString());
    refresh_presets();
    log(tr("saved %1").arg(f));
  } catch (const std::exception& e) {
    QMessageBox::warning(this, tr("Save"), QString::fromUtf8(e.what()));
  }
}

void MainWindow::open_config() {
  const QString f = QFileDialog::getOpenFileName(this, tr("Open experiment"), presets_dir(), "JSON (*.json)");
  if (f.isEmpty()) return;
  try {
    form_->set_config(ExperimentConfig::load(f.toStdString()));
  } catch (const std::exception& e) {
    QMessageBox::warning(this, tr("Open"), QString::fromUtf8(e.what()));
  }
}

void MainWindow::update_start_enabled() {
  const bool busy = training();
  const bool ok = form_->valid();
  start_->setEnabled(ok && !busy);
  if (busy)
    start_reason_->setText(tr("A run is in progress."));
  else if (!ok)
    start_reason_->setText(tr("<span style='color:#d62728'>Cannot start: %1</span>")
                               .arg(QString::fromStdString(form_->problems().begin()->second).toHtmlEscaped()));
  else
    start_reason_->setText(tr("Ready."));
  start_->setToolTip(ok ? QString() : start_reason_->text());
}

void MainWindow::log(const QString& line) { log_->appendPlainText(line); }

void MainWindow::start_run(const std::filesystem::path& resume_state) {
  if (training() || !form_->valid()) return;
  const ExperimentConfig config = form_->config();
  loss_->clear();
  memory_->clear();
  variant_->clear();
  history_.clear();
  run_id_ = 0;
  progress_->setRange(0, static_cast<int>(config.train.steps));
  progress_->setValue(0);
  worker_ = std::make_unique<TrainingWorker>(config, db_, resume_state);
  connect(worker_.get(), &TrainingWorker::started, this, &MainWindow::on_started);
  connect(worker_.get(), &TrainingWorker::step, this, &MainWindow::on_step);
  connect(worker_.get(), &TrainingWorker::finished, this, &MainWindow::on_finished);
  connect(worker_.get(), &TrainingWorker::notice, this, &MainWindow::log);
  connect(worker_.get(), &TrainingWorker::pretrain_progress, this, [this](qint64 step, qint64 total) {
    progress_->setRange(0, static_cast<int>(total));
    progress_->setValue(static_cast<int>(step));
    status_->setText(tr("Building the base model first (pretraining, step %1 of %2)...").arg(step).arg(total));
  });
  start_->setEnabled(false);
  pause_->setEnabled(true);
  pause_->setChecked(false);
  stop_->setEnabled(true);
  status_->setText(tr("Preparing %1...").arg(QString::fromStdString(config.name)));
  tabs_->setCurrentIndex(1);
  worker_->start();
  update_start_enabled();
}

void MainWindow::on_started(const lwb::RunInfo& info, qint64 run_id) {
  run_id_ = run_id;
  progress_->setRange(0, static_cast<int>(info.config.train.steps));
  progress_->setValue(0);
  memory_->set_snapshot(info.memory);
  log(tr("run %1: %2 on %3, %4 trainable of %5 parameters")
          .arg(run_id)
          .arg(QString::fromStdString(info.dataset), QString::fromStdString(info.backend))
          .arg(info.trainable_params)
          .arg(info.model_params));
}

void MainWindow::on_step(const lwb::StepEvent& e) {
  history_.push_back(e);
  loss_->add_train_point(static_cast<double>(e.step), e.loss, e.lr);
  if (e.eval) loss_->add_eval_point(static_cast<double>(e.step), e.eval->loss, e.eval->accuracy);
  if (e.memory) memory_->set_snapshot(*e.memory);
  if (e.device_total_bytes > 0)
    memory_->add_device_point(static_cast<double>(e.step), e.device_used_bytes, e.device_total_bytes);
  for (const VariantEvent& v : e.variant_events) {
    variant_->add_event(v);
    if (v.kind == "relora.reset") loss_->add_marker(static_cast<double>(e.step), tr("ReLoRA reset"));
  }
  progress_->setValue(static_cast<int>(e.step));
  const double eta = e.step > 0 ? e.elapsed_s / e.step * static_cast<double>(e.total_steps - e.step) : NAN;
  speed_->setText(tr("%1 tokens/s, elapsed %2, ETA %3")
                      .arg(e.tokens_per_s, 0, 'f', 0)
                      .arg(duration(e.elapsed_s), duration(eta)));
  QString text = tr("step %1/%2  loss %3  lr %4  grad-norm %5")
                     .arg(e.step)
                     .arg(e.total_steps)
                     .arg(e.loss, 0, 'f', 4)
                     .arg(e.lr, 0, 'e', 2)
                     .arg(e.grad_norm, 0, 'f', 3);
  if (e.eval) {
    text += tr("  held-out %1").arg(e.eval->loss, 0, 'f', 4);
    if (std::isfinite(e.eval->accuracy)) text += tr("  exact match %1%").arg(100 * e.eval->accuracy, 0, 'f', 1);
  }
  if (!worker_ || !worker_->paused()) status_->setText(text);
}

void MainWindow::on_finished(const lwb::RunResult& r, qint64 run_id, const QString& adapter) {
  last_result_ = r;
  if (run_id) run_id_ = run_id;
  for (const VariantEvent& v : r.summary) variant_->add_event(v);
  if (r.memory.total > 0) memory_->set_snapshot(r.memory);
  QString text = tr("Run %1 %2 after %3 steps").arg(run_id_).arg(QString::fromUtf8(run_status_name(r.status))).arg(r.steps_done);
  if (std::isfinite(r.final_eval.loss)) text += tr("; held-out loss %1").arg(r.final_eval.loss, 0, 'f', 4);
  if (std::isfinite(r.final_eval.accuracy)) text += tr(", exact match %1%").arg(100 * r.final_eval.accuracy, 0, 'f', 1);
  if (!adapter.isEmpty()) text += tr("; adapter stored as \"%1\"").arg(adapter);
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
  pause_->setEnabled(false);
  pause_->setChecked(false);
  stop_->setEnabled(false);
  if (worker_) worker_->wait();
  update_start_enabled();
  runs_->refresh();
  emit run_finished(run_id_);
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
  if (compose_->busy()) {
    if (QMessageBox::question(this, tr("Composition job running"),
                              tr("A composition job is still running. Cancel it (an evaluation or export finishes "
                                 "first) and quit?")) != QMessageBox::Yes) {
      event->ignore();
      return;
    }  // the compose view's worker cancels and waits as it goes
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
    worker_->request_stop();
    worker_->set_paused(false);
    worker_->wait();
  }
  event->accept();
}

}  // namespace lwb::ui
