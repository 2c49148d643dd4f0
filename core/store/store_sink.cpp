#include "core/store/store_sink.h"

namespace lwb {

namespace {
constexpr auto kCommitInterval = std::chrono::seconds(1);
}

StoreSink::StoreSink(Store& store, std::int64_t run_id) : store_(store), run_id_(run_id) {}

StoreSink::StoreSink(Store& store) : store_(store) {}

StoreSink::~StoreSink() {
  if (!started_ || finished_) return;
  // A destructor must not throw; the next Store to open the file after this
  // process ends would mark the run interrupted anyway.
  try {
    flush();
    RunResult r;
    r.status = RunStatus::Failed;
    r.error = "the run ended without reporting a result";
    r.steps_done = last_step_;
    store_.finish_run(run_id_, r);
  } catch (const std::exception&) {
  }
}

void StoreSink::on_start(const RunInfo& info) {
  if (run_id_ == 0)
    run_id_ = store_.create_run(store_.create_experiment(info.config.name, info.config), info.backend, info);
  else
    store_.start_run(run_id_, info);
  started_ = true;
  last_commit_ = std::chrono::steady_clock::now();
}

void StoreSink::on_step(const StepEvent& e) {
  pending_.push_back(e);
  last_step_ = e.step;
  if (std::chrono::steady_clock::now() - last_commit_ >= kCommitInterval) flush();
}

void StoreSink::on_finish(const RunResult& r) {
  flush();
  store_.finish_run(run_id_, r);
  finished_ = true;
}

void StoreSink::flush() {
  store_.append_steps(run_id_, pending_);
  pending_.clear();  // keeps its capacity for the next second's steps
  last_commit_ = std::chrono::steady_clock::now();
}

}  // namespace lwb
