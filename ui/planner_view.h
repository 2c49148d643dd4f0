#pragma once
// The memory planner: pick a model config (built-in, shipped under
// resources/models or any HF config.json), set the knobs `lora-workbench plan`
// takes, and compare the methods' estimated memory (core/plan/planner.h) per
// category, in total and per layer, against a GPU size. The planner is analytic
// and fast, so every edit replans at once (coalesced by a zero-time timer).
#include <QWidget>
#include <memory>
#include <vector>

#include "core/plan/planner.h"

class QCheckBox;
class QComboBox;
class QCPItemStraightLine;
class QCPItemText;
class QCustomPlot;
class QDoubleSpinBox;
class QLabel;
class QPlainTextEdit;
class QPushButton;
class QSpinBox;
class QTableWidget;
class QTimer;

namespace lwb::ui {

class CategoryBars;
class TargetPicker;

class PlannerView : public QWidget {
  Q_OBJECT
 public:
  // GPU sizes offered as presets, in GiB (as the plan command's --gpu).
  static constexpr double kGpuPresets[] = {24, 48, 80, 141};
  // Columns of the comparison table (one row per method): the six
  // categories, then these. Byte and parameter counts are in Qt::UserRole.
  enum Column { kTotalColumn = kMemCategoryCount, kTrainableColumn, kFitsColumn, kColumns };

  explicit PlannerView(QWidget* parent = nullptr);
  ~PlannerView() override;

  // A built-in preset or shipped config name, as listed in the model picker.
  void select_model(const QString& name);
  // Loads an HF config.json and selects it. A bad file leaves the model and
  // the plans as they were and shows why; returns false then.
  bool open_config(const QString& file);
  // The knobs (method aside) from an input, e.g. lisa_llama2_7b_input().
  void set_knobs(const PlanInput& in);
  PlanInput knobs() const;  // with the selected model; the method is each compared one's
  void set_methods(const QStringList& methods);
  QStringList methods() const;
  // A preset size or any other (custom), in GiB.
  void set_gpu_gib(double gib);
  double gpu_gib() const;
  // Whose layers and terms are shown.
  void show_details_of(const QString& method);

  // The last successful plans, one per compared method, in method order.
  const std::vector<MemoryPlan>& plans() const { return plans_; }
  bool fits(const QString& method) const;
  QTableWidget* table() const { return table_; }
  QCustomPlot* methods_plot() const { return methods_plot_; }
  QCustomPlot* layers_plot() const { return layers_plot_; }
  const CategoryBars& layer_bars() const { return *layer_bars_; }
  QLabel* error_label() const { return error_; }
  QLabel* summary_label() const { return summary_; }
  QPlainTextEdit* terms_text() const { return terms_; }
  QPushButton* lisa_button() const { return lisa_; }

 private:
  QWidget* build_knobs();
  bool load_model(const QString& name_or_path);
  void schedule();
  void replan();
  void show_plans();
  void show_details();

  std::vector<MemoryPlan> plans_;
  ModelConfig model_;
  QTimer* replan_timer_;

  QComboBox* model_box_;
  int model_index_ = 0;  // the entry whose model is planned
  std::vector<QCheckBox*> method_boxes_;  // variant_names() order
  QSpinBox* rank_;
  QDoubleSpinBox* dropout_;
  TargetPicker* targets_;
  QSpinBox* batch_;
  QSpinBox* seq_;
  QComboBox* precision_;
  QComboBox* optimizer_;
  QCheckBox* checkpointing_;
  QComboBox* profile_;
  QSpinBox* threads_;
  QComboBox* gpu_box_;
  QDoubleSpinBox* gpu_custom_;
  QPushButton* lisa_;

  QLabel* summary_;
  QLabel* error_;
  QCustomPlot* methods_plot_;
  std::unique_ptr<CategoryBars> method_bars_;
  QCPItemStraightLine* gpu_line_;
  QCPItemText* gpu_text_;
  QComboBox* details_box_;
  QCustomPlot* layers_plot_;
  std::unique_ptr<CategoryBars> layer_bars_;
  QTableWidget* table_;
  QPlainTextEdit* terms_;
};

}  // namespace lwb::ui
