#pragma once
// The composition canvas: one movable node per member, in member order, each
// with its weight (slider and spin box) and a remove button, drawn as a graph:
// every member has an edge into the composition node on its right, as wide
// and as strongly coloured as its weight (blue positive, red negative) and
// labelled with it, so the canvas shows how the cards combine. Adapters dropped
// from the library are offered to the owner (adapters_dropped), which decides
// whether they may join; a node dragged out of the view carries kMemberMime
// so that the library can take it back. The canvas only shows members: the
// owner keeps the composition and calls add_node/remove_node.
#include <QGraphicsView>
#include <QList>
#include <vector>

class QAbstractButton;
class QDoubleSpinBox;
class QGraphicsPathItem;
class QGraphicsRectItem;
class QGraphicsSimpleTextItem;
class QMimeData;

namespace lwb::ui {

class CanvasNode;

class ComposeCanvas : public QGraphicsView {
  Q_OBJECT
 public:
  explicit ComposeCanvas(QWidget* parent = nullptr);
  ~ComposeCanvas() override;

  int size() const { return static_cast<int>(nodes_.size()); }
  // pos: the node's top-left corner in scene coordinates.
  void add_node(const QString& title, const QString& subtitle, double weight, QPointF pos);
  void remove_node(int i);
  void clear_nodes();
  // The exact weight (the spin box shows it rounded).
  double weight(int i) const;
  // Sets the weight without emitting weight_edited (a search moving it).
  void set_weight(int i, double w);
  QPointF position(int i) const;
  QString title(int i) const;
  QDoubleSpinBox* weight_box(int i) const;
  QAbstractButton* remove_button(int i) const;
  // What dragging node i out of the canvas carries (the caller owns it).
  QMimeData* drag_data(int i) const;
  // Zooms out (not below half size) until the nodes fit, and centres them.
  void show_all();
  // What the composition node says: the merge mode, and e.g. the objective.
  void set_composition_label(const QString& title, const QString& detail);
  double edge_width(int i) const;
  QColor edge_color(int i) const;
  QPointF composition_position() const;

 signals:
  void adapters_dropped(QList<qint64> adapter_ids, QPointF scene_pos);
  void weight_edited(int member, double weight);
  void node_moved(int member);
  void remove_requested(int member);

 protected:
  void dragEnterEvent(QDragEnterEvent* e) override;
  void dragMoveEvent(QDragMoveEvent* e) override;
  void dropEvent(QDropEvent* e) override;
  void mouseMoveEvent(QMouseEvent* e) override;

 private:
  int index_of(const CanvasNode* node) const;
  void fit_scene();
  void update_graph();

  std::vector<CanvasNode*> nodes_;
  std::vector<QGraphicsPathItem*> edges_;  // one per node, in the same order
  QGraphicsRectItem* sink_;                // the composition node
  QGraphicsSimpleTextItem* sink_title_;
  QGraphicsSimpleTextItem* sink_detail_;
};

}  // namespace lwb::ui
