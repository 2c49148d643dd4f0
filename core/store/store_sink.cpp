#include "core/store/store_sink.h"

#include <iterator>
#include <vector>

#include "core/common/errors.h"

namespace lwb {

namespace {

using Clock = std::chrono::steady_clock;

// A step is in the file within this, plus one commit's time, of being taken.
constexpr auto kCommitInterval = std::chrono::milliseconds(500);
// The lease is renewed at least this often (it lapses after Store::kLeaseSeconds).
constexpr auto kHeartbeat = std::chrono::seconds(5);
constexpr auto kTick = std::chrono::milliseconds(100);

// Runs `write` until it succeeds, retrying a locked or full store until
// `patience` has passed. Returns "" on success, else the last error.
std::string retry(const std::function<void()>& write, std::chrono::seconds patience) {
  const auto deadline = Clock::now() + patience;
  for (;;) {
    try {
      write();
      return {};
    } catch (const StoreError& e) {
      if (e.reason() == StoreError::Reason::Other || Clock::now() >= deadline) return e.what();
    } catch (const std::exception& e) {
      return e.what();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

}  // namespace

StoreSink::StoreSink(Store& store, std::int64_t run_id, Options options)
    : store_(store), options_(std::move(options)), run_id_(run_id) {
  start_writer();
}

StoreSink::StoreSink(Store& store, Options options) : store_(store), options_(std::move(options)) {}

StoreSink::~StoreSink() {
  stop_writer();
  if (!started_ || finished_) return;
  // A destructor must not throw; if this fails the lease lapses and the next
  // Store to open the file marks the run interrupted.
  try {
    commit_pending(store_);
    RunResult r;
    r.status = RunStatus::Failed;
    r.error = "the run ended without reporting a result";
    r.steps_done = last_step_;
    store_.finish_run(run_id_, r);
  } catch (const std::exception&) {
  }
}

void StoreSink::warn(const std::string& line) const {
  if (options_.warning) options_.warning(line);
}

void StoreSink::start_writer() {
  writer_ = std::thread([this] { writer_loop(); });
}

void StoreSink::stop_writer() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (writer_.joinable()) writer_.join();
}

void StoreSink::on_start(const RunInfo& info) {
  std::string error;
  if (run_id_ == 0) {
    error = retry([&] { run_id_ = store_.create_run(store_.create_experiment(info.config.name, info.config),
                                                    info.backend, info); },
                  options_.finish_patience);
    if (error.empty()) start_writer();
  } else {
    error = retry([&] { store_.start_run(run_id_, info); }, options_.finish_patience);
  }
  if (!error.empty()) throw StoreError(error);
  started_ = true;
}

void StoreSink::on_step(const StepEvent& e) {
  last_step_ = e.step;
  std::lock_guard lock(mutex_);
  if (lost_) return;
  pending_.push_back(e);
  if (pending_.size() > kMaxPendingSteps) {
    pending_.pop_front();
    if (dropped_++ == 0)
      warn("store: more than " + std::to_string(kMaxPendingSteps) +
           " steps are waiting for the store; the oldest are dropped from now on (training goes on)");
  }
}

void StoreSink::commit_pending(Store& store) {
  std::vector<StepEvent> batch;
  {
    std::lock_guard lock(mutex_);
    batch.assign(std::make_move_iterator(pending_.begin()), std::make_move_iterator(pending_.end()));
    pending_.clear();
  }
  if (batch.empty()) return;
  try {
    store.append_steps(run_id_, batch);
  } catch (...) {
    std::lock_guard lock(mutex_);
    pending_.insert(pending_.begin(), std::make_move_iterator(batch.begin()), std::make_move_iterator(batch.end()));
    for (; pending_.size() > kMaxPendingSteps; ++dropped_) pending_.pop_front();
    throw;
  }
}

void StoreSink::writer_loop() {
  std::unique_ptr<Store> own;  // SQLite connections are per thread
  auto last_commit = Clock::now(), last_lease = Clock::now();
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    wake_.wait_for(lock, kTick);
    const auto now = Clock::now();
    const bool commit_due = !pending_.empty() && now - last_commit >= kCommitInterval;
    const bool lease_due = now - last_lease >= kHeartbeat;
    if (stopping_ || lost_ || (!commit_due && !lease_due)) continue;
    lock.unlock();
    std::string error;
    Lease lease = Lease::Held;
    try {
      if (!own) own = std::make_unique<Store>(store_.file());
      if (commit_due) {
        last_commit = now;
        commit_pending(*own);
      }
      // Also while steps are committed: only renewing brings back a run
      // another process took for dead.
      if (lease_due) {
        lease = own->renew_lease(run_id_);
        last_lease = now;
      }
    } catch (const std::exception& e) {
      error = e.what();
      // A run deleted by another process makes every write fail.
      try {
        if (own) lease = own->renew_lease(run_id_);
      } catch (const std::exception&) {
      }
    }
    lock.lock();
    const std::string run = "run " + std::to_string(run_id_);
    if (lease == Lease::Lost) {
      lost_ = true;
      warn("store: " + run + " was deleted or ended by another process; its metrics are no longer recorded "
           "(training goes on)");
    } else if (lease == Lease::Revived) {
      warn("store: another process had taken " + run + " for dead (marked it interrupted); it is running again");
    }
    if (lost_) {
      pending_.clear();
    } else if (!error.empty() && error != trouble_) {
      warn(error + "; " + std::to_string(pending_.size()) +
           " steps of metrics wait in memory and are retried (training goes on)");
    } else if (error.empty() && !trouble_.empty()) {
      warn("store: writing again; the waiting metrics of " + run + " are stored");
    }
    trouble_ = error;
  }
}

void StoreSink::on_finish(const RunResult& result) {
  stop_writer();
  finished_ = true;
  RunResult r = result;
  if (!lost_) {
    if (const std::string error = retry([&] { commit_pending(store_); }, options_.finish_patience); !error.empty())
      warn(error + "; the last " + std::to_string(pending_.size()) + " steps of metrics could not be stored");
  }
  if (const std::int64_t missing = dropped_ + static_cast<std::int64_t>(pending_.size()); missing > 0 && r.error.empty())
    r.error = std::to_string(missing) + " steps of metrics could not be stored (" + trouble_ + ")";

  std::optional<KeptAdapter> adapter;
  if (r.status != RunStatus::Failed && options_.adapter) {
    try {
      adapter = options_.adapter(run_id_, r);
    } catch (const std::exception& e) {
      finish_error_ = std::string("the adapter could not be taken from the model: ") + e.what();
    }
  }
  const KeptAdapter* keep = adapter ? &*adapter : nullptr;
  std::string error;
  if (!lost_) {
    error = retry([&] { store_.finish_run(run_id_, r, keep); }, options_.finish_patience);
    try {
      if (!error.empty() && store_.renew_lease(run_id_) == Lease::Lost) lost_ = true;
    } catch (const std::exception&) {
    }
  }
  // The run is gone from the store, the adapter it made need not be.
  if (lost_ && keep)
    error = retry([&] { store_.save_adapter(keep->name, std::nullopt, keep->state, keep->task, r.final_eval.loss,
                                            r.final_eval.accuracy); },
                  options_.finish_patience);
  if (error.empty() && keep) adapter_name_ = keep->name;
  if (!error.empty()) finish_error_ += (finish_error_.empty() ? "" : "; ") + error;
}

}  // namespace lwb
