#pragma once
// Samples during training as a table: a row per sampled step, a column per
// sample prompt (its text in the header, whole in the tooltip), each cell
// the answer at that step, so reading down a column shows how an answer
// changed. The Monitor fills it live from the run's step events; the Runs
// view from a stored run's samples.
#include <QWidget>
#include <cstdint>
#include <vector>

#include "core/train/events.h"

class QLabel;
class QTableWidget;

namespace lwb {
struct RunSampleRow;
}

namespace lwb::ui {

class SamplesView : public QWidget {
  Q_OBJECT
 public:
  explicit SamplesView(QWidget* parent = nullptr);

  // Empties the table; `hint` says why there is nothing (yet).
  void clear(const QString& hint);
  // The answers of one step, below the earlier ones.
  void add(std::int64_t step, const std::vector<TrainingSample>& samples);
  // A stored run's samples (Store::run_samples), replacing what is shown.
  void set_rows(const std::vector<RunSampleRow>& rows);

  QTableWidget* table() const { return table_; }
  QLabel* hint_label() const { return hint_; }

 private:
  // The column of prompt `index`, its header made on first sight.
  int column_of(const TrainingSample& s);

  QLabel* hint_;
  QTableWidget* table_;
};

}  // namespace lwb::ui
