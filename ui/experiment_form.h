#pragma once
// The whole ExperimentConfig as a form. Every editor is bound to one of the
// config's dotted keys, so parsing and validation are the engine's own
// (ExperimentConfig::set and ::problems): a bad field is outlined, its message
// shown, and the form reports whether the config can start.
#include <QWidget>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/train/experiment_config.h"

class QLabel;
class QFormLayout;
class QGroupBox;
class QPlainTextEdit;

namespace lwb::ui {

class TargetPicker;

class ExperimentForm : public QWidget {
  Q_OBJECT
 public:
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
  QLabel* facts_label() const { return facts_; }
  QLabel* problems_label() const { return problems_label_; }
  // The planner's estimate of the config's memory, against its device's free memory.
  QLabel* memory_label() const { return memory_; }

 signals:
  void config_changed();

 private:
  struct Binding {
    std::string key;
    QWidget* widget;
    std::function<QString()> read;
    std::function<void(const QString&)> write;
  };
  void add_line(QFormLayout* form, const std::string& key, const QString& label, const QString& tip = {});
  void add_int(QFormLayout* form, const std::string& key, const QString& label, int lo, int hi);
  void add_combo(QFormLayout* form, const std::string& key, const QString& label, const QStringList& items,
                 bool editable = false);
  void add_check(QFormLayout* form, const std::string& key, const QString& label);
  QWidget* targets_editor();
  void edited(const std::string& key, const QString& value);
  void refresh();
  void update_visibility();
  void update_preview();
  void update_memory_estimate();

  ExperimentConfig config_;
  std::vector<Binding> bindings_;
  std::map<std::string, std::string> parse_errors_;
  std::map<std::string, std::string> problems_;
  std::map<std::string, std::pair<QFormLayout*, QWidget*>> rows_;  // for showing/hiding rows
  QFormLayout* forms_[5] = {};
  TargetPicker* targets_;
  QGroupBox* method_box_;
  QLabel* facts_;
  QLabel* memory_;
  QLabel* problems_label_;
  QPlainTextEdit* preview_;
  bool loading_ = false;
  // Free memory of the config's device, asked once per device name: making a
  // CUDA backend is too slow for every edit.
  std::string probed_device_;
  std::size_t device_free_ = 0;  // 0: unknown
  QString device_label_;         // the backend's name, or why it is unknown
};

}  // namespace lwb::ui
