#include "ui/compose_canvas.h"

#include <QDrag>
#include <QDragEnterEvent>
#include <QDropEvent>
#include <QDoubleSpinBox>
#include <QGraphicsPathItem>
#include <QGraphicsProxyWidget>
#include <QGraphicsRectItem>
#include <QGraphicsSimpleTextItem>
#include <QHBoxLayout>
#include <QMimeData>
#include <QMouseEvent>
#include <QSlider>
#include <QToolButton>
#include <algorithm>
#include <cmath>
#include <functional>

#include "core/compose/search.h"
#include "ui/adapter_library.h"

namespace lwb::ui {

namespace {
constexpr double kNodeWidth = 230, kNodeHeight = 84;
constexpr int kSliderSteps = 100;  // per unit of weight
// The area always there to drop on; the scene grows around the nodes beyond it.
const QRectF kMinimumScene(-200, -200, 1200, 700);
// show_all() zooms out no further: the weight editors stay usable.
constexpr double kMinimumScale = 0.5;
// The composition node, right of the members.
constexpr double kSinkWidth = 190, kSinkHeight = 64, kSinkGap = 130;
constexpr double kMaxEdgeWidth = 8;

// Blue for a positive weight, red for a negative one, fading towards zero.
QPen edge_pen(double w) {
  const double strength = std::min(std::abs(w) / 1.5, 1.0);  // the search's box is ±1.5
  const QColor base = w >= 0 ? QColor(31, 119, 180) : QColor(214, 39, 40);
  QColor c = base;
  c.setAlphaF(0.25 + 0.75 * strength);
  QPen pen(c, 1 + (kMaxEdgeWidth - 1) * strength);
  pen.setCapStyle(Qt::RoundCap);
  return pen;
}
}  // namespace

// A member: a movable card with its name, a subtitle and the weight editors.
// The weight lives here at full precision; the editors show it.
class CanvasNode : public QGraphicsRectItem {
 public:
  CanvasNode(const QString& title, const QString& subtitle, double weight)
      : QGraphicsRectItem(0, 0, kNodeWidth, kNodeHeight), title_(title), weight_(weight) {
    setFlags(ItemIsMovable | ItemIsSelectable | ItemSendsGeometryChanges);
    setBrush(QColor(245, 248, 252));
    setPen(QPen(QColor(31, 119, 180), 1.5));
    auto* name = new QGraphicsSimpleTextItem(title, this);
    QFont bold = name->font();
    bold.setBold(true);
    name->setFont(bold);
    name->setPos(8, 6);
    auto* sub = new QGraphicsSimpleTextItem(subtitle, this);
    sub->setBrush(QColor(90, 90, 90));
    sub->setPos(8, 26);

    // The search's box bounds what a weight may be.
    const compose::SearchOptions box;
    auto* editors = new QWidget;
    editors->setAttribute(Qt::WA_TranslucentBackground);
    slider_ = new QSlider(Qt::Horizontal);
    slider_->setRange(static_cast<int>(box.lower * kSliderSteps), static_cast<int>(box.upper * kSliderSteps));
    spin_ = new QDoubleSpinBox;
    spin_->setRange(box.lower, box.upper);
    spin_->setDecimals(4);
    spin_->setSingleStep(0.05);
    remove_ = new QToolButton;
    remove_->setText(QStringLiteral("✕"));
    remove_->setToolTip(QObject::tr("Remove from the composition"));
    auto* row = new QHBoxLayout(editors);
    row->setContentsMargins(0, 0, 0, 0);
    row->addWidget(slider_, 1);
    row->addWidget(spin_);
    row->addWidget(remove_);
    editors->resize(static_cast<int>(kNodeWidth) - 12, editors->sizeHint().height());
    auto* proxy = new QGraphicsProxyWidget(this);
    proxy->setWidget(editors);
    proxy->setPos(6, kNodeHeight - editors->height() - 6);
    show_weight();

    QObject::connect(slider_, &QSlider::valueChanged, spin_,
                     [this](int v) { spin_->setValue(static_cast<double>(v) / kSliderSteps); });
    QObject::connect(spin_, &QDoubleSpinBox::valueChanged, spin_, [this](double v) {
      weight_ = v;
      show_weight();
      if (on_weight) on_weight(v);
    });
  }

  const QString& title() const { return title_; }
  double weight() const { return weight_; }
  void set_weight(double w) {
    weight_ = w;
    show_weight();
  }
  QDoubleSpinBox* spin() const { return spin_; }
  QToolButton* remove_button() const { return remove_; }

