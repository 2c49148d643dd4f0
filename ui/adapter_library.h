#pragma once
// The adapter library as a drag source for the composition canvas: one row
// per adapter in the store (name, variant, rank, task, base model, held-out
// scores), filtered by a text that any column may contain. Rows drag out as
// kAdapterMime (the adapter ids); canvas nodes dropped back here are
// reported by member_returned, and the canvas removes them. Export, import
// and the adapter tools live in the Library tab (LibraryView).
#include <QWidget>
#include <cstdint>
#include <filesystem>

class QLineEdit;
class QMimeData;
class QTableWidget;

namespace lwb::ui {

// Adapter ids, as decimal text, one per line.
inline constexpr char kAdapterMime[] = "application/x-lwb-adapter-ids";
// A canvas node's position in the member order, as decimal text.
inline constexpr char kMemberMime[] = "application/x-lwb-composition-member";

class AdapterLibrary : public QWidget {
  Q_OBJECT
 public:
  explicit AdapterLibrary(std::filesystem::path db, QWidget* parent = nullptr);

  // Reads the store again; the filter stays. Store errors are emitted.
  void refresh();
  void set_filter(const QString& text);
  QTableWidget* table() const { return table_; }
  int rows() const;          // all adapters, shown or not
  int visible_rows() const;  // those the filter lets through
  int row_of(const QString& adapter_name) const;  // -1 if absent
  // What dragging these rows carries (the caller owns it).
  QMimeData* drag_data(const QList<int>& rows) const;
  // The adapter of the current row; 0 when no row is current.
  qint64 current_adapter() const;

 signals:
  void member_returned(int member);
  void error(QString message);

 private:
  void apply_filter();

  std::filesystem::path db_;
  QLineEdit* filter_;
  QTableWidget* table_;
};

}  // namespace lwb::ui
