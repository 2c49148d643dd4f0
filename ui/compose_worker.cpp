#include "ui/compose_worker.h"

#include <memory>

#include "core/common/errors.h"
#include "core/compose/library.h"
#include "core/io/peft.h"
#include "core/store/adapter_transfer.h"
#include "core/store/store.h"

namespace lwb::ui {

namespace {

using compose::CompositionSession;
using compose::Member;
using compose::SessionOptions;

// One line per member run every so often, so a long demo visibly moves.
class TrainingLines : public TrainerSink {
 public:
  TrainingLines(ComposeWorker* w, std::string adapter) : w_(w), adapter_(std::move(adapter)) {}
  void on_step(const StepEvent& e) override {
    if (e.step % 50 != 0 && e.step != e.total_steps) return;
    emit w_->notice(QString("%1: step %2/%3, loss %4")
                        .arg(QString::fromStdString(adapter_))
                        .arg(e.step)
                        .arg(e.total_steps)
                        .arg(e.loss, 0, 'f', 4));
  }

 private:
  ComposeWorker* w_;
  std::string adapter_;
};

}  // namespace

ComposeWorker::ComposeWorker(std::filesystem::path db, QObject* parent)
    : BackgroundWorker(parent), db_(std::move(db)) {
  qRegisterMetaType<lwb::compose::Trial>();
  qRegisterMetaType<lwb::compose::SearchResult>();
  qRegisterMetaType<lwb::compose::Evaluation>();
}

TrainerEnvironment ComposeWorker::environment() {
  TrainerEnvironment env;
  env.notice = [this](const std::string& m) { emit notice(QString::fromStdString(m)); };
  return env;
}

namespace {

std::unique_ptr<CompositionSession> open_session(std::vector<Member> members, const SessionOptions& options,
                                                 const TrainerEnvironment& env) {
  if (members.empty()) throw ConfigError("compose.adapters", "the composition has no members; drop adapters on it");
  const std::filesystem::path base = compose::base_checkpoint_for(members.front(), env);
  return std::make_unique<CompositionSession>(std::move(members), options, base);
}

}  // namespace

bool ComposeWorker::search(std::vector<Member> members, SessionOptions session, compose::SearchOptions search) {
  return start([this, members = std::move(members), session, search]() mutable {
    auto s = open_session(std::move(members), session, environment());
    const compose::SearchResult r = s->search(search, [this](const compose::Trial& t) { emit trial(t); }, &cancel_);
    emit searched(r);
  });
}

bool ComposeWorker::evaluate(std::vector<Member> members, SessionOptions session, std::vector<double> weights) {
  return start([this, members = std::move(members), session, weights]() mutable {
    auto s = open_session(std::move(members), session, environment());
    emit evaluated(s->evaluate(weights));
  });
}

bool ComposeWorker::export_merged(std::vector<Member> members, SessionOptions session, std::vector<double> weights,
                                  std::filesystem::path dir, std::string library_name, compose::Score heldout) {
  return start([this, members = std::move(members), session, weights, dir, library_name, heldout]() mutable {
    auto s = open_session(std::move(members), session, environment());
    const AdapterState merged = s->merged(weights);
    io::write_peft_folder(dir, merged);
    if (!library_name.empty()) {
      Store store(db_);
      store.save_adapter(library_name, std::nullopt, merged, session.task, heldout.loss, heldout.accuracy);
    }
    emit exported(QString::fromStdString(dir.string()), QString::fromStdString(library_name));
  });
}

bool ComposeWorker::run_hub(compose::HubPreset preset) {
  return start([this, preset] {
    Store store(db_);
    std::vector<std::unique_ptr<TrainingLines>> sinks;
    compose::HubCallbacks cb;
    cb.notice = [this](const std::string& s) { emit notice(QString::fromStdString(s)); };
    cb.training_sink = [&](const std::string& adapter) {
      sinks.push_back(std::make_unique<TrainingLines>(this, adapter));
      return sinks.back().get();
    };
    cb.on_trial = [this](const compose::Trial& t) { emit trial(t); };
    const compose::HubReport r = compose::run_hub(store, preset, environment(), cb, &cancel_);
    const QString report = tr("hub demo: %1 adapter(s) trained, %2 reused, %3 s in all (training %4 s)")
                               .arg(r.trained.size())
                               .arg(r.reused.size())
                               .arg(r.total_seconds, 0, 'f', 1)
                               .arg(r.train_seconds, 0, 'f', 1);
    emit hub_finished(r.cancelled ? 0 : r.outcome.composition.id, report);
  });
}

bool ComposeWorker::export_adapter(std::int64_t adapter_id, std::filesystem::path dir, bool merged, bool overwrite) {
  return start([this, adapter_id, dir, merged, overwrite] {
    Store store(db_);
    if (merged)
      export_adapter_merged(store, adapter_id, "", dir, overwrite, environment());
    else
      export_adapter_peft(store, adapter_id, dir, overwrite);
    emit transferred(merged ? tr("Wrote the base with the adapter merged in (Hugging Face checkpoint) to %1")
                                  .arg(QString::fromStdString(dir.string()))
                            : tr("Wrote the adapter as a PEFT folder to %1").arg(QString::fromStdString(dir.string())));
  });
}

bool ComposeWorker::import_adapter(std::filesystem::path dir, std::string name, std::string base, std::string task) {
  return start([this, dir, name, base, task] {
    Store store(db_);
    import_adapter_peft(store, dir, name, base, task, environment());
    emit transferred(tr("Imported %1 into the library as \"%2\"")
                         .arg(QString::fromStdString(dir.string()), QString::fromStdString(name)));
  });
}

}  // namespace lwb::ui
