#pragma once
// Where the memory goes, from the MemoryLedger: one stacked horizontal bar per
// layer (plus the model-level buffers and a total), split into frozen weights,
// trainable weights, activations, gradients, optimiser state and workspace,
// with a marker at the peak; below it the device's used and free memory over
// the run.
#include <QWidget>
#include <memory>
#include <vector>

#include "core/tensor/ledger.h"

class QCustomPlot;
class QCPBars;
class QCPGraph;
class QCPItemStraightLine;
class QLabel;

namespace lwb::ui {

// One colour per category, the same in every memory chart and table.
QColor mem_category_color(MemCategory c);
// "■ frozen weights" with the square in the category's colour.
QString mem_category_html(MemCategory c);

// Six stacked bars (one per category, in its colour) on a plot, one stack per
// labelled key: the layers of a ledger snapshot or a plan, or the methods of a
// comparison. Horizontal stacks are listed top-down; vertical ones left-right.
class CategoryBars {
 public:
  CategoryBars(QCustomPlot* plot, Qt::Orientation orientation);
  // Bytes are divided by `unit` (bytes per value-axis unit). Sets the key axis
  // and returns the largest stack in axis units.
  double set(const QVector<QString>& labels, const std::vector<CategoryBytes>& stacks, double unit);
  // One stack per row (the model level, then each layer) and the total.
  double set_layers(const std::vector<LedgerSnapshot::Row>& rows, const CategoryBytes& total, double unit);
  void clear();
  QCPBars* bars(MemCategory c) const { return bars_[static_cast<int>(c)]; }
  int stacks() const;

 private:
  Qt::Orientation orientation_;
  QCPBars* bars_[kMemCategoryCount];
};

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
  std::unique_ptr<CategoryBars> category_bars_;
  QCPItemStraightLine* peak_line_;
  QCPGraph* used_;
  QCPGraph* total_;
  QLabel* summary_;
};

// "12.3 MiB"
QString format_bytes(double bytes);

}  // namespace lwb::ui
