#include "ui/training_worker.h"

#include "core/train/trainer.h"

namespace lwb::ui {

namespace {
// Re-emits engine events as queued signals.
class SignalSink : public TrainerSink {
 public:
  explicit SignalSink(TrainingWorker* w) : w_(w) {}
  void on_start(const RunInfo& i) override { emit w_->started(i); }
  void on_step(const StepEvent& e) override { emit w_->step(e); }
  void on_finish(const RunResult& r) override { emit w_->finished(r); }

 private:
  TrainingWorker* w_;
};
}  // namespace

TrainingWorker::TrainingWorker(ExperimentConfig config, QObject* parent)
    : QObject(parent), config_(std::move(config)) {
  qRegisterMetaType<lwb::RunInfo>();
  qRegisterMetaType<lwb::StepEvent>();
  qRegisterMetaType<lwb::RunResult>();
  connect(&thread_, &QThread::started, this, [this] { run(); }, Qt::DirectConnection);
}

TrainingWorker::~TrainingWorker() {
  stop_ = true;
  thread_.quit();
  thread_.wait();
}

void TrainingWorker::start() { thread_.start(); }

void TrainingWorker::run() {
  try {
    TrainerEnvironment env;
    env.notice = [this](const std::string& m) { emit notice(QString::fromStdString(m)); };
    Trainer trainer(config_, env);
    SignalSink sink(this);
    trainer.run(sink, RunControl{&stop_, &pause_});
  } catch (const std::exception& e) {
    emit failed(QString::fromUtf8(e.what()));
  }
  thread_.quit();
}

}  // namespace lwb::ui
