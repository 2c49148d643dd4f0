#pragma once
// Where the learning happens, as TensorBoard users look for it: the gradient
// norm of every layer over the steps (a heat-map lined up with the loss
// plot), and histograms of the trainable weights of one kind (lora_A,
// lora_B, ...) at a chosen step, drawn over those of the first step.
#include <QWidget>
#include <map>
#include <memory>
#include <vector>

#include "core/common/variant_event.h"

class QComboBox;
class QCustomPlot;
class QCPRange;
class QLabel;

namespace lwb::ui {

class HeatMap;

class TrainingStatsView : public QWidget {
  Q_OBJECT
 public:
  explicit TrainingStatsView(QWidget* parent = nullptr);
  ~TrainingStatsView() override;

  void clear();
  void add_layer_norms(double step, const std::vector<double>& norms);
  // Takes "train.weight_histogram" events; other kinds are ignored.
  void add_event(const VariantEvent& e);
  void set_step_range(const QCPRange& range);

  int norm_samples() const { return static_cast<int>(norm_steps_.size()); }
  int histogram_steps() const { return static_cast<int>(histograms_.size()); }
  QComboBox* step_box() const { return step_box_; }
  QComboBox* group_box() const { return group_box_; }
  QCustomPlot* norms_plot() const { return norms_plot_; }
  QCustomPlot* histogram_plot() const { return histogram_plot_; }
  const HeatMap& norms_map() const { return *norms_map_; }

 private:
  struct Histogram {
    double lo = 0, hi = 0, mean = 0, std = 0;
    std::vector<double> counts;
  };
  void redraw_norms();
  void redraw_histogram();

  QLabel* note_;
  QCustomPlot* norms_plot_;
  std::unique_ptr<HeatMap> norms_map_;
  QCustomPlot* histogram_plot_;
  QComboBox* step_box_;
  QComboBox* group_box_;
  std::vector<double> norm_steps_;
  std::vector<std::vector<double>> norms_;
  // step -> group -> histogram
  std::map<double, std::map<QString, Histogram>> histograms_;
};

}  // namespace lwb::ui
