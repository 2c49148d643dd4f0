#include "ui/adapter_library.h"

#include <QColor>
#include <QDragEnterEvent>
#include <QDropEvent>
#include <QHeaderView>
#include <QLineEdit>
#include <QMimeData>
#include <QPushButton>
#include <QHBoxLayout>
#include <QTableWidget>
#include <QVBoxLayout>
#include <cmath>

#include "core/compose/session.h"
#include "core/store/store.h"

namespace lwb::ui {

namespace {

enum Column { kName, kVariant, kRank, kTask, kBase, kLoss, kMatch, kColumns };

// QTableWidget decides what a drag carries and what a drop means in
// protected virtuals; this one hands both to the library.
class LibraryTable : public QTableWidget {
 public:
  explicit LibraryTable(AdapterLibrary* library) : library_(library) {
    setDragEnabled(true);
    setAcceptDrops(true);
    setDragDropMode(QAbstractItemView::DragDrop);
    setDefaultDropAction(Qt::CopyAction);
  }

 protected:
  QStringList mimeTypes() const override { return {kAdapterMime}; }
  QMimeData* mimeData(const QList<QTableWidgetItem*>& items) const override {
    QList<int> rows;
    for (const QTableWidgetItem* item : items)
      if (!rows.contains(item->row())) rows.push_back(item->row());
    return library_->drag_data(rows);
  }
  // Only canvas nodes may land here; rows never move inside the table.
  void dragEnterEvent(QDragEnterEvent* e) override { accept_member(e); }
  void dragMoveEvent(QDragMoveEvent* e) override { accept_member(e); }
  void dropEvent(QDropEvent* e) override {
    if (!e->mimeData()->hasFormat(kMemberMime)) return e->ignore();
    bool ok = false;
    const int member = QString::fromUtf8(e->mimeData()->data(kMemberMime)).toInt(&ok);
    if (!ok) return e->ignore();
    e->setDropAction(Qt::MoveAction);
    e->accept();
    emit library_->member_returned(member);
  }

 private:
  static void accept_member(QDragMoveEvent* e) {
    if (e->mimeData()->hasFormat(kMemberMime)) {
      e->setDropAction(Qt::MoveAction);
      e->accept();
    } else {
      e->ignore();
    }
  }
  AdapterLibrary* library_;
};

QString number(double v, int decimals) { return std::isfinite(v) ? QString::number(v, 'f', decimals) : "-"; }

}  // namespace

AdapterLibrary::AdapterLibrary(std::filesystem::path db, QWidget* parent) : QWidget(parent), db_(std::move(db)) {
  filter_ = new QLineEdit;
  filter_->setObjectName("library_filter");
  filter_->setPlaceholderText(tr("Filter adapters (name, variant, task, base...)"));
  filter_->setClearButtonEnabled(true);
  auto* reload = new QPushButton(tr("Refresh"));
  table_ = new LibraryTable(this);
  table_->setObjectName("adapter_library");
  table_->setColumnCount(kColumns);
  table_->setHorizontalHeaderLabels(
      {tr("Adapter"), tr("Variant"), tr("Rank"), tr("Task"), tr("Base model"), tr("Held-out loss"), tr("Exact match")});
  table_->setSelectionBehavior(QAbstractItemView::SelectRows);
  table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  table_->verticalHeader()->setVisible(false);
  table_->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
  table_->setToolTip(tr("Drag adapters onto the canvas; drag a node back here to remove it."));

  auto* top = new QHBoxLayout;
  top->addWidget(filter_, 1);
  top->addWidget(reload);
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(0, 0, 0, 0);
  layout->addLayout(top);
  layout->addWidget(table_, 1);
  connect(filter_, &QLineEdit::textChanged, this, &AdapterLibrary::apply_filter);
  connect(reload, &QPushButton::clicked, this, &AdapterLibrary::refresh);
  refresh();
}

void AdapterLibrary::refresh() {
  std::vector<AdapterRow> adapters;
  try {
    Store store(db_);
    adapters = store.list_adapters();
  } catch (const std::exception& e) {
    emit error(QString::fromUtf8(e.what()));
    return;
  }
  table_->setSortingEnabled(false);
  table_->setRowCount(static_cast<int>(adapters.size()));
  for (int r = 0; r < table_->rowCount(); ++r) {
    const AdapterRow& a = adapters[static_cast<std::size_t>(r)];
    // A diverged run's adapter stays as a record, marked so nobody takes it for a sound one.
    const QStringList cells = {QString::fromStdString(a.name) + (a.diverged.empty() ? QString() : tr(" (diverged)")),
                               QString::fromStdString(a.variant),
                               QString::number(a.rank),
                               QString::fromStdString(a.task),
                               QString::fromStdString(a.base_model),
                               number(a.eval_loss, 4),
                               QString::fromStdString(compose::percent_text(a.eval_accuracy))};
    for (int c = 0; c < kColumns; ++c) {
      auto* item = new QTableWidgetItem(cells[c]);
      item->setData(Qt::UserRole, QVariant::fromValue<qint64>(a.id));
      if (c == kName)
        item->setToolTip(tr("targets %1, base %2").arg(QString::fromStdString(a.targets),
                                                       QString::fromStdString(a.base_fingerprint)) +
                         (a.diverged.empty() ? QString() : tr("\nIts run %1").arg(QString::fromStdString(a.diverged))));
      if (!a.diverged.empty()) item->setForeground(QColor(214, 39, 40));
      table_->setItem(r, c, item);
    }
  }
  table_->setSortingEnabled(true);
  apply_filter();
}

void AdapterLibrary::set_filter(const QString& text) { filter_->setText(text); }

void AdapterLibrary::apply_filter() {
  const QString text = filter_->text().trimmed();
  for (int r = 0; r < table_->rowCount(); ++r) {
    bool match = text.isEmpty();
    for (int c = 0; c < kColumns && !match; ++c) match = table_->item(r, c)->text().contains(text, Qt::CaseInsensitive);
    table_->setRowHidden(r, !match);
  }
}

int AdapterLibrary::rows() const { return table_->rowCount(); }

int AdapterLibrary::visible_rows() const {
  int n = 0;
  for (int r = 0; r < table_->rowCount(); ++r) n += table_->isRowHidden(r) ? 0 : 1;
  return n;
}

int AdapterLibrary::row_of(const QString& adapter_name) const {
  for (int r = 0; r < table_->rowCount(); ++r)
    if (table_->item(r, kName)->text() == adapter_name) return r;
  return -1;
}

qint64 AdapterLibrary::current_adapter() const {
  const int r = table_->currentRow();
  return r < 0 ? 0 : table_->item(r, kName)->data(Qt::UserRole).toLongLong();
}

QMimeData* AdapterLibrary::drag_data(const QList<int>& rows) const {
  QStringList ids;
  for (int r : rows) ids << QString::number(table_->item(r, kName)->data(Qt::UserRole).toLongLong());
  auto* mime = new QMimeData;
  mime->setData(kAdapterMime, ids.join('\n').toUtf8());
  return mime;
}

}  // namespace lwb::ui
