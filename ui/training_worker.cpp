#include "ui/training_worker.h"

#include <sys/resource.h>
#include <unistd.h>

#include "core/adapters/adapter_state.h"
#include "core/io/peft.h"
#include "core/store/store.h"
#include "core/store/store_sink.h"
#include "core/common/paths.h"
#include "core/model/checkpoint.h"
#include "core/train/trainer.h"

namespace lwb::ui {

namespace {
// Re-emits engine events as queued signals.
class SignalSink : public TrainerSink {
 public:
  SignalSink(TrainingWorker* w, const StoreSink& store) : w_(w), store_(store) {}
  void on_start(const RunInfo& i) override { emit w_->started(i, store_.run_id()); }
  void on_step(const StepEvent& e) override { emit w_->step(e); }

 private:
  TrainingWorker* w_;
  const StoreSink& store_;
};

class PretrainSink : public TrainerSink {
 public:
  explicit PretrainSink(TrainingWorker* w) : w_(w) {}
  void on_step(const StepEvent& e) override {
    if (e.step % 10 == 0 || e.step == e.total_steps) emit w_->pretrain_progress(e.step, e.total_steps);
  }

 private:
  TrainingWorker* w_;
};
}  // namespace

TrainingWorker::TrainingWorker(ExperimentConfig config, std::filesystem::path db,
                               std::filesystem::path resume_state, qint64 parent_run_id, QObject* parent)
    : QObject(parent),
      config_(std::move(config)),
      db_(std::move(db)),
      resume_state_(std::move(resume_state)),
      parent_run_id_(parent_run_id) {
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

void TrainingWorker::keep_weights(Trainer& trainer, Store& store, std::int64_t run_id, const RunResult& result) {
  if (result.status == RunStatus::Failed) return;
  try {
    if (is_base_pretraining(config_)) {
      if (result.status != RunStatus::Finished) return;  // its saved state resumes it
      const std::filesystem::path base = save_pretrained_base(trainer, result, {});
      emit notice(tr("The %1 base is ready at %2; runs on it start at once from now on.")
                      .arg(QString::fromStdString(config_.model.preset), QString::fromStdString(base.string())));
    } else if (!config_.adapter.is_adapter()) {
      const std::filesystem::path file = store.model_file(run_id);
      std::filesystem::create_directories(file.parent_path());
      save_base_checkpoint(trainer.model(), file, {{"lwb.run", std::to_string(run_id)}});
    }
  } catch (const std::exception& e) {
    emit notice(tr("The trained weights of run %1 could not be kept: %2").arg(run_id).arg(QString::fromUtf8(e.what())));
  }
}

void TrainingWorker::run() {
  // A slightly lower priority for this thread and the OpenMP threads it
  // spawns keeps the window responsive while training uses every core.
  setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), 5);
  RunResult failure;
  failure.status = RunStatus::Failed;
  std::int64_t run_id = 0;
  try {
    Store store(db_);
    // The run is recorded before anything can fail, so a bad dataset or an
    // out-of-memory at start-up still leaves a failed run with its message.
    run_id = store.queue_run(store.create_experiment(config_.name, config_), config_.train.device,
                             parent_run_id_ ? std::optional<std::int64_t>(parent_run_id_) : std::nullopt);
    emit queued(run_id);
    try {
      PretrainSink pretrain(this);
      TrainerEnvironment env;
      env.notice = [this](const std::string& m) { emit notice(QString::fromStdString(m)); };
      env.pretrain_sink = &pretrain;
      Trainer trainer(config_, env);
      trainer.set_state_file(store.state_file(run_id));
      StoreSink::Options options;
      options.warning = env.notice;
      std::optional<KeptAdapter> kept;
      options.adapter = [&](std::int64_t id, const RunResult&) -> std::optional<KeptAdapter> {
        if (!config_.adapter.is_adapter()) return std::nullopt;
        kept = KeptAdapter{config_.name + "-run" + std::to_string(id), trainer.adapter_state(), trainer.dataset().name};
        return kept;
      };
      // From here on the queued run's lease is renewed (pretraining the base may take minutes).
      StoreSink store_sink(store, run_id, options);
      if (!resume_state_.empty()) trainer.resume(resume_state_);
      SignalSink relay(this, store_sink);
      FanoutSink sinks;
      sinks.add(&store_sink);
      sinks.add(&relay);
      const RunResult result = trainer.run(sinks, RunControl{&stop_, &pause_});
      keep_weights(trainer, store, run_id, result);
      if (!store_sink.finish_error().empty())
        emit notice(tr("The store could not record the end of run %1: %2")
                        .arg(run_id)
                        .arg(QString::fromStdString(store_sink.finish_error())));
      // The store could not keep the adapter (a full disk): it goes to a folder beside the store instead.
      if (kept && store_sink.adapter_name().empty()) {
        const std::filesystem::path rescue =
            store.file().string() + "-rescued/" + safe_file_name(kept->name);
        try {
          io::write_peft_folder(rescue, kept->state);
          emit notice(tr("The adapter was written to %1 instead; import it into the library (Import...) once the "
                         "store can take it")
                          .arg(QString::fromStdString(rescue.string())));
        } catch (const std::exception& e) {
          emit notice(tr("The adapter could not be kept anywhere: %1").arg(QString::fromUtf8(e.what())));
        }
      }
      emit finished(result, run_id, QString::fromStdString(store_sink.adapter_name()));
      thread_.quit();
      return;
    } catch (const std::exception& e) {
      failure.error = e.what();
      store.finish_run(run_id, failure);
    }
  } catch (const std::exception& e) {
    failure.error = e.what();  // the store itself failed (locked, newer schema, ...)
  }
  emit finished(failure, run_id, QString());
  thread_.quit();
}

}  // namespace lwb::ui
