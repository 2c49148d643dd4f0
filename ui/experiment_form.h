#pragma once
// The whole ExperimentConfig as a form. Every editor is bound to one of the
// config's dotted keys, so parsing and validation are the engine's own
// (ExperimentConfig::set and ::problems): a bad field is outlined, its message
// shown, and the form reports whether the config can start. Beside that, in
// the background: the model's source is resolved (its shape for the facts and
// the memory estimate, its tokenizer and chat template) and the data
// previewed as the run will read it (core/train/data_setup.h); a model or a
// data file that cannot be read is a problem of its field like any other.
// The Fetch button downloads a known real model (core/source/downloads.h).
//
// The form reads top to bottom, one section after another, in a column of
// bounded width, with a jump list of the sections on its left and the facts,
// the memory estimate and the problems on its right (and, in a window wide
// enough, the data preview). Problems are said with the form's labels, not the
// config's keys, and each links to its field. A method's own options sit on
// its page of a stack as tall as the tallest, and the shared settings a
// method does not use are disabled, not hidden, so switching the method does
// not move the form.
#include <QWidget>
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/train/experiment_config.h"

class QLabel;
class QListWidget;
class QScrollArea;
class QStackedWidget;
class QFormLayout;
class QGroupBox;
class QComboBox;
class QProgressBar;
class QPushButton;
class QTextBrowser;
class QVBoxLayout;

namespace lwb {
struct DataSetup;
}

namespace lwb::ui {

class TargetPicker;

class ExperimentForm : public QWidget {
  Q_OBJECT
 public:
  // Model, Data, Method, Optimizer and schedule, Training, Samples during training.
  static constexpr int kSections = 6;

  explicit ExperimentForm(QWidget* parent = nullptr);

  const ExperimentConfig& config() const { return config_; }
  void set_config(const ExperimentConfig& config);
  // Field -> message for every problem (parse errors included); empty = valid.
  const std::map<std::string, std::string>& problems() const { return problems_; }
  bool valid() const { return problems_.empty(); }
  // The editor bound to a key (for tests and the screenshot script).
  QWidget* editor(const std::string& key) const;
  // Sets a key as if typed into its editor.
  void set_field(const std::string& key, const QString& value);
  // The row label of a key's editor (the key itself when the form has none).
  QString label(const std::string& key) const;
  // The problem of a field as the form says it: "Label: message", with every
  // config key the message names replaced by its label; empty when none.
  QString problem_text(const std::string& field) const;
  // Scrolls to a key's editor and gives it the focus (the problems' links).
  void show_field(const std::string& key);
  // The section jump list and the scrolled column (tests, screenshots).
  QListWidget* sections() const { return sections_; }
  QScrollArea* scroll_area() const { return scroll_; }
  QLabel* facts_label() const { return facts_; }
  QLabel* problems_label() const { return problems_label_; }
  // The planner's estimate of the config's memory, against its device's free memory.
  QLabel* memory_label() const { return memory_; }
  QTextBrowser* preview() const { return preview_; }
  QPushButton* fetch_button() const { return fetch_; }
  // A background preview is being made (or waits to be remade).
  bool preview_pending() const { return preview_running_; }
  // The preview sits beside the form's column (a wide window), not in its Data section.
  bool preview_beside() const { return preview_beside_; }

 signals:
  void config_changed();
  void preview_ready();
  // A fetch ended: the model's path, or an empty path and why.
  void fetch_finished(const QString& path, const QString& error);

 protected:
  void resizeEvent(QResizeEvent* event) override;

 private:
  struct Binding {
    std::string key;
    QString label;
    QWidget* widget;
    QWidget* frame;  // around the editor: outlined when the field has a problem
    std::function<QString()> read;
    std::function<void(const QString&)> write;
  };
  // Every editor's row: its label, its tooltip (`tip`, for a researcher) and
  // its frame; `beside`: a widget in the same row, right of the editor.
  void add_row(QFormLayout* form, const std::string& key, const QString& label, const QString& tip, QWidget* editor,
               std::function<QString()> read, std::function<void(const QString&)> write, QWidget* beside = nullptr);
  void add_line(QFormLayout* form, const std::string& key, const QString& label, const QString& tip);
  void add_int(QFormLayout* form, const std::string& key, const QString& label, const QString& tip, int lo, int hi);
  void add_combo(QFormLayout* form, const std::string& key, const QString& label, const QString& tip,
                 const QStringList& items, bool editable = false, QWidget* beside = nullptr);
  void add_check(QFormLayout* form, const std::string& key, const QString& label, const QString& tip);
  void add_targets(QFormLayout* form, const std::string& key, const QString& label, const QString& tip);
  const Binding* binding(const std::string& key) const;
  void edited(const std::string& key, const QString& value);
  void refresh();
  void update_visibility();
  void start_preview();
  void update_memory_estimate();
  // Moves the data preview between the Data section and the side column.
  void place_preview(bool beside);
  // The model's shape when known: the resolved source's, else a built-in preset's.
  const ModelConfig* model_config() const;
  void refresh_presets();
  void fetch_clicked();

  ExperimentConfig config_;
  std::vector<Binding> bindings_;
  std::map<std::string, std::string> parse_errors_;
  std::map<std::string, std::string> problems_;
  std::map<std::string, std::pair<QFormLayout*, QWidget*>> rows_;  // for showing/hiding rows
  QFormLayout* forms_[kSections] = {};
  QGroupBox* boxes_[kSections] = {};
  QListWidget* sections_;
  QScrollArea* scroll_;
  QStackedWidget* method_pages_;  // one page per variant, in variants() order
  TargetPicker* targets_;
  QLabel* facts_;
  QLabel* memory_;
  QLabel* problems_label_;
  QTextBrowser* preview_;
  QLabel* preview_label_;       // its row's label in the Data section
  QLabel* side_preview_title_;  // its title in the side column
  QVBoxLayout* side_;           // facts, memory, problems (and the preview), then a spacer
  bool preview_beside_ = false;
  QComboBox* presets_ = nullptr;
  QPushButton* fetch_;
  QProgressBar* fetch_progress_;
  bool loading_ = false;
  // The last background result: the source for model_key() (or why it
  // failed, against which field), and the data problem of the config it read.
  std::shared_ptr<const DataSetup> setup_;
  std::string setup_key_, setup_field_, setup_error_;
  std::string previewed_config_, running_config_, data_error_;
  ModelConfig builtin_config_;
  bool preview_running_ = false, preview_again_ = false;
  std::shared_ptr<std::atomic<bool>> fetch_cancel_;
  // Free memory of the config's device, asked once per device name: making a
  // CUDA backend is too slow for every edit.
  std::string probed_device_;
  std::size_t device_free_ = 0;  // 0: unknown
  QString device_label_;         // the backend's name, or why it is unknown
};

}  // namespace lwb::ui
