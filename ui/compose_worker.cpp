#include "ui/compose_worker.h"

#include <chrono>
#include <cmath>
#include <memory>

#include "core/common/errors.h"
#include "core/compose/library.h"
#include "core/compose/seeds.h"
#include "core/io/peft.h"
#include "core/model/checkpoint.h"
#include "core/store/store.h"

namespace lwb::ui {

namespace {

using compose::CompositionSession;
using compose::Member;
using compose::SessionOptions;

// The hub demo's progress: training steps of the members it trains, then the
// search's evaluations, with one line per member run every so often.
class HubProgress {
 public:
  HubProgress(ComposeWorker* w, qint64 train_steps, qint64 evaluations)
      : w_(w), total_(train_steps + evaluations), start_(std::chrono::steady_clock::now()) {}
  void advance(qint64 by, const QString& stage) {
    done_ += by;
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    emit w_->hub_progress(done_, total_, stage, done_ > 0 ? s / static_cast<double>(done_) * static_cast<double>(total_ - done_) : NAN);
  }

 private:
  ComposeWorker* w_;
  qint64 done_ = 0, total_;
  std::chrono::steady_clock::time_point start_;
};

class TrainingLines : public TrainerSink {
 public:
  TrainingLines(ComposeWorker* w, HubProgress& progress, std::string adapter)
      : w_(w), progress_(progress), adapter_(std::move(adapter)) {}
  void on_step(const StepEvent& e) override {
    progress_.advance(e.step - last_, QObject::tr("training %1: step %2/%3").arg(QString::fromStdString(adapter_)).arg(e.step).arg(e.total_steps));
    last_ = e.step;
    if (e.step % 50 != 0 && e.step != e.total_steps) return;
    emit w_->notice(QString("%1: step %2/%3, loss %4")
                        .arg(QString::fromStdString(adapter_))
                        .arg(e.step)
                        .arg(e.total_steps)
                        .arg(e.loss, 0, 'f', 4));
  }

 private:
  ComposeWorker* w_;
  HubProgress& progress_;
  std::string adapter_;
  std::int64_t last_ = 0;
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
  const ResolvedSource base = compose::base_source_for(members.front(), env);
  return std::make_unique<CompositionSession>(std::move(members), options, base);
}

}  // namespace

bool ComposeWorker::search(std::vector<Member> members, SessionOptions session, compose::SearchOptions search,
                           int seeds) {
  return start([this, members = std::move(members), session, search, seeds]() mutable {
    if (seeds == 1) {
      auto s = open_session(std::move(members), session, environment());
      const compose::SearchResult r = s->search(search, [this](const compose::Trial& t) { emit trial(t); }, &cancel_);
      emit searched(r);
      return;
    }
    if (members.empty()) throw ConfigError("compose.adapters", "the composition has no members; drop adapters on it");
    const ResolvedSource base = compose::base_source_for(members.front(), environment());
    const compose::SeededSearch r = compose::search_over_seeds(
        members, session, search, seeds, base,
        [this, &search, &session](int k, int n) {
          emit notice(tr("seed %1/%2: search seed %3, examples drawn with seed %4")
                          .arg(k + 1)
                          .arg(n)
                          .arg(search.seed + static_cast<std::uint64_t>(k))
                          .arg(session.data_seed + static_cast<std::uint64_t>(k)));
        },
        [this](int k, const compose::Trial& t) {
          if (k == 0) emit trial(t);
        },
        &cancel_);
    emit searched(r.first);
    // A cancelled first search is shown as one search is: its best weights,
    // for Evaluate; later seeds cancelled leave the ones that finished.
    if (!r.first.cancelled) emit evaluated(r.evaluation);
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
    // The members that are not in the library yet are the ones trained.
    qint64 to_train = 0;
    {
      const std::string fp = checkpoint_metadata(ensure_base_model(preset.training.model.preset, environment()),
                                                 "lwb.fingerprint");
      for (const std::string& task : preset.member_tasks)
        if (!store.find_adapter(compose::hub_adapter_name(task, fp))) ++to_train;
    }
    HubProgress progress(this, to_train * preset.training.train.steps,
                         static_cast<qint64>(preset.search.budget) * preset.seeds);
    std::vector<std::unique_ptr<TrainingLines>> sinks;
    compose::HubCallbacks cb;
    cb.notice = [this](const std::string& s) { emit notice(QString::fromStdString(s)); };
    cb.training_sink = [&](const std::string& adapter, Trainer&, int, int) {
      sinks.push_back(std::make_unique<TrainingLines>(this, progress, adapter));
      return sinks.back().get();
    };
    cb.on_trial = [this, &progress](const compose::Trial& t) {
      progress.advance(1, tr("searching the weights: evaluation %1").arg(t.iteration + 1));
      emit trial(t);
    };
    const compose::HubReport r = compose::run_hub(store, preset, environment(), cb, &cancel_);
    const QString report = tr("hub demo: %1 adapter(s) trained, %2 reused, %3 s in all (training %4 s); the search "
                              "%5")
                               .arg(r.trained.size())
                               .arg(r.reused.size())
                               .arg(r.total_seconds, 0, 'f', 1)
                               .arg(r.train_seconds, 0, 'f', 1)
                               .arg(QString::fromStdString(r.outcome.search.stop_reason));
    emit hub_finished(r.cancelled ? 0 : r.outcome.composition.id, report);
  });
}

}  // namespace lwb::ui
