#pragma once
// The live loss curve, read the way TensorBoard users expect: raw training
// loss with a debiased-EMA smoothed line (slider up to 0.999), held-out loss
// and exact-match accuracy on their own axis, log scale, follow the latest
// steps or show the whole history, a hover read-out, ReLoRA resets as
// vertical markers and the learning rate in a small plot below. Points are
// appended; a ~30 Hz timer replots only when something changed, with queued
// replots, and QCustomPlot's adaptive sampling keeps 100k-step runs smooth.
#include <QWidget>
#include <cstdint>

class QCustomPlot;
class QCPGraph;
class QCPAxisRect;
class QCPItemTracer;
class QCPItemText;
class QCheckBox;
class QSlider;
class QLabel;
class QTimer;
class QMouseEvent;

namespace lwb::ui {

class LossPlot : public QWidget {
  Q_OBJECT
 public:
  explicit LossPlot(QWidget* parent = nullptr);

  void clear();
  void add_train_point(double step, double loss, double lr);
  void add_eval_point(double step, double loss, double accuracy);  // accuracy NaN: none
  void add_marker(double step, const QString& label);             // e.g. a ReLoRA reset
  // 0 .. 0.999; debiased EMA as TensorBoard's.
  void set_smoothing(double beta);
  double smoothing() const { return beta_; }
  void set_log_scale(bool on);
  void set_follow(bool on);
  // Redraw now if anything changed (the timer calls it).
  void refresh();

  QCustomPlot* plot() const { return plot_; }
  int train_points() const;
  int eval_points() const;
  int markers() const { return markers_; }
  bool save_png(const QString& file);
  bool save_pdf(const QString& file);

 private:
  void rebuild_smoothed();
  void create_hover_items();
  void on_mouse_move(QMouseEvent* event);

  QCustomPlot* plot_;
  QCPAxisRect* lr_rect_;
  QCPGraph* raw_;
  QCPGraph* smooth_;
  QCPGraph* eval_;
  QCPGraph* accuracy_;
  QCPGraph* lr_;
  QCPItemTracer* tracer_;
  QCPItemText* readout_;
  QSlider* slider_;
  QLabel* slider_label_;
  QCheckBox* log_box_;
  QCheckBox* follow_box_;
  QTimer* timer_;
  double beta_ = 0.6;
  double ema_ = 0;      // running EMA state for appended points
  std::int64_t count_ = 0;
  double last_step_ = 0;
  int markers_ = 0;
  bool dirty_ = false;
  bool follow_ = true;
};

}  // namespace lwb::ui
