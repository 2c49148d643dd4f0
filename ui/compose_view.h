#pragma once
// The Compose tab: LoRAHub compositions built by dragging adapters from the
// library onto a canvas (drawn as a graph of members into the composition),
// their weights searched and evaluated in a ComposeWorker, kept in the store
// and exported as PEFT folders; the hub demo with its progress. The view
// owns the composition being edited (members, weights, positions, the search
// trace, the scores) and keeps the canvas, plot and table showing it; the
// engine and the store do the work. Everything the buttons do is also a
// method, so tests drive the real paths without dialogs.
#include <QWidget>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <vector>

#include "core/compose/hub.h"
#include "core/compose/session.h"

class QCheckBox;
class QComboBox;
class QLabel;
class QPlainTextEdit;
class QProgressBar;
class QPushButton;
class QSpinBox;
class QTableWidget;
class QTabWidget;
class QCustomPlot;

namespace lwb::ui {

class AdapterLibrary;
class ComposeCanvas;
class ComposeWorker;
class ObjectivePlot;

class ComposeView : public QWidget {
  Q_OBJECT
 public:
  explicit ComposeView(std::filesystem::path db, QWidget* parent = nullptr);
  ~ComposeView() override;

  AdapterLibrary* library() const { return library_; }
  ComposeCanvas* canvas() const { return canvas_; }
  ObjectivePlot* objective_plot() const { return plot_; }
  QTableWidget* scores_table() const { return scores_; }
  // Held-out loss per row with 95% error bars over the seeds, in the plots'
  // "Seeds" tab; that tab is hidden for an evaluation of one seed.
  QCustomPlot* intervals_plot() const { return intervals_; }
  QLabel* status_label() const { return status_; }
  QLabel* summary_label() const { return summary_; }
  QPushButton* search_button() const { return search_; }
  QPushButton* cancel_button() const { return cancel_; }
  QPushButton* hub_button() const { return hub_; }
  QProgressBar* hub_progress() const { return hub_progress_; }
  QComboBox* task_box() const { return task_; }
  QComboBox* mode_box() const { return mode_; }
  QComboBox* optimizer_box() const { return optimizer_; }
  QSpinBox* svd_rank_box() const { return svd_rank_; }
  QSpinBox* shots_box() const { return shots_; }
  QSpinBox* budget_box() const { return budget_; }
  QSpinBox* seed_box() const { return seed_; }
  QSpinBox* seeds_box() const { return seeds_; }

  // The drop path: the adapter joins at `pos` (weight 0, where the search
  // starts) if check_members accepts it beside the current members; else
  // the reason is shown in the status label and nothing changes.
  bool add_adapter(std::int64_t adapter_id, QPointF pos);
  void remove_member(int i);
  bool start_search();
  bool start_evaluation();
  // false, with the reason shown, when nothing was saved.
  bool save_as(const QString& name);
  // Both ask before discarding unsaved changes; false if the user keeps them
  // or the composition cannot be opened (the canvas is then untouched).
  bool open_composition(std::int64_t composition_id);
  bool clear_composition();
  bool export_to(const QString& dir, bool add_to_library);
  bool start_hub_demo();
  void set_hub_preset(compose::HubPreset preset) { hub_preset_ = std::move(preset); }
  // Where Export writes; a folder dialog by default.
  void set_export_dir_chooser(std::function<QString()> choose) { choose_export_dir_ = std::move(choose); }

  bool busy() const;
  bool dirty() const { return dirty_; }
  // Asks before unsaved changes on the canvas are lost; true to go on.
  bool confirm_discard();
  std::int64_t composition_id() const { return composition_id_; }
  const QString& composition_name() const { return name_; }
  int members() const { return static_cast<int>(members_.size()); }
  std::vector<double> weights() const;
  const std::vector<compose::Trial>& trace() const { return trace_; }
  const std::optional<compose::Evaluation>& evaluation() const { return evaluation_; }

 signals:
  // A background job ended (after its results were shown).
  void job_finished();

 private:
  struct Entry {
    std::int64_t adapter_id = 0;
    compose::Member member;
    QString subtitle;  // variant, rank and task, as the node shows them
  };

  QWidget* build_controls();
  QWidget* build_buttons();
  compose::SessionOptions session_options() const;
  compose::SearchOptions search_options() const;
  std::vector<compose::Member> member_list() const;
  void add_entry(Entry entry, double weight, QPointF pos);
  // Members, task, mode or shots changed: the trace and scores no longer
  // describe this composition.
  void drop_results();
  void on_mode_changed();
  void on_trial(const compose::Trial& t);
  void on_searched(const compose::SearchResult& r);
  void show_evaluation();
  void show_status(const QString& text, bool error = false);
  void log(const QString& line);
  // Cancel is offered for the search and the hub demo, which poll the flag.
  void set_busy(bool busy, bool cancellable = false);
  void mark_dirty() { dirty_ = true; }
  QString canvas_settings_json() const;

  std::filesystem::path db_;
  AdapterLibrary* library_;
  ComposeCanvas* canvas_;
  ObjectivePlot* plot_;
  QTableWidget* scores_;
  QTabWidget* plots_;
  QCustomPlot* intervals_;
  QLabel* status_;
  QLabel* summary_;
  QPlainTextEdit* log_;
  QProgressBar* hub_progress_;
  QLabel* hub_stage_;
  QComboBox* task_;
  QComboBox* mode_;
  QComboBox* optimizer_;
  QSpinBox* svd_rank_;
  QSpinBox* shots_;
  QSpinBox* budget_;
  QSpinBox* seed_;
  QSpinBox* seeds_;
  QPushButton* search_;
  QPushButton* cancel_;
  QPushButton* evaluate_;
  QPushButton* new_;
  QPushButton* open_;
  QPushButton* save_;
  QPushButton* export_;
  QCheckBox* add_to_library_;
  QPushButton* hub_;
  ComposeWorker* worker_;

  std::vector<Entry> members_;  // in canvas order
  std::vector<compose::Trial> trace_;
  QString trace_optimizer_;  // the optimizer that made trace_
  std::optional<compose::Evaluation> evaluation_;
  std::int64_t composition_id_ = 0;  // the stored composition being edited, 0 if new
  QString name_;
  bool dirty_ = false;
  int mode_index_ = 0;
  std::int64_t hub_composition_ = 0;  // the hub demo's result, opened when its job ends  // to go back to when members refuse a new mode
  compose::HubPreset hub_preset_;
  std::function<QString()> choose_export_dir_;
};

}  // namespace lwb::ui
