#pragma once
// What a variant does while it trains: for AdaLoRA a heat-map of the kept
// rank of every module over the run (its step axis lined up with the loss
// plot's), for DoRA how far each layer's magnitude vectors moved from their
// start, for ReLoRA the resets and the rank of the accumulated update.
#include <QWidget>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/common/variant_event.h"

class QCustomPlot;
class QCPRange;
class QLabel;

namespace lwb::ui {

class HeatMap;

class VariantView : public QWidget {
  Q_OBJECT
 public:
  explicit VariantView(QWidget* parent = nullptr);
  ~VariantView() override;
  void clear();
  // step: the step the event was reported at (the payload's own step, when
  // it has one, wins); the run's last step for its end-of-run summary.
  void add_event(const VariantEvent& e, double step);
  // The x range of the loss plot, so that both show the same steps.
  void set_step_range(const QCPRange& range);

  QCustomPlot* rank_plot() const { return ranks_; }
  QCustomPlot* magnitude_plot() const { return magnitude_; }
  const HeatMap& rank_map() const { return *rank_map_; }
  QLabel* note_label() const { return note_; }
  int rank_updates() const { return static_cast<int>(rank_history_.size()); }
  bool save_png(const QString& file);

 private:
  void redraw_ranks();
  void redraw_magnitude(const std::map<std::string, double>& change);

  QLabel* note_;
  QCustomPlot* ranks_;
  std::unique_ptr<HeatMap> rank_map_;
  QCustomPlot* magnitude_;
  std::vector<std::string> modules_;  // heat-map rows
  std::vector<std::pair<double, std::map<std::string, int>>> rank_history_;
  QStringList relora_notes_;
};

}  // namespace lwb::ui
