#pragma once
// Where the memory goes, from the MemoryLedger: one stacked horizontal bar per
// layer (plus the model-level buffers and a total), split into frozen weights,
// trainable weights, activations, gradients, optimiser state and workspace,
// with a marker at the peak; below it the device's used and free memory over
// the run.
#include <QWidget>

#include "core/memory/ledger.h"

class QCustomPlot;
class QCPBars;
class QCPGraph;
class QCPItemStraightLine;
class QLabel;

namespace lwb::ui {

class MemoryView : public QWidget {
  Q_OBJECT
 public:
  explicit MemoryView(QWidget* parent = nullptr);
  void clear();
  void set_snapshot(const LedgerSnapshot& snapshot);
  // Device memory at a step (bytes); total 0 hides the plot.
  void add_device_point(double step, double used_bytes, double total_bytes);

  QCustomPlot* bars_plot() const { return bars_; }
  QCustomPlot* device_plot() const { return device_; }
  bool save_png(const QString& file);

 private:
  QCustomPlot* bars_;
  QCustomPlot* device_;
  QCPBars* category_bars_[kMemCategoryCount];
  QCPItemStraightLine* peak_line_;
  QCPGraph* used_;
  QCPGraph* total_;
  QLabel* summary_;
};

// "12.3 MiB"
QString format_bytes(double bytes);

}  // namespace lwb::ui
