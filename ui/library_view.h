#pragma once
// The Library tab: every adapter in the store with its base, method, rank,
// task and where it came from, the lineage of the current one (the runs that
// trained it, the tool and inputs that made it, the compositions it is in,
// what was made from it), and kohya_ss-style tools run as background jobs
// with progress, each recorded with its lineage (core/compose/library_jobs.h):
// merge adapters at chosen ratios into their base, resize an adapter's rank
// by SVD (the retained energy shown per module), extract a LoRA from a full
// fine-tuning run, verify an adapter against a base; export and import PEFT
// folders. Every button's work is also a method, so tests drive the real
// paths without dialogs.
#include <QWidget>
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <utility>
#include <vector>

#include "core/adapters/adapter_config.h"

class QCustomPlot;
class QLabel;
class QLineEdit;
class QProgressBar;
class QPushButton;
class QTableWidget;
class QTextBrowser;

namespace lwb {
struct Derivation;
}

namespace lwb::ui {

class JobRunner;

class LibraryView : public QWidget {
  Q_OBJECT
 public:
  explicit LibraryView(std::filesystem::path db, QWidget* parent = nullptr);
  ~LibraryView() override;

  void refresh();
  void set_filter(const QString& text);
  // The row of an adapter by name (-1 if absent), and selecting adapters.
  int row_of(const QString& name) const;
  void select_adapters(const std::vector<std::int64_t>& ids);
  std::vector<std::int64_t> selected_adapters() const;

  // Each starts a background job; false, with the reason shown, when nothing
  // started (another job runs, or the input is refused at once).
  // base_name: PEFT's base_model_name_or_path (empty: export_adapter_peft's default).
  bool export_adapter(std::int64_t adapter_id, const QString& dir, bool merged, bool overwrite,
                      const QString& base_name = {});
  bool import_adapter(const QString& dir, const QString& name, const QString& base, const QString& task);
  bool merge(const std::vector<std::pair<std::int64_t, double>>& adapters, const QString& out_file, bool overwrite);
  bool resize(std::int64_t adapter_id, int rank, const QString& name);
  bool extract(std::int64_t run_id, int rank, const std::vector<Target>& targets, const QString& name);
  bool verify(std::int64_t adapter_id, const QString& base = {});
  void cancel();
  bool busy() const;

  QTableWidget* table() const { return table_; }
  QTableWidget* jobs_table() const { return jobs_; }
  QLabel* status_label() const { return status_; }
  QTextBrowser* lineage_view() const { return lineage_; }
  QProgressBar* progress_bar() const { return progress_; }
  QCustomPlot* energy_plot() const { return energy_; }

 signals:
  // A job ended (after its result or failure was shown).
  void job_finished();
  // The library changed (a tool kept a new adapter, an import).
  void library_changed();

 private:
  bool start(const QString& what, std::function<void(const std::atomic<bool>*)> job);
  void show_status(const QString& text, bool error = false);
  void show_lineage();
  void show_job(const lwb::Derivation& d);
  // A tool's new adapter: its line, its report, the library told.
  void show_kept(const lwb::Derivation& d);
  void apply_filter();
  void ask_export();
  void ask_import();
  void ask_merge();
  void ask_resize();
  void ask_extract();
  void set_busy(bool busy);
  std::int64_t current_adapter() const;

  std::filesystem::path db_;
  QLineEdit* filter_;
  QTableWidget* table_;
  QTextBrowser* lineage_;
  QTableWidget* jobs_;
  QCustomPlot* energy_;
  QProgressBar* progress_;
  QLabel* stage_;
  QLabel* status_;
  QPushButton* cancel_;
  std::vector<QPushButton*> tools_;
  JobRunner* runner_;
};

}  // namespace lwb::ui
