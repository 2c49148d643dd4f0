#include "ui/runs_view.h"

#include <qcustomplot.h>

#include <QApplication>
#include <QClipboard>
#include <QComboBox>
#include <QDialog>
#include <QDialogButtonBox>
#include <QFile>
#include <QFileDialog>
#include <QGridLayout>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QMessageBox>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSlider>
#include <QSplitter>
#include <QTabWidget>
#include <QTableWidget>
#include <QTextStream>
#include <QVBoxLayout>
#include <cmath>

#include "core/store/store.h"
#include "ui/memory_view.h"
#include "ui/plot_style.h"
#include "ui/predict_view.h"
#include "ui/run_chart.h"
#include "ui/samples_view.h"

namespace lwb::ui {

namespace {

// Status comes right after the name: at 1280x720 the list shows about four
// columns, and whether a run finished, failed or can resume matters most.
enum Column { kId, kExperiment, kStatus, kMethod, kData, kSteps, kHeldOut, kMatch, kPeak, kStarted, kColumns };
constexpr int kInitiallyShown = 5;  // the newest runs shown on the first listing

QString fmt_metric(double v, int digits) { return std::isfinite(v) ? QString::number(v, 'f', digits) : QString("-"); }

QIcon swatch(const QColor& c) {
  QPixmap p(12, 12);
  p.fill(c);
  return QIcon(p);
}

// A cell that sorts by its number, not by its text ("10/300" after "9/300").
class NumberItem : public QTableWidgetItem {
 public:
  NumberItem(double v, const QString& text) : QTableWidgetItem(text) { setData(Qt::UserRole + 1, v); }
  bool operator<(const QTableWidgetItem& other) const override {
    return data(Qt::UserRole + 1).toDouble() < other.data(Qt::UserRole + 1).toDouble();
  }
};

QTableWidgetItem* number_item(double v, const QString& text) { return new NumberItem(v, text); }

bool write_text(const QString& file, const QString& text) {
  QFile f(file);
  if (!f.open(QIODevice::WriteOnly | QIODevice::Truncate)) return false;
  QTextStream(&f) << text;
  return f.error() == QFile::NoError;
}

}  // namespace

RunsView::RunsView(std::filesystem::path db, QWidget* parent) : QWidget(parent), db_(std::move(db)) {
  filter_ = new QLineEdit;
  filter_->setObjectName("runs_filter");
  filter_->setPlaceholderText(tr("Filter runs (id, name, method, task, status...)"));
  filter_->setClearButtonEnabled(true);
  connect(filter_, &QLineEdit::textChanged, this, &RunsView::apply_filter);

  table_ = new QTableWidget(0, kColumns);
  table_->setObjectName("runs_table");
  table_->setHorizontalHeaderLabels({tr("run"), tr("experiment"), tr("status"), tr("method"), tr("data"), tr("steps"),
                                     tr("held-out loss"), tr("exact match %"), tr("peak memory"), tr("started")});
  table_->horizontalHeaderItem(kId)->setToolTip(tr("Tick a run to show it in the charts and the hyperparameter table"));
  table_->setSelectionBehavior(QAbstractItemView::SelectRows);
  table_->setSelectionMode(QAbstractItemView::ExtendedSelection);
  table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  table_->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
  table_->verticalHeader()->setVisible(false);
  table_->setSortingEnabled(true);
  table_->sortByColumn(kId, Qt::DescendingOrder);
  connect(table_, &QTableWidget::itemChanged, this, [this](QTableWidgetItem* item) {
    if (filling_ || item->column() != kId) return;
    const std::int64_t id = item->data(Qt::UserRole).toLongLong();
    if (item->checkState() == Qt::Checked)
      shown_.insert(id);
    else
      shown_.erase(id);
    redraw();
  });

  auto* actions = new QGridLayout;
  auto button = [&](const QString& text, const QString& name, int row, int col, const QString& tip = {}) {
    auto* b = new QPushButton(text);
    b->setObjectName(name);
    b->setToolTip(tip);
    actions->addWidget(b, row, col);
    return b;
  };
  connect(button(tr("Refresh"), "runs_refresh", 0, 0), &QPushButton::clicked, this, &RunsView::refresh);
  connect(button(tr("Show selected"), "runs_overlay", 0, 1, tr("Show exactly the selected runs in the charts")),
          &QPushButton::clicked, this, [this] { overlay(selected_runs()); });
  connect(button(tr("Config"), "runs_config", 0, 2, tr("The selected run's config (read-only)")),
          &QPushButton::clicked, this, &RunsView::show_config);
  connect(button(tr("Clone into setup"), "runs_clone", 1, 0), &QPushButton::clicked, this, &RunsView::clone_selected);
  connect(button(tr("Resume"), "runs_resume", 1, 1, tr("Continue a stopped or killed run from its saved state")),
          &QPushButton::clicked, this, &RunsView::resume_selected);
  connect(button(tr("Copy command"), "runs_command", 1, 2, tr("The CLI command that reproduces the selected run")),
          &QPushButton::clicked, this, &RunsView::copy_command);
  connect(button(tr("CSV..."), "runs_csv", 2, 0, tr("The selected run's metrics as CSV")), &QPushButton::clicked,
          this, [this] { download_selected(false); });
  connect(button(tr("JSON..."), "runs_json", 2, 1, tr("The selected run's record (config, summary, metrics) as JSON")),
          &QPushButton::clicked, this, [this] { download_selected(true); });
  connect(button(tr("Delete..."), "runs_delete", 2, 2, tr("Delete the selected runs (asks first, naming them)")),
          &QPushButton::clicked, this, &RunsView::delete_selected);
  status_ = new QLabel;
  status_->setObjectName("runs_status");
  status_->setWordWrap(true);
  status_->setTextInteractionFlags(Qt::TextSelectableByMouse);

  auto* left = new QWidget;
  auto* left_layout = new QVBoxLayout(left);
  left_layout->setContentsMargins(0, 0, 0, 0);
  left_layout->addWidget(filter_);
  left_layout->addWidget(table_, 1);
  left_layout->addLayout(actions);
  left_layout->addWidget(status_);

  x_axis_ = new QComboBox;
  x_axis_->setObjectName("runs_x_axis");
  for (XAxis x : {XAxis::Step, XAxis::RelativeTime, XAxis::WallTime})
    x_axis_->addItem(x_axis_name(x), static_cast<int>(x));
  connect(x_axis_, &QComboBox::currentIndexChanged, this, &RunsView::redraw);
  smoothing_ = new QSlider(Qt::Horizontal);
  smoothing_->setObjectName("runs_smoothing");
  smoothing_->setRange(0, 999);
  smoothing_->setValue(600);
  smoothing_->setToolTip(tr("Smoothing: exponential moving average, debiased as in TensorBoard"));
  smoothing_label_ = new QLabel("0.600");
  connect(smoothing_, &QSlider::valueChanged, this, [this](int v) {
    smoothing_label_->setText(QString::number(v / 1000.0, 'f', 3));
    redraw();
  });
  auto* controls = new QHBoxLayout;
  controls->addWidget(new QLabel(tr("x axis")));
  controls->addWidget(x_axis_);
  controls->addSpacing(12);
  controls->addWidget(new QLabel(tr("Smoothing")));
  controls->addWidget(smoothing_, 1);
  controls->addWidget(smoothing_label_);

  auto* charts = new QSplitter(Qt::Vertical);
  const RunMetric defaults[kCharts] = {RunMetric::TrainLoss, RunMetric::EvalLoss};
  for (int i = 0; i < kCharts; ++i) {
    charts_[i] = new RunChart(defaults[i]);
    charts_[i]->setObjectName(QString("runs_chart_%1").arg(i));
    connect(charts_[i], &RunChart::changed, this, &RunsView::redraw);
    charts->addWidget(charts_[i]);
  }
  hparams_ = new QTableWidget;
  hparams_->setObjectName("runs_hparams");
  hparams_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  hparams_->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
  auto* hparams_box = new QWidget;
  auto* hparams_layout = new QVBoxLayout(hparams_box);
  hparams_layout->setContentsMargins(0, 0, 0, 0);
  hparams_layout->addWidget(new QLabel(tr("<b>Hyperparameters that differ between the shown runs</b> (— where a "
                                               "setting does not apply to the run's method)")));
  hparams_layout->addWidget(hparams_, 1);
  charts->addWidget(hparams_box);
  charts->setStretchFactor(0, 3);
  charts->setStretchFactor(1, 3);
  charts->setStretchFactor(2, 2);

  auto* right = new QWidget;
  auto* right_layout = new QVBoxLayout(right);
  right_layout->setContentsMargins(0, 0, 0, 0);
  right_layout->addLayout(controls);
  right_layout->addWidget(charts, 1);

  // Beside the charts, what one selected run said: its samples during
  // training and Evaluate & Predict.
  samples_ = new SamplesView;
  predict_ = new PredictView(db_);
  connect(predict_, &PredictView::predicted, this, [this] { status_->setText(predict_->status_label()->text()); });
  pages_ = new QTabWidget;
  pages_->setObjectName("runs_pages");
  pages_->addTab(right, tr("Charts"));
  pages_->addTab(samples_, tr("Samples"));
  pages_->addTab(predict_, tr("Evaluate && Predict"));
  connect(table_, &QTableWidget::itemSelectionChanged, this, &RunsView::show_selected_run);
  show_selected_run();

  auto* split = new QSplitter(Qt::Horizontal);
  split->addWidget(left);
  split->addWidget(pages_);
  split->setStretchFactor(0, 2);
  split->setStretchFactor(1, 3);
  auto* layout = new QVBoxLayout(this);
  layout->addWidget(split);
}

RunsView::~RunsView() = default;

void RunsView::show_selected_run() {
  const std::vector<std::int64_t> selected = selected_runs();
  const std::int64_t run = selected.size() == 1 ? selected.front() : 0;
  if (run == shown_run_) return;
  shown_run_ = run;
  predict_->set_run(run);
  if (run == 0) {
    samples_->clear(tr("Select one run to see its samples during training."));
    return;
  }
  try {
    samples_->set_rows(Store(db_).run_samples(run));
  } catch (const std::exception& e) {
    samples_->clear(QString::fromStdString(e.what()));
  }
}

std::int64_t RunsView::id_at(int row) const { return table_->item(row, kId)->data(Qt::UserRole).toLongLong(); }

void RunsView::refresh() {
  const std::vector<std::int64_t> selected = selected_runs();
  const int current_row = table_->currentRow();
  const std::int64_t current = current_row >= 0 ? id_at(current_row) : 0;
  std::vector<RunRow> runs;
  try {
    runs = Store(db_).list_runs();
  } catch (const std::exception& e) {
    emit error(QString::fromUtf8(e.what()));
    return;
  }
  cache_.clear();
  const bool first = known_.empty();
  std::set<std::int64_t> present;
  filling_ = true;
  table_->setSortingEnabled(false);
  table_->clearSelection();
  table_->setRowCount(static_cast<int>(runs.size()));
  for (int i = 0; i < static_cast<int>(runs.size()); ++i) {
    const RunRow& r = runs[static_cast<std::size_t>(i)];
    present.insert(r.id);
    // New runs are shown at once; on the first listing, the newest few.
    if (first ? i < kInitiallyShown : !known_.contains(r.id)) shown_.insert(r.id);
    QString status = QString::fromStdString(r.status);
    if (r.resumable) status += tr(", resumable");
    auto* id = new QTableWidgetItem;
    id->setData(Qt::DisplayRole, static_cast<qlonglong>(r.id));
    id->setData(Qt::UserRole, static_cast<qlonglong>(r.id));
    id->setIcon(swatch(run_color(r.id)));
    id->setFlags(id->flags() | Qt::ItemIsUserCheckable);
    id->setCheckState(shown_.contains(r.id) ? Qt::Checked : Qt::Unchecked);
    table_->setItem(i, kId, id);
    table_->setItem(i, kExperiment, new QTableWidgetItem(QString::fromStdString(r.experiment)));
    table_->setItem(i, kStatus, new QTableWidgetItem(status));
    table_->setItem(i, kMethod, new QTableWidgetItem(QString::fromStdString(r.method)));
    table_->setItem(i, kData, new QTableWidgetItem(QString::fromStdString(r.task)));
    if (!r.error.empty()) table_->item(i, kStatus)->setToolTip(QString::fromStdString(r.error));
    if (r.parent_run_id)
      table_->item(i, kStatus)->setToolTip(tr("resumes run %1").arg(*r.parent_run_id) +
                                           (r.error.empty() ? QString() : "\n" + QString::fromStdString(r.error)));
    table_->setItem(i, kSteps, number_item(static_cast<double>(r.steps_done),
                                           QString("%1/%2").arg(r.steps_done).arg(r.total_steps)));
    table_->setItem(i, kHeldOut, number_item(r.final_eval_loss, fmt_metric(r.final_eval_loss, 4)));
    table_->setItem(i, kMatch, number_item(r.final_accuracy, fmt_metric(100 * r.final_accuracy, 1)));
    table_->setItem(i, kPeak, number_item(static_cast<double>(r.peak_bytes), format_bytes(static_cast<double>(r.peak_bytes))));
    table_->setItem(i, kStarted, new QTableWidgetItem(QString::fromStdString(r.started)));
  }
  known_.insert(present.begin(), present.end());
  std::erase_if(shown_, [&](std::int64_t id) { return !present.contains(id); });
  table_->setSortingEnabled(true);
  // The selection belongs to runs, not to row positions: put it back by id.
  select_runs(selected);
  for (int r = 0; r < table_->rowCount(); ++r)
    if (id_at(r) == current) table_->setCurrentCell(r, kId, QItemSelectionModel::NoUpdate);
  filling_ = false;
  apply_filter();
  status_->setText(tr("%1 runs in %2").arg(runs.size()).arg(QString::fromStdString(db_.string())));
  redraw();
  shown_run_ = -1;  // read again: a live run has more samples, a deleted one none
  show_selected_run();
}

void RunsView::select_runs(const std::vector<std::int64_t>& run_ids) {
  table_->clearSelection();
  for (int r = 0; r < table_->rowCount(); ++r)
    if (std::find(run_ids.begin(), run_ids.end(), id_at(r)) != run_ids.end())
      table_->selectionModel()->select(table_->model()->index(r, 0),
                                       QItemSelectionModel::Select | QItemSelectionModel::Rows);
}

std::vector<std::int64_t> RunsView::selected_runs() const {
  std::vector<std::int64_t> ids;
  for (const QModelIndex& row : table_->selectionModel()->selectedRows()) ids.push_back(id_at(row.row()));
  std::sort(ids.begin(), ids.end());
  return ids;
}

std::vector<std::int64_t> RunsView::shown_runs() const { return {shown_.begin(), shown_.end()}; }

void RunsView::overlay(const std::vector<std::int64_t>& run_ids) {
  shown_ = std::set<std::int64_t>(run_ids.begin(), run_ids.end());
  filling_ = true;
  for (int r = 0; r < table_->rowCount(); ++r)
    table_->item(r, kId)->setCheckState(shown_.contains(id_at(r)) ? Qt::Checked : Qt::Unchecked);
  filling_ = false;
  redraw();
}

void RunsView::set_filter(const QString& text) { filter_->setText(text); }

void RunsView::apply_filter() {
  const QString text = filter_->text().trimmed();
  for (int r = 0; r < table_->rowCount(); ++r) {
    bool match = text.isEmpty();
    for (int c = 0; c < kColumns && !match; ++c) match = table_->item(r, c)->text().contains(text, Qt::CaseInsensitive);
    table_->setRowHidden(r, !match);
  }
}

int RunsView::visible_rows() const {
  int n = 0;
  for (int r = 0; r < table_->rowCount(); ++r) n += table_->isRowHidden(r) ? 0 : 1;
  return n;
}

void RunsView::set_x_axis(XAxis axis) { x_axis_->setCurrentIndex(x_axis_->findData(static_cast<int>(axis))); }
void RunsView::set_smoothing(double beta) { smoothing_->setValue(static_cast<int>(std::lround(beta * 1000))); }

QCustomPlot* RunsView::plot() const { return charts_[0]->plot(); }

const RunData* RunsView::data_of(std::int64_t run_id) {
  auto it = cache_.find(run_id);
  if (it == cache_.end()) {
    Store store(db_);
    it = cache_.emplace(run_id, load_run_data(store, run_id)).first;
  }
  return &it->second;
}

void RunsView::redraw() {
  std::vector<const RunData*> runs;
  try {
    for (std::int64_t id : shown_) runs.push_back(data_of(id));
  } catch (const std::exception& e) {
    emit error(QString::fromUtf8(e.what()));
  }
  const auto axis = static_cast<XAxis>(x_axis_->currentData().toInt());
  for (RunChart* c : charts_) c->show_runs(runs, axis, smoothing_->value() / 1000.0);
  fill_hparams(runs);
}

void RunsView::fill_hparams(const std::vector<const RunData*>& runs) {
  std::vector<ExperimentConfig> configs;
  QStringList headers;
  for (const RunData* r : runs) {
    configs.push_back(r->config);
    headers << QString("#%1 %2").arg(r->row.id).arg(QString::fromStdString(r->row.experiment));
  }
  const std::vector<HparamRow> rows = differing_hparams(configs);
  hparams_->clear();
  hparams_->setColumnCount(static_cast<int>(runs.size()));
  hparams_->setHorizontalHeaderLabels(headers);
  for (int c = 0; c < static_cast<int>(runs.size()); ++c)
    hparams_->horizontalHeaderItem(c)->setIcon(swatch(run_color(runs[static_cast<std::size_t>(c)]->row.id)));
  hparams_->setRowCount(static_cast<int>(rows.size()));
  QStringList keys;
  for (int r = 0; r < static_cast<int>(rows.size()); ++r) {
    const HparamRow& row = rows[static_cast<std::size_t>(r)];
    keys << QString::fromStdString(row.key);
    for (int c = 0; c < static_cast<int>(runs.size()); ++c) {
      const std::optional<std::string>& value = row.values[static_cast<std::size_t>(c)];
      auto* item = new QTableWidgetItem(value ? QString::fromStdString(*value) : QString("—"));
      if (!value) {
        item->setForeground(palette().color(QPalette::PlaceholderText));
        item->setToolTip(tr("%1 does not apply to this run's method, %2")
                             .arg(QString::fromStdString(row.key),
                                  QString::fromStdString(runs[static_cast<std::size_t>(c)]->config.get("adapter.method"))));
      }
      hparams_->setItem(r, c, item);
    }
  }
  hparams_->setVerticalHeaderLabels(keys);
  if (runs.size() >= 2 && rows.empty()) {
    hparams_->setRowCount(1);
    hparams_->setVerticalHeaderLabels({tr("(none)")});
    hparams_->setItem(0, 0, new QTableWidgetItem(tr("the shown runs share every hyperparameter")));
  }
}

void RunsView::with_selected_run(const QString& hint,
                                 const std::function<void(std::int64_t, const RunDetail&)>& action) {
  const auto ids = selected_runs();
  if (ids.size() != 1) {
    status_->setText(hint);
    return;
  }
  try {
    Store store(db_);
    action(ids.front(), store.get_run(ids.front()));
  } catch (const std::exception& e) {
    emit error(QString::fromUtf8(e.what()));
  }
}

void RunsView::show_config() {
  with_selected_run(tr("Select one run to see its config."), [this](std::int64_t id, const RunDetail& d) {
    QDialog dialog(this);
    dialog.setWindowTitle(tr("Run %1 (read-only)").arg(id));
    // The config, then what the numbers depend on besides it and the seed.
    std::string details = d.config_json;
    if (!d.environment_json.empty())
      details += "\n\nWhat this run's numbers depend on (the same config and seed repeat only with all of these):\n" +
                 environment_text(environment_from_json(d.environment_json, "run " + std::to_string(id)));
    auto* text = new QPlainTextEdit(QString::fromStdString(details));
    text->setObjectName("run_details");
    text->setReadOnly(true);
    text->setFont(QFont("monospace", 9));
    auto* box = new QDialogButtonBox(QDialogButtonBox::Close);
    connect(box, &QDialogButtonBox::rejected, &dialog, &QDialog::reject);
    auto* layout = new QVBoxLayout(&dialog);
    layout->addWidget(text);
    layout->addWidget(box);
    dialog.resize(560, 600);
    dialog.exec();
  });
}

bool RunsView::delete_selected() {
  // What is asked about is exactly what is deleted: the ids, read once.
  const std::vector<std::int64_t> ids = selected_runs();
  if (ids.empty()) {
    status_->setText(tr("Select the runs to delete."));
    return false;
  }
  QStringList lines;
  for (int r = 0; r < table_->rowCount(); ++r)
    if (std::find(ids.begin(), ids.end(), id_at(r)) != ids.end())
      lines << tr("run %1 \"%2\" (%3 on %4, %5 at step %6)")
                   .arg(id_at(r))
                   .arg(table_->item(r, kExperiment)->text(), table_->item(r, kMethod)->text(),
                        table_->item(r, kData)->text(), table_->item(r, kStatus)->text(),
                        table_->item(r, kSteps)->text());
  const QString what = ids.size() == 1 ? tr("Delete %1?").arg(lines.front())
                                       : tr("Delete these %1 runs?\n  %2").arg(ids.size()).arg(lines.join("\n  "));
  QMessageBox box(QMessageBox::Question, tr("Delete runs"),
                  what + tr("\n\nTheir metrics, memory snapshots, saved state and kept weights are deleted with them; "
                            "their adapters stay in the library."),
                  QMessageBox::Yes | QMessageBox::Cancel, this);
  box.setObjectName("delete_runs_question");
  box.setDefaultButton(QMessageBox::Cancel);
  box.button(QMessageBox::Yes)->setText(ids.size() == 1 ? tr("Delete run %1").arg(ids.front())
                                                        : tr("Delete %1 runs").arg(ids.size()));
  if (box.exec() != QMessageBox::Yes) return false;
  QStringList deleted;
  try {
    Store store(db_);
    for (std::int64_t id : ids) {
      store.delete_run(id);
      deleted << QString::number(id);
    }
  } catch (const std::exception& e) {
    emit error(QString::fromUtf8(e.what()));
  }
  refresh();
  status_->setText(tr("Deleted run(s) %1.").arg(deleted.join(", ")));
  return !deleted.isEmpty();
}

void RunsView::resume_selected() {
  with_selected_run(tr("Select one run to resume."), [this](std::int64_t id, const RunDetail& d) {
    if (d.row.status == "queued" || d.row.status == "running") {
      status_->setText(tr("Run %1 is still %2.").arg(id).arg(QString::fromStdString(d.row.status)));
      return;
    }
    if (d.state_file.empty()) {
      status_->setText(tr("Run %1 has no saved state to resume (LoRA, rsLoRA, DoRA and full runs save one while "
                          "they train and when stopped; a finished run needs none); clone it instead.")
                           .arg(id));
      return;
    }
    ExperimentConfig c = ExperimentConfig::from_json(d.config_json, "run " + std::to_string(id));
    c.name += "-resumed";
    emit resume_requested(c, QString::fromStdString(d.state_file.string()), id);
  });
}

void RunsView::clone_selected() {
  with_selected_run(tr("Select one run to clone."), [this](std::int64_t id, const RunDetail& d) {
    ExperimentConfig c = ExperimentConfig::from_json(d.config_json, "run " + std::to_string(id));
    c.name += "-clone";
    emit clone_requested(c, id);
  });
}

QString RunsView::copy_command() {
  QString command;
  with_selected_run(tr("Select one run to copy its command."), [&](std::int64_t id, const RunDetail& d) {
    command = QString::fromStdString(
        reproduce_command(ExperimentConfig::from_json(d.config_json, "run " + std::to_string(id))));
    QApplication::clipboard()->setText(command);
    status_->setText(tr("Copied the command of run %1: %2").arg(id).arg(command) +
                     (d.row.parent_run_id ? tr(" (it trains from the start; the run itself resumed run %1)")
                                                .arg(*d.row.parent_run_id)
                                          : QString()));
  });
  return command;
}

bool RunsView::export_run_csv(std::int64_t run_id, const QString& file) {
  try {
    return write_text(file, run_csv(*data_of(run_id)));
  } catch (const std::exception& e) {
    emit error(QString::fromUtf8(e.what()));
    return false;
  }
}

bool RunsView::export_run_json(std::int64_t run_id, const QString& file) {
  try {
    return write_text(file, run_json(*data_of(run_id)));
  } catch (const std::exception& e) {
    emit error(QString::fromUtf8(e.what()));
    return false;
  }
}

void RunsView::download_selected(bool json) {
  with_selected_run(tr("Select one run to download."), [&](std::int64_t id, const RunDetail&) {
    const QString file = QFileDialog::getSaveFileName(this, json ? tr("Save run as JSON") : tr("Save run metrics as CSV"),
                                                      QString("run-%1.%2").arg(id).arg(json ? "json" : "csv"));
    if (file.isEmpty()) return;
    const bool ok = json ? export_run_json(id, file) : export_run_csv(id, file);
    status_->setText(ok ? tr("Wrote %1.").arg(file) : tr("Could not write %1.").arg(file));
  });
}

}  // namespace lwb::ui
