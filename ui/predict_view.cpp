#include "ui/predict_view.h"

#include <QFileDialog>
#include <QGridLayout>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QSpinBox>
#include <QTableWidget>
#include <QVBoxLayout>
#include <cmath>

#include "core/format/atomic_file.h"
#include "core/store/run_predict.h"
#include "ui/job_runner.h"

namespace lwb::ui {

namespace {

QString qs(const std::string& s) { return QString::fromStdString(s); }

// Sorts by its number, shows it rounded; NaN (not measured) sorts first.
class NumberItem : public QTableWidgetItem {
 public:
  NumberItem(double value, const QString& text) : QTableWidgetItem(text), value_(value) {}
  bool operator<(const QTableWidgetItem& other) const override {
    const auto* o = dynamic_cast<const NumberItem*>(&other);
    if (!o) return QTableWidgetItem::operator<(other);
    if (std::isnan(value_) || std::isnan(o->value_)) return std::isnan(value_) && !std::isnan(o->value_);
    return value_ < o->value_;
  }

 private:
  double value_;
};

QTableWidgetItem* text_item(const std::string& text) {
  const QString t = qs(text);
  auto* item = new QTableWidgetItem(t.simplified());
  item->setToolTip(t);
  return item;
}

}  // namespace

PredictView::PredictView(std::filesystem::path db, QWidget* parent) : QWidget(parent), db_(std::move(db)) {
  title_ = new QLabel;
  title_->setObjectName("predict_title");
  title_->setWordWrap(true);
  data_ = new QLineEdit;
  data_->setObjectName("predict_data");
  data_->setPlaceholderText(tr("the run's held-out split"));
  data_->setToolTip(tr("A JSONL file read with the run's data settings, or empty for the run's held-out split"));
  auto* browse = new QPushButton(tr("JSONL..."));
  browse->setToolTip(tr("Choose a JSONL file of prompts with reference completions"));
  connect(browse, &QPushButton::clicked, this, [this] {
    const QString f = QFileDialog::getOpenFileName(this, tr("Data to predict"), {}, tr("JSONL (*.jsonl);;All files (*)"));
    if (!f.isEmpty()) set_data_file(f);
  });
  auto* held_out = new QPushButton(tr("Held-out"));
  held_out->setToolTip(tr("Predict the run's held-out split"));
  connect(held_out, &QPushButton::clicked, this, [this] { set_data_file({}); });
  count_ = new QSpinBox;
  count_->setObjectName("predict_count");
  count_->setRange(0, 1000000);
  count_->setValue(50);
  count_->setSpecialValueText(tr("all"));
  count_->setToolTip(tr("Predict at most this many examples (the first ones); all: every example"));
  run_ = new QPushButton(tr("Predict"));
  run_->setObjectName("predict_run");
  run_->setToolTip(tr("The run's adapter answers every example greedily; the result is stored with the run"));
  connect(run_, &QPushButton::clicked, this, &PredictView::start);
  cancel_ = new QPushButton(tr("Cancel"));
  cancel_->setObjectName("predict_cancel");
  connect(cancel_, &QPushButton::clicked, this, &PredictView::cancel);
  export_ = new QPushButton(tr("Export CSV..."));
  export_->setObjectName("predict_export");
  export_->setToolTip(tr("The rows in the data's order, as `lora-workbench predict --out` writes them"));
  connect(export_, &QPushButton::clicked, this, [this] {
    const QString f = QFileDialog::getSaveFileName(this, tr("Export predictions"), "predictions.csv", tr("CSV (*.csv)"));
    if (!f.isEmpty()) export_csv(f);
  });
  progress_ = new QProgressBar;
  progress_->setObjectName("predict_progress");
  progress_->setFormat(tr("%v / %m examples"));
  progress_->setRange(0, 1);
  progress_->setValue(0);

  auto* controls = new QGridLayout;
  controls->addWidget(new QLabel(tr("Data")), 0, 0);
  controls->addWidget(data_, 0, 1);
  controls->addWidget(browse, 0, 2);
  controls->addWidget(held_out, 0, 3);
  controls->addWidget(new QLabel(tr("Examples")), 1, 0);
  controls->addWidget(count_, 1, 1, Qt::AlignLeft);
  auto* buttons = new QHBoxLayout;
  buttons->addWidget(run_);
  buttons->addWidget(cancel_);
  buttons->addWidget(progress_, 1);
  buttons->addWidget(export_);
  controls->addLayout(buttons, 2, 0, 1, 4);
  controls->setColumnStretch(1, 1);

  means_ = new QLabel;
  means_->setObjectName("predict_means");
  means_->setTextFormat(Qt::RichText);
  status_ = new QLabel;
  status_->setObjectName("predict_status");
  status_->setWordWrap(true);
  table_ = new QTableWidget(0, kColumns);
  table_->setObjectName("predict_table");
  table_->setHorizontalHeaderLabels(
      {tr("#"), tr("prompt"), tr("reference"), tr("prediction"), tr("loss"), tr("exact"), tr("ROUGE-L")});
  table_->horizontalHeaderItem(kLoss)->setToolTip(tr("Mean cross-entropy of the reference completion (teacher-forced)"));
  table_->horizontalHeaderItem(kExact)->setToolTip(tr("The prediction equals the reference (ends trimmed)"));
  table_->horizontalHeaderItem(kRouge)->setToolTip(tr("ROUGE-L F1 of the prediction's and the reference's words"));
  table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  table_->setSelectionBehavior(QAbstractItemView::SelectRows);
  table_->verticalHeader()->hide();
  QHeaderView* h = table_->horizontalHeader();
  for (int c : {kIndex, kLoss, kExact, kRouge}) h->setSectionResizeMode(c, QHeaderView::ResizeToContents);
  for (int c : {kPrompt, kReference, kPrediction}) h->setSectionResizeMode(c, QHeaderView::Stretch);
  // In the data's order until a header is clicked (Qt's first sort is descending).
  table_->setSortingEnabled(true);
  table_->sortByColumn(kIndex, Qt::AscendingOrder);

  auto* layout = new QVBoxLayout(this);
  layout->addWidget(title_);
  layout->addLayout(controls);
  layout->addWidget(means_);
  layout->addWidget(status_);
  layout->addWidget(table_, 1);

  runner_ = new JobRunner(this);
  connect(runner_, &JobRunner::failed, this, [this](const QString& m) { show_status(m, true); });
  connect(runner_, &JobRunner::done, this, &PredictView::update_buttons);
  set_run(0);
}

PredictView::~PredictView() = default;

bool PredictView::busy() const { return runner_->busy(); }

void PredictView::set_data_file(const QString& path) { data_->setText(path); }

void PredictView::update_buttons() {
  run_->setEnabled(run_id_ > 0 && !busy());
  cancel_->setEnabled(busy());
  export_->setEnabled(!shown_.rows.empty() && !busy());
}

void PredictView::show_status(const QString& text, bool error) {
  status_->setStyleSheet(error ? "color: #d62728;" : "");
  status_->setText(text);
}

void PredictView::set_run(std::int64_t run_id) {
  if (busy()) return;
  run_id_ = run_id;
  show_predictions(PredictionSet{});
  show_status({});
  if (run_id == 0) {
    title_->setText(tr("<b>Evaluate & Predict</b>: select one run in the list."));
  } else {
    title_->setText(tr("<b>Evaluate & Predict</b> with the adapter of run %1").arg(run_id));
    try {
      Store store(db_);
      const std::vector<PredictionSet> stored = store.list_predictions(run_id);
      if (!stored.empty()) {
        show_predictions(store.load_predictions(stored.front().id));
        show_status(tr("Stored predictions %1 of %2 (%3 in all for this run).")
                        .arg(stored.front().id)
                        .arg(qs(stored.front().created))
                        .arg(stored.size()));
      }
    } catch (const std::exception& e) {
      show_status(qs(e.what()), true);
    }
  }
  update_buttons();
}

bool PredictView::start() {
  if (run_id_ == 0 || busy()) {
    show_status(run_id_ == 0 ? tr("Select one run first.") : tr("A prediction is running."), true);
    return false;
  }
  RunPrediction request;
  request.run_id = run_id_;
  request.data = data_->text().trimmed().toStdString();
  request.n = count_->value();
  progress_->setRange(0, 1);
  progress_->setValue(0);
  show_status(tr("Loading run %1's base and adapter...").arg(run_id_));
  const bool started = runner_->start([this, request]() mutable {
    request.options.cancel = runner_->cancel_flag();
    request.options.progress = [this](std::int64_t done, std::int64_t total) {
      QMetaObject::invokeMethod(this, [this, done, total] {
        progress_->setRange(0, static_cast<int>(total));
        progress_->setValue(static_cast<int>(done));
        show_status(tr("Predicted %1 of %2 examples...").arg(done).arg(total));
      }, Qt::QueuedConnection);
    };
    Store store(db_);
    PredictionSet set = predict_run(store, request, TrainerEnvironment{});
    const bool cancelled = runner_->cancel_flag()->load();
    if (!set.rows.empty()) set.id = store.save_predictions(set);
    QMetaObject::invokeMethod(this, [this, set, cancelled] {
      show_predictions(set);
      if (set.rows.empty()) {
        show_status(tr("Cancelled before the first examples were done; nothing was stored."));
        return;
      }
      show_status((cancelled ? tr("Cancelled: the first %1 predictions were stored as prediction set %2.")
                             : tr("%1 predictions stored as prediction set %2."))
                      .arg(set.rows.size())
                      .arg(set.id));
      emit predicted(set.id);
    }, Qt::QueuedConnection);
  });
  update_buttons();
  return started;
}

void PredictView::cancel() {
  runner_->cancel();
  show_status(tr("Cancelling after the current batch..."));
}

void PredictView::show_predictions(const PredictionSet& set) {
  shown_ = set;
  table_->setSortingEnabled(false);
  table_->setRowCount(static_cast<int>(set.rows.size()));
  for (int i = 0; i < static_cast<int>(set.rows.size()); ++i) {
    const infer::Prediction& p = set.rows[static_cast<std::size_t>(i)];
    table_->setItem(i, kIndex, new NumberItem(i + 1, QString::number(i + 1)));
    table_->setItem(i, kPrompt, text_item(p.prompt));
    table_->setItem(i, kReference, text_item(p.reference));
    table_->setItem(i, kPrediction, text_item(p.prediction));
    table_->setItem(i, kLoss, new NumberItem(p.loss, QString::number(p.loss, 'f', 4)));
    table_->setItem(i, kExact, new NumberItem(p.exact ? 1 : 0, p.exact ? tr("yes") : tr("no")));
    table_->setItem(i, kRouge, new NumberItem(p.rouge_l, QString::number(p.rouge_l, 'f', 3)));
  }
  table_->setSortingEnabled(true);
  if (set.rows.empty()) {
    means_->setText({});
  } else {
    const infer::PredictionSummary s = infer::summarize(set.rows);
    means_->setText(tr("<b>%1</b> on %2 examples of %3: mean loss <b>%4</b>, exact match <b>%5%</b>, ROUGE-L <b>%6</b>")
                        .arg(qs(set.adapter).toHtmlEscaped())
                        .arg(s.examples)
                        .arg(qs(set.data).toHtmlEscaped())
                        .arg(s.loss, 0, 'f', 4)
                        .arg(100 * s.exact_match, 0, 'f', 1)
                        .arg(s.rouge_l, 0, 'f', 3));
  }
  update_buttons();
}

bool PredictView::export_csv(const QString& file) {
  if (shown_.rows.empty()) {
    show_status(tr("No predictions to export."), true);
    return false;
  }
  try {
    io::write_file_atomically(file.toStdString(), predictions_csv(shown_.rows));
  } catch (const std::exception& e) {
    show_status(qs(e.what()), true);
    return false;
  }
  show_status(tr("Wrote %1.").arg(file));
  return true;
}

}  // namespace lwb::ui