  std::function<void(double)> on_weight;  // the user changed the weight
  std::function<void()> on_moved;

 protected:
  QVariant itemChange(GraphicsItemChange change, const QVariant& value) override {
    if (change == ItemPositionHasChanged && on_moved) on_moved();
    return QGraphicsRectItem::itemChange(change, value);
  }

 private:
  void show_weight() {
    const QSignalBlocker a(slider_), b(spin_);
    slider_->setValue(static_cast<int>(std::lround(weight_ * kSliderSteps)));
    // The editor rounds for display; an untouched editor keeps the exact weight.
    spin_->setValue(weight_);
  }

  QString title_;
  double weight_;
  QSlider* slider_;
  QDoubleSpinBox* spin_;
  QToolButton* remove_;
};

ComposeCanvas::ComposeCanvas(QWidget* parent) : QGraphicsView(parent) {
  setScene(new QGraphicsScene(this));
  scene()->setSceneRect(kMinimumScene);
  sink_ = new QGraphicsRectItem(0, 0, kSinkWidth, kSinkHeight);
  sink_->setBrush(QColor(255, 250, 240));
  sink_->setPen(QPen(QColor(255, 127, 14), 2));
  sink_title_ = new QGraphicsSimpleTextItem(sink_);
  QFont bold = sink_title_->font();
  bold.setBold(true);
  sink_title_->setFont(bold);
  sink_title_->setPos(8, 6);
  sink_detail_ = new QGraphicsSimpleTextItem(sink_);
  sink_detail_->setBrush(QColor(90, 90, 90));
  sink_detail_->setPos(8, 28);
  sink_->setVisible(false);
  scene()->addItem(sink_);
  set_composition_label(tr("composition"), QString());
  setAcceptDrops(true);
  setRenderHint(QPainter::Antialiasing);
  setMinimumSize(420, 260);
  setToolTip(tr("Drop adapters from the library here; drag a node out to the library to remove it."));
}

ComposeCanvas::~ComposeCanvas() = default;

void ComposeCanvas::add_node(const QString& title, const QString& subtitle, double weight, QPointF pos) {
  auto* node = new CanvasNode(title, subtitle, weight);
  node->setPos(pos);
  node->on_weight = [this, node](double w) {
    update_graph();
    emit weight_edited(index_of(node), w);
  };
  node->on_moved = [this, node] {
    update_graph();
    fit_scene();
    emit node_moved(index_of(node));
  };
  connect(node->remove_button(), &QToolButton::clicked, this, [this, node] { emit remove_requested(index_of(node)); });
  scene()->addItem(node);
  nodes_.push_back(node);
  auto* edge = new QGraphicsPathItem;
  edge->setZValue(-1);  // behind the cards
  auto* label = new QGraphicsSimpleTextItem(edge);
  label->setBrush(QColor(60, 60, 60));
  scene()->addItem(edge);
  edges_.push_back(edge);
  update_graph();
  fit_scene();
}

void ComposeCanvas::set_composition_label(const QString& title, const QString& detail) {
  sink_title_->setText(title);
  sink_detail_->setText(detail);
  // As wide as its text: the scores never run past the node's border.
  const double text = std::max(sink_title_->boundingRect().width(), sink_detail_->boundingRect().width());
  sink_->setRect(0, 0, std::max(kSinkWidth, text + 16), kSinkHeight);
  fit_scene();
}

// Members -> the composition node, each edge as wide and as strongly coloured
// as its weight, labelled with it.
void ComposeCanvas::update_graph() {
  sink_->setVisible(!nodes_.empty());
  if (nodes_.empty()) return;
  QRectF members;
  for (const CanvasNode* n : nodes_) members = members.united(n->sceneBoundingRect());
  sink_->setPos(members.right() + kSinkGap, members.center().y() - kSinkHeight / 2);
  const QPointF in(sink_->pos() + QPointF(0, kSinkHeight / 2));
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    const QRectF card = nodes_[i]->sceneBoundingRect();
    const QPointF out(card.right(), card.center().y());
    QPainterPath path(out);
    const double dx = std::max(40.0, (in.x() - out.x()) / 2);
    path.cubicTo(out + QPointF(dx, 0), in - QPointF(dx, 0), in);
    edges_[i]->setPath(path);
    const double w = nodes_[i]->weight();
    edges_[i]->setPen(edge_pen(w));
    auto* label = static_cast<QGraphicsSimpleTextItem*>(edges_[i]->childItems().front());
    label->setText(QString::number(w, 'f', 3));
    label->setPos(path.pointAtPercent(0.5) + QPointF(-16, -18));
  }
}

