#pragma once
// Where the memory goes, from the MemoryLedger: one stacked horizontal bar per
// layer (and the model-level buffers; the totals are in the line above), split into frozen weights,
// trainable weights, activations, gradients, optimiser state and workspace,
// with a marker at the peak; below it the device's used memory over the run
// beside this run's own buffers. Sizes in binary units (KiB, MiB, GiB).
#include <QWidget>
#include <memory>
#include <vector>

#include "core/tensor/ledger.h"

class QCustomPlot;
class QCPBars;
class QCPGraph;
class QLabel;

namespace lwb::ui {

// One colour per category, the same in every memory chart and table.
QColor mem_category_color(MemCategory c);
// "■ frozen weights" with the square in the category's colour.
QString mem_category_html(MemCategory c);

// Six stacked bars (one per category, in its colour) on a plot, one stack per
// labelled key: the layers of a ledger snapshot or a plan, or the methods of a
// comparison. Horizontal stacks are listed top-down, their labels thinned to
// what the height can show without overlap (32 layers at 720 px); vertical
// ones left-right. The legend sits below the plot.
class CategoryBars {
 public:
  // legend: whether the plot has one (below it) naming the categories.
  CategoryBars(QCustomPlot* plot, Qt::Orientation orientation, bool legend = true);
  // Bytes are divided by `unit` (bytes per value-axis unit). Sets the key axis
  // and returns the largest stack in axis units.
  double set(const QVector<QString>& labels, const std::vector<CategoryBytes>& stacks, double unit);
  // One stack per row: the model level, then each layer (the total is not a
  // bar: it would dwarf the layers).
  double set_layers(const std::vector<LedgerSnapshot::Row>& rows, double unit);
  void clear();
  QCPBars* bars(MemCategory c) const { return bars_[static_cast<int>(c)]; }
  int stacks() const;
  double unit() const { return unit_; }

 private:
  void thin_labels();

  QCustomPlot* plot_;
  Qt::Orientation orientation_;
  QCPBars* bars_[kMemCategoryCount];
  QVector<QString> labels_;
  double unit_ = 1;
  int shown_every_ = 0;
};

class MemoryView : public QWidget {
  Q_OBJECT
 public:
  explicit MemoryView(QWidget* parent = nullptr);
  void clear();
  void set_snapshot(const LedgerSnapshot& snapshot);
  // The run's last snapshot: its peak, and no "now" (its buffers are gone).
  void set_run_ended(const LedgerSnapshot& snapshot);
  // Device memory at a step (bytes); total 0 hides the plot.
  void add_device_point(double step, double used_bytes, double total_bytes);

  QCustomPlot* bars_plot() const { return bars_; }
  QCustomPlot* device_plot() const { return device_; }
  QLabel* summary_label() const { return summary_; }
  bool save_png(const QString& file);

 private:
  void show_snapshot(const LedgerSnapshot& snapshot, bool ended);

  QCustomPlot* bars_;
  QCustomPlot* device_;
  std::unique_ptr<CategoryBars> category_bars_;
  QCPGraph* used_;
  QCPGraph* own_;
  QLabel* summary_;
  double ledger_total_ = 0;  // bytes, of the last snapshot
};

// "12.3 MiB": binary units with one decimal, the planner's format (every view uses it)
QString format_bytes(double bytes);

}  // namespace lwb::ui
