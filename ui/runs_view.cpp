#include "ui/runs_view.h"

#include <qcustomplot.h>

#include <QDialog>
#include <QDialogButtonBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QMessageBox>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSplitter>
#include <QTableWidget>
#include <QVBoxLayout>
#include <cmath>

#include "core/store/store.h"
#include "ui/memory_view.h"

namespace lwb::ui {

namespace {
QString fmt_metric(double v, int digits) { return std::isfinite(v) ? QString::number(v, 'f', digits) : QString("-"); }

const QColor kColors[] = {QColor(31, 119, 180), QColor(255, 127, 14), QColor(44, 160, 44), QColor(214, 39, 40),
                          QColor(148, 103, 189), QColor(140, 86, 75), QColor(227, 119, 194), QColor(127, 127, 127)};
}  // namespace

RunsView::RunsView(std::filesystem::path db, QWidget* parent) : QWidget(parent), db_(std::move(db)) {
  table_ = new QTableWidget(0, 10);
  table_->setHorizontalHeaderLabels({tr("id"), tr("experiment"), tr("method"), tr("data"), tr("status"), tr("steps"),
                                     tr("held-out loss"), tr("exact match %"), tr("peak memory"), tr("started")});
  table_->setSelectionBehavior(QAbstractItemView::SelectRows);
  table_->setSelectionMode(QAbstractItemView::ExtendedSelection);
  table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  table_->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
  table_->verticalHeader()->setVisible(false);

  plot_ = new QCustomPlot;
  plot_->setMinimumHeight(220);
  plot_->xAxis->setLabel(tr("step"));
  plot_->yAxis->setLabel(tr("train loss"));
  plot_->legend->setVisible(true);
  plot_->setInteractions(QCP::iRangeDrag | QCP::iRangeZoom);

  auto* buttons = new QHBoxLayout;
  auto button = [&](const QString& text, const QString& name) {
    auto* b = new QPushButton(text);
    b->setObjectName(name);
    buttons->addWidget(b);
    return b;
  };
  connect(button(tr("Refresh"), "runs_refresh"), &QPushButton::clicked, this, &RunsView::refresh);
  connect(button(tr("Overlay selected"), "runs_overlay"), &QPushButton::clicked, this,
          [this] { overlay(selected_runs()); });
  connect(button(tr("Show config"), "runs_config"), &QPushButton::clicked, this, &RunsView::show_config);
  connect(button(tr("Clone into setup"), "runs_clone"), &QPushButton::clicked, this, &RunsView::clone_selected);
  connect(button(tr("Resume"), "runs_resume"), &QPushButton::clicked, this, &RunsView::resume_selected);
  connect(button(tr("Delete..."), "runs_delete"), &QPushButton::clicked, this, &RunsView::delete_selected);
  buttons->addStretch(1);
  status_ = new QLabel;
  buttons->addWidget(status_);
  connect(table_, &QTableWidget::itemSelectionChanged, this, [this] { overlay(selected_runs()); });

  auto* split = new QSplitter(Qt::Vertical);
  split->addWidget(table_);
  split->addWidget(plot_);
  auto* layout = new QVBoxLayout(this);
  layout->addLayout(buttons);
  layout->addWidget(split, 1);
}

void RunsView::refresh() {
  try {
    Store store(db_);
    const auto runs = store.list_runs();
    table_->setRowCount(static_cast<int>(runs.size()));
    for (int i = 0; i < static_cast<int>(runs.size()); ++i) {
      const RunRow& r = runs[static_cast<std::size_t>(i)];
      const QStringList cells = {QString::number(r.id),
                                 QString::fromStdString(r.experiment),
                                 QString::fromStdString(r.method),
                                 QString::fromStdString(r.task),
                                 QString::fromStdString(r.status),
                                 QString("%1/%2").arg(r.steps_done).arg(r.total_steps),
                                 fmt_metric(r.final_eval_loss, 4),
                                 fmt_metric(100 * r.final_accuracy, 1),
                                 format_bytes(static_cast<double>(r.peak_bytes)),
                                 QString::fromStdString(r.started)};
      for (int c = 0; c < cells.size(); ++c) {
        auto* item = new QTableWidgetItem(cells[c]);
        if (c == 0) item->setData(Qt::UserRole, static_cast<qlonglong>(r.id));
        if (c == 4 && !r.error.empty()) item->setToolTip(QString::fromStdString(r.error));
        if (c == 4 && r.resumable) item->setText(item->text() + tr(", resumable"));
        table_->setItem(i, c, item);
      }
    }
    status_->setText(tr("%1 runs in %2").arg(runs.size()).arg(QString::fromStdString(db_.string())));
  } catch (const std::exception& e) {
    emit error(QString::fromUtf8(e.what()));
  }
}

std::vector<std::int64_t> RunsView::selected_runs() const {
  std::vector<std::int64_t> ids;
  for (const QModelIndex& row : table_->selectionModel()->selectedRows())
    ids.push_back(table_->item(row.row(), 0)->data(Qt::UserRole).toLongLong());
  return ids;
}

void RunsView::overlay(const std::vector<std::int64_t>& run_ids) {
  plot_->clearGraphs();
  try {
    Store store(db_);
    int i = 0;
    for (std::int64_t id : run_ids) {
      const auto metrics = store.run_metrics(id);
      const RunDetail d = store.get_run(id);
      QCPGraph* g = plot_->addGraph();
      g->setName(tr("run %1 %2 (%3)").arg(id).arg(QString::fromStdString(d.row.experiment),
                                               QString::fromStdString(d.row.method)));
      g->setPen(QPen(kColors[i++ % 8], 1.5));
      g->setAdaptiveSampling(true);
      QVector<double> x, y;
      for (const MetricRow& m : metrics)
        if (std::isfinite(m.loss)) {
          x.push_back(static_cast<double>(m.step));
          y.push_back(m.loss);
        }
      g->setData(x, y, true);
    }
  } catch (const std::exception& e) {
    emit error(QString::fromUtf8(e.what()));
  }
  plot_->rescaleAxes();
  plot_->replot(QCustomPlot::rpQueuedReplot);
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
  with_selected_run(tr("select one run"), [this](std::int64_t id, const RunDetail& d) {
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

void RunsView::delete_selected() {
  const auto ids = selected_runs();
  if (ids.empty()) return;
  const auto answer = QMessageBox::question(
      this, tr("Delete runs"),
      tr("Delete %1 run(s) with their metrics? Their adapters stay in the library.").arg(ids.size()));
  if (answer != QMessageBox::Yes) return;
  try {
    Store store(db_);
    for (std::int64_t id : ids) store.delete_run(id);
  } catch (const std::exception& e) {
    emit error(QString::fromUtf8(e.what()));
  }
  refresh();
  overlay({});
}

void RunsView::resume_selected() {
  with_selected_run(tr("select one run to resume"), [this](std::int64_t id, const RunDetail& d) {
    if (d.row.status == "queued" || d.row.status == "running") {
      status_->setText(tr("run %1 is still %2").arg(id).arg(QString::fromStdString(d.row.status)));
      return;
    }
    if (d.state_file.empty()) {
      status_->setText(tr("run %1 has no saved state to resume (LoRA, rsLoRA, DoRA and full runs save one while "
                          "they train and when stopped; a finished run needs none); clone it instead")
                           .arg(id));
      return;
    }
    ExperimentConfig c = ExperimentConfig::from_json(d.config_json, "run " + std::to_string(id));
    c.name += "-resumed";
    emit resume_requested(c, QString::fromStdString(d.state_file.string()));
  });
}

void RunsView::clone_selected() {
  with_selected_run(tr("select one run"), [this](std::int64_t id, const RunDetail& d) {
    ExperimentConfig c = ExperimentConfig::from_json(d.config_json, "run " + std::to_string(id));
    c.name += "-clone";
    emit clone_requested(c);
  });
}

}  // namespace lwb::ui
