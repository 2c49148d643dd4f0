#pragma once
// The composition window's engine jobs on a background QThread, one at a time
// (BackgroundWorker): a weight search, an evaluation, an export of the
// merged adapter, the hub demo. Each job builds its CompositionSession on the
// worker thread, so the model never touches the GUI thread; results come back
// as queued signals and cancellation is an atomic the GUI thread sets
// directly. Jobs that write to the store open their own connection.
#include <QString>
#include <filesystem>
#include <vector>

#include "core/compose/hub.h"
#include "core/compose/session.h"
#include "ui/background_worker.h"

namespace lwb::ui {

class ComposeWorker : public BackgroundWorker {
  Q_OBJECT
 public:
  explicit ComposeWorker(std::filesystem::path db, QObject* parent = nullptr);
  ~ComposeWorker() override { stop_and_wait(); }

  // Each starts one job; false (and nothing started) while another runs.
  // One seed: the search alone (Evaluate scores it). Several
  // (core/compose/seeds.h): every seed is searched and evaluated; `trial`
  // shows the first seed's search, `searched` its result, then `evaluated`
  // every seed's scores (not when the first search was cancelled).
  bool search(std::vector<compose::Member> members, compose::SessionOptions session, compose::SearchOptions search,
              int seeds = 1);
  bool evaluate(std::vector<compose::Member> members, compose::SessionOptions session, std::vector<double> weights);
  // Writes the merged adapter as a PEFT folder; with a library name it is
  // also kept in the store's library, with `heldout` as its scores.
  bool export_merged(std::vector<compose::Member> members, compose::SessionOptions session,
                     std::vector<double> weights, std::filesystem::path dir, std::string library_name,
                     compose::Score heldout);
  bool run_hub(compose::HubPreset preset);

 signals:
  void trial(lwb::compose::Trial trial);
  void searched(lwb::compose::SearchResult result);
  void evaluated(lwb::compose::Evaluation evaluation);
  void exported(QString dir, QString library_name);
  // composition_id 0: stopped while training, nothing was composed.
  void hub_finished(qint64 composition_id, QString report);
  // The hub demo's progress over its training steps and search evaluations
  // (`done` of `total`), what it is doing, and the estimated seconds left
  // (NaN until there is a rate to go by).
  void hub_progress(qint64 done, qint64 total, QString stage, double eta_s);
  void notice(QString line);

 private:
  TrainerEnvironment environment();

  std::filesystem::path db_;
};

}  // namespace lwb::ui

Q_DECLARE_METATYPE(lwb::compose::Trial)
Q_DECLARE_METATYPE(lwb::compose::SearchResult)
Q_DECLARE_METATYPE(lwb::compose::Evaluation)
