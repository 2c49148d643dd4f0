#include "core/study/stored_comparison.h"

#include "core/store/store_sink.h"

namespace lwb {

namespace {

// Records each run in the history and each sample as a row, passing every
// call on to the caller's observer.
class Recorder : public ComparisonObserver {
 public:
  Recorder(Store& store, std::int64_t comparison_id, ComparisonObserver* extra)
      : store_(store), id_(comparison_id), extra_(extra) {}

  TrainerSink* run_sink(const ComparisonRunTag& tag, Trainer& trainer) override {
    StoreSink::Options options;
    options.warning = warning;
    sink_ = std::make_unique<StoreSink>(store_, options);
    fanout_ = FanoutSink();
    fanout_.add(sink_.get());
    if (extra_)
      if (TrainerSink* s = extra_->run_sink(tag, trainer)) fanout_.add(s);
    return &fanout_;
  }

  void run_ended(const ComparisonRunTag& tag, Trainer& trainer, const RunResult& r, ComparisonSample& s) override {
    if (extra_) extra_->run_ended(tag, trainer, r, s);
    if (sink_ && sink_->run_id() > 0) s.run_id = sink_->run_id();
    sink_.reset();
    s.id = store_.add_comparison_run(id_, s);
  }

  std::function<void(const std::string&)> warning;

 private:
  Store& store_;
  std::int64_t id_;
  ComparisonObserver* extra_;
  std::unique_ptr<StoreSink> sink_;
  FanoutSink fanout_;
};

}  // namespace

StoredComparison run_stored_comparison(Store& store, const std::string& kind, const ComparisonDesign& design,
                                       const TrainerEnvironment& env, const RunControl& control,
                                       ComparisonObserver* extra, bool finish) {
  design.options.validate();
  StoredComparison out;
  out.id = store.create_comparison(design.preset.name, kind, design.to_json());
  Recorder recorder(store, out.id, extra);
  recorder.warning = env.notice;
  try {
    out.samples = run_comparison(design, env, control, &recorder);
  } catch (const std::exception& e) {
    try {
      store.finish_comparison(out.id, "failed", "", {}, e.what());
    } catch (const std::exception&) {  // the rows so far are kept; the comparison reads as running
    }
    throw;
  }
  out.stopped = control.stop && control.stop->load();
  out.summary = summarize_comparison(design, out.samples);
  if (finish) store.finish_comparison(out.id, out.stopped ? "stopped" : "finished", comparison_markdown(out.summary), {});
  return out;
}

ComparisonSummary load_comparison_summary(Store& store, std::int64_t comparison_id) {
  const ComparisonRecord c = store.get_comparison(comparison_id);
  const ComparisonDesign design =
      ComparisonDesign::from_json(c.design_json, store.file().string() + ": comparison " + std::to_string(comparison_id));
  const std::vector<ComparisonSample> rows = store.comparison_runs(comparison_id);
  return summarize_comparison(design, rows);
}

}  // namespace lwb
