#include "ui/samples_view.h"

#include <QHeaderView>
#include <QLabel>
#include <QTableWidget>
#include <QVBoxLayout>

#include "core/store/store.h"

namespace lwb::ui {

namespace {

// Headers stay short; the whole text is in the tooltip.
QString elided(const QString& text, int chars) {
  QString one_line = text.simplified();
  return one_line.size() > chars ? one_line.left(chars - 1) + QChar(0x2026) : one_line;
}

}  // namespace

SamplesView::SamplesView(QWidget* parent) : QWidget(parent) {
  hint_ = new QLabel;
  hint_->setObjectName("samples_hint");
  hint_->setWordWrap(true);
  table_ = new QTableWidget(0, 0);
  table_->setObjectName("samples_table");
  table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  table_->setWordWrap(true);
  table_->horizontalHeader()->setSectionResizeMode(QHeaderView::Stretch);
  table_->verticalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(0, 0, 0, 0);
  layout->addWidget(hint_);
  layout->addWidget(table_, 1);
  clear(tr("No samples yet."));
}

void SamplesView::clear(const QString& hint) {
  table_->setRowCount(0);
  table_->setColumnCount(0);
  hint_->setText(hint);
  hint_->setVisible(!hint.isEmpty());
}

int SamplesView::column_of(const TrainingSample& s) {
  if (s.prompt >= table_->columnCount()) table_->setColumnCount(s.prompt + 1);
  if (!table_->horizontalHeaderItem(s.prompt)) {
    const QString prompt = QString::fromStdString(s.prompt_text);
    auto* header = new QTableWidgetItem(tr("%1: %2").arg(s.prompt + 1).arg(elided(prompt, 40)));
    header->setToolTip(prompt);
    table_->setHorizontalHeaderItem(s.prompt, header);
  }
  return s.prompt;
}

void SamplesView::add(std::int64_t step, const std::vector<TrainingSample>& samples) {
  if (samples.empty()) return;
  hint_->hide();
  const int row = table_->rowCount();
  table_->insertRow(row);
  table_->setVerticalHeaderItem(row, new QTableWidgetItem(tr("step %1").arg(step)));
  for (const TrainingSample& s : samples) {
    const QString answer = QString::fromStdString(s.answer);
    auto* cell = new QTableWidgetItem(answer.isEmpty() ? tr("(empty)") : answer);
    cell->setToolTip(answer);
    table_->setItem(row, column_of(s), cell);
  }
  table_->scrollToBottom();
}

void SamplesView::set_rows(const std::vector<RunSampleRow>& rows) {
  clear(rows.empty() ? tr("This run has no samples (set Samples during training in Setup before a run).") : QString());
  std::vector<TrainingSample> step;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    step.push_back(rows[i].sample);
    if (i + 1 == rows.size() || rows[i + 1].step != rows[i].step) {
      add(rows[i].step, step);
      step.clear();
    }
  }
  table_->scrollToTop();
}

}  // namespace lwb::ui
