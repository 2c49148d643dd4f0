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
  bool search(std::vector<compose::Member> members, compose::SessionOptions session, compose::SearchOptions search);
  bool evaluate(std::vector<compose::Member> members, compose::SessionOptions session, std::vector<double> weights);
  // Writes the merged adapter as a PEFT folder; with a library name it is
  // also kept in the store's library, with `heldout` as its scores.
  bool export_merged(std::vector<compose::Member> members, compose::SessionOptions session,
                     std::vector<double> weights, std::filesystem::path dir, std::string library_name,
                     compose::Score heldout);
  bool run_hub(compose::HubPreset preset);
  // A library adapter out as a PEFT folder, or merged into its built-in base
  // as a Hugging Face checkpoint (core/store/adapter_transfer.h).
  bool export_adapter(std::int64_t adapter_id, std::filesystem::path dir, bool merged, bool overwrite);
  // A PEFT folder into the library, checked against the base (a preset name
  // or a checkpoint path).
  bool import_adapter(std::filesystem::path dir, std::string name, std::string base, std::string task);

 signals:
  void trial(lwb::compose::Trial trial);
  void searched(lwb::compose::SearchResult result);
  void evaluated(lwb::compose::Evaluation evaluation);
  void exported(QString dir, QString library_name);
  // composition_id 0: stopped while training, nothing was composed.
  void hub_finished(qint64 composition_id, QString report);
  // An export or import of a library adapter is done; the line says what.
  void transferred(QString line);
  void notice(QString line);

 private:
  TrainerEnvironment environment();

  std::filesystem::path db_;
};

}  // namespace lwb::ui

Q_DECLARE_METATYPE(lwb::compose::Trial)
Q_DECLARE_METATYPE(lwb::compose::SearchResult)
Q_DECLARE_METATYPE(lwb::compose::Evaluation)
