#include "ui/main_window.h"

#include <qcustomplot.h>

#include <QCloseEvent>
#include <QComboBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QMessageBox>
#include <QPlainTextEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QTimer>
#include <QVBoxLayout>
#include <cmath>

namespace lwb::ui {

MainWindow::MainWindow(QWidget* parent) : QMainWindow(parent) {
  setWindowTitle("LoRA Workbench");
  auto* central = new QWidget(this);
  auto* layout = new QVBoxLayout(central);
  auto* controls = new QHBoxLayout;
  preset_ = new QComboBox;
  for (const auto& name : experiment_preset_names())
    if (name.rfind("pretrain", 0) != 0) preset_->addItem(QString::fromStdString(name));
  start_ = new QPushButton(tr("Start"));
  stop_ = new QPushButton(tr("Stop"));
  stop_->setEnabled(false);
  progress_ = new QProgressBar;
  status_ = new QLabel(tr("Pick a preset and press Start."));
  controls->addWidget(new QLabel(tr("Preset:")));
  controls->addWidget(preset_);
  controls->addWidget(start_);
  controls->addWidget(stop_);
  controls->addWidget(progress_, 1);
  layout->addLayout(controls);
  layout->addWidget(status_);

  plot_ = new QCustomPlot;
  plot_->setMinimumSize(640, 320);
  plot_->addGraph();  // train loss
  plot_->graph(0)->setName(tr("train loss"));
  plot_->addGraph();  // eval loss
  plot_->graph(1)->setName(tr("held-out loss"));
  plot_->graph(1)->setPen(QPen(Qt::red));
  plot_->graph(1)->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCircle, 5));
  plot_->xAxis->setLabel(tr("step"));
  plot_->yAxis->setLabel(tr("loss"));
  plot_->legend->setVisible(true);
  layout->addWidget(plot_, 1);

  log_ = new QPlainTextEdit;
  log_->setReadOnly(true);
  log_->setMaximumBlockCount(2000);
  log_->setMaximumHeight(120);
  layout->addWidget(log_);
  setCentralWidget(central);

  // Coalesce replots to ~30 Hz however fast events arrive.
  replot_timer_ = new QTimer(this);
  replot_timer_->setInterval(33);
  connect(replot_timer_, &QTimer::timeout, this, [this] {
    if (!dirty_) return;
    dirty_ = false;
    plot_->rescaleAxes();
    plot_->replot(QCustomPlot::rpQueuedReplot);
  });
  replot_timer_->start();

  connect(start_, &QPushButton::clicked, this, &MainWindow::start_run);
  connect(stop_, &QPushButton::clicked, this, [this] {
    if (worker_) worker_->request_stop();
    stop_->setEnabled(false);
    status_->setText(tr("Stopping after the current step..."));
  });
}

MainWindow::~MainWindow() = default;

void MainWindow::log(const QString& line) { log_->appendPlainText(line); }

void MainWindow::start_run() {
  ExperimentConfig config;
  try {
    config = experiment_preset(preset_->currentText().toStdString());
    config.validate();
  } catch (const std::exception& e) {
    QMessageBox::warning(this, tr("Invalid experiment"), QString::fromUtf8(e.what()));
    return;
  }
  plot_->graph(0)->data()->clear();
  plot_->graph(1)->data()->clear();
  progress_->setRange(0, static_cast<int>(config.train.steps));
  progress_->setValue(0);
  worker_ = std::make_unique<TrainingWorker>(config);
  connect(worker_.get(), &TrainingWorker::started, this, &MainWindow::on_started);
  connect(worker_.get(), &TrainingWorker::step, this, &MainWindow::on_step);
  connect(worker_.get(), &TrainingWorker::finished, this, &MainWindow::on_finished);
  connect(worker_.get(), &TrainingWorker::notice, this, &MainWindow::log);
  connect(worker_.get(), &TrainingWorker::failed, this, [this](const QString& msg) {
    log(tr("error: %1").arg(msg));
    status_->setText(tr("Could not start: %1").arg(msg));
    start_->setEnabled(true);
    stop_->setEnabled(false);
  });
  start_->setEnabled(false);
  stop_->setEnabled(true);
  status_->setText(tr("Preparing %1...").arg(preset_->currentText()));
  worker_->start();
}

void MainWindow::on_started(const lwb::RunInfo& info) {
  log(tr("%1 on %2: %3 trainable of %4 parameters")
          .arg(QString::fromStdString(info.dataset), QString::fromStdString(info.backend))
          .arg(info.trainable_params)
          .arg(info.model_params));
}

void MainWindow::on_step(const lwb::StepEvent& e) {
  plot_->graph(0)->addData(static_cast<double>(e.step), e.loss);
  if (e.eval) plot_->graph(1)->addData(static_cast<double>(e.step), e.eval->loss);
  dirty_ = true;
  progress_->setValue(static_cast<int>(e.step));
  QString text = tr("step %1/%2  loss %3  %4 tokens/s")
                     .arg(e.step)
                     .arg(e.total_steps)
                     .arg(e.loss, 0, 'f', 4)
                     .arg(e.tokens_per_s, 0, 'f', 0);
  if (e.eval && std::isfinite(e.eval->accuracy))
    text += tr("  exact match %1%").arg(100 * e.eval->accuracy, 0, 'f', 1);
  status_->setText(text);
}

void MainWindow::on_finished(const lwb::RunResult& r) {
  QString text = tr("Run %1 after %2 steps; held-out loss %3")
                     .arg(QString::fromUtf8(run_status_name(r.status)))
                     .arg(r.steps_done)
                     .arg(r.final_eval.loss, 0, 'f', 4);
  if (!r.error.empty()) text += " — " + QString::fromStdString(r.error);
  status_->setText(text);
  log(text);
  start_->setEnabled(true);
  stop_->setEnabled(false);
}

void MainWindow::closeEvent(QCloseEvent* event) {
  if (worker_ && worker_->running()) {
    const auto answer = QMessageBox::question(this, tr("Training is running"),
                                              tr("Stop the run and quit?"));
    if (answer != QMessageBox::Yes) {
      event->ignore();
      return;
    }
    worker_->request_stop();
    worker_->wait();
  }
  event->accept();
}

}  // namespace lwb::ui
