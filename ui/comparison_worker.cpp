#include "ui/comparison_worker.h"

#include "core/store/store.h"
#include "core/study/stored_comparison.h"

namespace lwb::ui {

namespace {

// Tells the view which run is training and how far it is, every few steps.
class Progress : public ComparisonObserver, public TrainerSink {
 public:
  explicit Progress(ComparisonWorker* w) : w_(w) {}
  TrainerSink* run_sink(const ComparisonRunTag& tag, Trainer&) override {
    emit w_->run_started(QString::fromStdString(tag.text()), tag.index, tag.total);
    return this;
  }
  void on_step(const StepEvent& e) override {
    if (e.step % 10 == 0 || e.step == e.total_steps) emit w_->step(e.step, e.total_steps);
  }

 private:
  ComparisonWorker* w_;
};

}  // namespace

ComparisonWorker::ComparisonWorker(std::filesystem::path db, QObject* parent)
    : BackgroundWorker(parent), db_(std::move(db)) {
  qRegisterMetaType<std::shared_ptr<lwb::StudyResult>>();
}

TrainerEnvironment ComparisonWorker::environment() {
  TrainerEnvironment env;
  env.notice = [this](const std::string& m) { emit notice(QString::fromStdString(m)); };
  return env;
}

bool ComparisonWorker::compare(ComparisonDesign design) {
  return start([this, design] {
    Store store(db_);
    Progress progress(this);
    const StoredComparison c =
        run_stored_comparison(store, "compare", design, environment(), RunControl{&cancel_, nullptr}, &progress);
    emit compared(c.id);
  });
}

bool ComparisonWorker::study(std::string name, StudyOptions options) {
  return start([this, name, options] {
    Store store(db_);
    Progress progress(this);
    auto result = std::make_shared<StudyResult>(
        run_study(store, name, options, environment(), RunControl{&cancel_, nullptr}, &progress));
    emit studied(result);
  });
}

}  // namespace lwb::ui
