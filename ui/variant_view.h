#pragma once
// What a variant does while it trains: for AdaLoRA a heat-map of the kept
// rank of every module over the mask updates, for DoRA how far each layer's
// magnitude vectors moved from their start, for ReLoRA the resets and the
// rank of the accumulated update.
#include <QWidget>
#include <map>
#include <string>
#include <vector>

#include "core/common/variant_event.h"

class QCustomPlot;
class QCPColorMap;
class QLabel;

namespace lwb::ui {

class VariantView : public QWidget {
  Q_OBJECT
 public:
  explicit VariantView(QWidget* parent = nullptr);
  void clear();
  void add_event(const VariantEvent& e);

  QCustomPlot* rank_plot() const { return ranks_; }
  QCustomPlot* magnitude_plot() const { return magnitude_; }
  int rank_updates() const { return static_cast<int>(rank_history_.size()); }
  bool save_png(const QString& file);

 private:
  void redraw_ranks();
  void redraw_magnitude(const std::map<std::string, double>& change);

  QLabel* note_;
  QCustomPlot* ranks_;
  QCPColorMap* rank_map_;
  QCustomPlot* magnitude_;
  std::vector<std::string> modules_;                 // heat-map rows
  std::vector<std::pair<double, std::map<std::string, int>>> rank_history_;
  QStringList relora_notes_;
};

}  // namespace lwb::ui