double ComposeCanvas::edge_width(int i) const { return edges_.at(static_cast<std::size_t>(i))->pen().widthF(); }
QColor ComposeCanvas::edge_color(int i) const { return edges_.at(static_cast<std::size_t>(i))->pen().color(); }
QPointF ComposeCanvas::composition_position() const { return sink_->pos(); }

void ComposeCanvas::fit_scene() {
  scene()->setSceneRect(scene()->itemsBoundingRect().adjusted(-100, -100, 100, 100).united(kMinimumScene));
}

void ComposeCanvas::show_all() {
  resetTransform();
  const QRectF used = scene()->itemsBoundingRect().adjusted(-20, -20, 20, 20);
  if (used.isEmpty()) return;
  const double scale = std::clamp(std::min(viewport()->width() / used.width(), viewport()->height() / used.height()),
                                  kMinimumScale, 1.0);
  setTransform(QTransform::fromScale(scale, scale));
  centerOn(used.center());
}

void ComposeCanvas::remove_node(int i) {
  CanvasNode* node = nodes_.at(static_cast<std::size_t>(i));
  QGraphicsPathItem* edge = edges_.at(static_cast<std::size_t>(i));
  nodes_.erase(nodes_.begin() + i);
  edges_.erase(edges_.begin() + i);
  scene()->removeItem(node);
  scene()->removeItem(edge);
  delete node;
  delete edge;
  update_graph();
}

void ComposeCanvas::clear_nodes() {
  while (!nodes_.empty()) remove_node(size() - 1);
}

double ComposeCanvas::weight(int i) const { return nodes_.at(static_cast<std::size_t>(i))->weight(); }
void ComposeCanvas::set_weight(int i, double w) {
  nodes_.at(static_cast<std::size_t>(i))->set_weight(w);
  update_graph();
}
QPointF ComposeCanvas::position(int i) const { return nodes_.at(static_cast<std::size_t>(i))->pos(); }
QString ComposeCanvas::title(int i) const { return nodes_.at(static_cast<std::size_t>(i))->title(); }
QDoubleSpinBox* ComposeCanvas::weight_box(int i) const { return nodes_.at(static_cast<std::size_t>(i))->spin(); }
QAbstractButton* ComposeCanvas::remove_button(int i) const {
  return nodes_.at(static_cast<std::size_t>(i))->remove_button();
}

QMimeData* ComposeCanvas::drag_data(int i) const {
  auto* mime = new QMimeData;
  mime->setData(kMemberMime, QByteArray::number(i));
  return mime;
}

int ComposeCanvas::index_of(const CanvasNode* node) const {
  for (std::size_t i = 0; i < nodes_.size(); ++i)
    if (nodes_[i] == node) return static_cast<int>(i);
  return -1;
}

void ComposeCanvas::dragEnterEvent(QDragEnterEvent* e) { dragMoveEvent(e); }

// QGraphicsView forwards moves to the scene, which refuses drags no item
// wants; the canvas as a whole takes adapters.
void ComposeCanvas::dragMoveEvent(QDragMoveEvent* e) {
  if (e->mimeData()->hasFormat(kAdapterMime)) {
    e->setDropAction(Qt::CopyAction);
    e->accept();
  } else {
    e->ignore();
  }
}

void ComposeCanvas::dropEvent(QDropEvent* e) {
  if (!e->mimeData()->hasFormat(kAdapterMime)) return e->ignore();
  QList<qint64> ids;
  for (const QByteArray& line : e->mimeData()->data(kAdapterMime).split('\n')) {
    bool ok = false;
    const qint64 id = line.toLongLong(&ok);
    if (ok) ids.push_back(id);
  }
  // Always a copy: a move would make the library's table drop its rows.
  e->setDropAction(Qt::CopyAction);
  e->accept();
  emit adapters_dropped(ids, mapToScene(e->position().toPoint()));
}

// A node pulled past the edge of the view leaves as a drag the library can
// take (it then asks for the member's removal).
void ComposeCanvas::mouseMoveEvent(QMouseEvent* e) {
  auto* node = dynamic_cast<CanvasNode*>(scene()->mouseGrabberItem());
  if (node && (e->buttons() & Qt::LeftButton) && !viewport()->rect().contains(e->position().toPoint())) {
    node->ungrabMouse();
    auto* drag = new QDrag(this);
    drag->setMimeData(drag_data(index_of(node)));
    drag->exec(Qt::MoveAction);
    return;
  }
  QGraphicsView::mouseMoveEvent(e);
}

}  // namespace lwb::ui
