#include "ui/library_view.h"

#include <qcustomplot.h>

#include <QCheckBox>
#include <QComboBox>
#include <QDialog>
#include <QDialogButtonBox>
#include <QDoubleSpinBox>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QGridLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QInputDialog>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QLabel>
#include <QLineEdit>
#include <QMessageBox>
#include <QProgressBar>
#include <QPushButton>
#include <QSpinBox>
#include <QSplitter>
#include <QTableWidget>
#include <QTextBrowser>
#include <QVBoxLayout>
#include <cmath>
#include <map>

#include "core/compose/library_jobs.h"
#include "core/compose/session.h"
#include "core/data/tasks.h"
#include "core/store/adapter_transfer.h"
#include "core/store/store.h"
#include "ui/job_runner.h"
#include "ui/plot_style.h"
#include "ui/target_picker.h"

namespace lwb::ui {

namespace {

enum Column { kName, kBase, kMethod, kRank, kTask, kSource, kCompositions, kLoss, kMatch, kCreated, kColumns };
enum JobColumn { kJobId, kJobTool, kJobWhen, kJobInputs, kJobOutput, kJobSummary, kJobColumns };

QString qs(const std::string& s) { return QString::fromStdString(s); }
QString number(double v, int decimals) { return std::isfinite(v) ? QString::number(v, 'f', decimals) : "-"; }

QString inputs_text(const Derivation& d) {
  QStringList parts;
  for (const DerivationInput& i : d.inputs)
    parts << (std::isfinite(i.ratio) ? QString("%1 × %2").arg(i.ratio, 0, 'g', 4).arg(qs(i.label)) : qs(i.label));
  return parts.join(", ");
}

// What made an adapter, in a few words for the Source column.
QString source_text(const AdapterRow& a, const Derivation* made_by) {
  if (made_by) return QObject::tr("%1 of %2").arg(qs(made_by->tool), inputs_text(*made_by));
  if (a.run_id) return QObject::tr("run %1").arg(*a.run_id);
  return QObject::tr("imported or composed");
}

}  // namespace

LibraryView::LibraryView(std::filesystem::path db, QWidget* parent) : QWidget(parent), db_(std::move(db)) {
  runner_ = new JobRunner(this);
  filter_ = new QLineEdit;
  filter_->setObjectName("library_view_filter");
  filter_->setPlaceholderText(tr("Filter adapters (name, base, method, task, source...)"));
  filter_->setClearButtonEnabled(true);
  connect(filter_, &QLineEdit::textChanged, this, &LibraryView::apply_filter);

  table_ = new QTableWidget(0, kColumns);
  table_->setObjectName("library_table");
  table_->setHorizontalHeaderLabels({tr("Adapter"), tr("Base"), tr("Method"), tr("Rank"), tr("Task"), tr("Source"),
                                     tr("In compositions"), tr("Held-out loss"), tr("Exact match"), tr("Created")});
  table_->setSelectionBehavior(QAbstractItemView::SelectRows);
  table_->setSelectionMode(QAbstractItemView::ExtendedSelection);
  table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  table_->verticalHeader()->setVisible(false);
  table_->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
  table_->setSortingEnabled(true);
  connect(table_, &QTableWidget::itemSelectionChanged, this, &LibraryView::show_lineage);

  lineage_ = new QTextBrowser;
  lineage_->setObjectName("library_lineage");
  lineage_->setOpenLinks(false);

  auto* tools_box = new QGroupBox(tr("Tools (background jobs, recorded with their lineage)"));
  auto* tools_layout = new QGridLayout(tools_box);
  auto tool = [&](const QString& text, const char* name, const QString& tip, int row, int col,
                  std::function<void()> action) {
    auto* b = new QPushButton(text);
    b->setObjectName(name);
    b->setToolTip(tip);
    tools_layout->addWidget(b, row, col);
    connect(b, &QPushButton::clicked, this, std::move(action));
    tools_.push_back(b);
  };
  tool(tr("Merge into base..."), "library_merge",
       tr("The selected adapters at chosen ratios merged into their base, written as a base checkpoint a run can "
          "start from (model.base = the file)"),
       0, 0, [this] { ask_merge(); });
  tool(tr("Resize rank..."), "library_resize",
       tr("Re-factor the selected adapter at another rank by SVD of its update; the energy each module keeps is "
          "shown"),
       0, 1, [this] { ask_resize(); });
  tool(tr("Extract from full run..."), "library_extract",
       tr("A LoRA of rank r from a full fine-tuning run: the SVD of W_fine-tuned - W_base"), 0, 2,
       [this] { ask_extract(); });
  tool(tr("Verify"), "library_verify",
       tr("Check the selected adapter against its base: keys and shapes, the base's fingerprint, finite values, and "
          "the size of its update against each weight"),
       1, 0, [this] {
         if (const std::int64_t id = current_adapter())
           verify(id);
         else
           show_status(tr("Select the adapter to verify."), true);
       });
  tool(tr("Export..."), "library_export",
       tr("The selected adapter as a PEFT folder (adapter_config.json + adapter_model.safetensors), or merged into "
          "its base as a Hugging Face checkpoint. A ReLoRA adapter holds its whole update as one LoRA."),
       1, 1, [this] { ask_export(); });
  tool(tr("Import..."), "library_import", tr("A PEFT adapter folder into the library, checked against its base"), 1, 2,
       [this] { ask_import(); });
  progress_ = new QProgressBar;
  progress_->setObjectName("library_progress");
  progress_->setRange(0, 1000);
  progress_->setValue(0);
  progress_->setFormat("%p%");
  stage_ = new QLabel;
  cancel_ = new QPushButton(tr("Cancel"));
  cancel_->setObjectName("library_cancel");
  cancel_->setEnabled(false);
  connect(cancel_, &QPushButton::clicked, this, &LibraryView::cancel);
  auto* progress_row = new QHBoxLayout;
  progress_row->addWidget(progress_, 1);
  progress_row->addWidget(cancel_);
  tools_layout->addLayout(progress_row, 2, 0, 1, 3);
  tools_layout->addWidget(stage_, 3, 0, 1, 3);
  status_ = new QLabel(tr("Select adapters, then a tool."));
  status_->setObjectName("library_status");
  status_->setWordWrap(true);
  status_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  tools_layout->addWidget(status_, 4, 0, 1, 3);

  jobs_ = new QTableWidget(0, kJobColumns);
  jobs_->setObjectName("library_jobs");
  jobs_->setHorizontalHeaderLabels({tr("#"), tr("Tool"), tr("When"), tr("Inputs"), tr("Output"), tr("Result")});
  jobs_->setSelectionBehavior(QAbstractItemView::SelectRows);
  jobs_->setSelectionMode(QAbstractItemView::SingleSelection);
  jobs_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  jobs_->verticalHeader()->setVisible(false);
  jobs_->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
  jobs_->horizontalHeader()->setStretchLastSection(true);
  energy_ = new QCustomPlot;
  energy_->setObjectName("library_energy");
  energy_->setMinimumHeight(150);
  energy_->yAxis->setLabel(tr("energy kept %"));
  energy_->yAxis->setRange(0, 105);
  energy_->setVisible(false);
  connect(jobs_, &QTableWidget::itemSelectionChanged, this, [this] {
    const int r = jobs_->currentRow();
    if (r < 0) return;
    try {
      const std::int64_t id = jobs_->item(r, kJobId)->data(Qt::UserRole).toLongLong();
      for (const Derivation& d : Store(db_).list_derivations())
        if (d.id == id) show_job(d);
    } catch (const std::exception& e) {
      show_status(QString::fromUtf8(e.what()), true);
    }
  });

  auto* left = new QWidget;
  auto* left_layout = new QVBoxLayout(left);
  left_layout->setContentsMargins(0, 0, 0, 0);
  left_layout->addWidget(filter_);
  left_layout->addWidget(table_, 3);
  left_layout->addWidget(new QLabel(tr("<b>Jobs</b> (the library tools' record)")));
  left_layout->addWidget(jobs_, 2);
  auto* right = new QWidget;
  auto* right_layout = new QVBoxLayout(right);
  right_layout->setContentsMargins(0, 0, 0, 0);
  right_layout->addWidget(tools_box);
  right_layout->addWidget(new QLabel(tr("<b>Lineage</b> of the current adapter")));
  right_layout->addWidget(lineage_, 2);
  right_layout->addWidget(energy_, 2);
  auto* split = new QSplitter(Qt::Horizontal);
  split->addWidget(left);
  split->addWidget(right);
  split->setStretchFactor(0, 3);
  split->setStretchFactor(1, 2);
  auto* layout = new QVBoxLayout(this);
  layout->addWidget(split);

  connect(runner_, &JobRunner::failed, this, [this](const QString& m) { show_status(m, true); });
  connect(runner_, &JobRunner::done, this, [this] {
    set_busy(false);
    refresh();
    emit job_finished();
  });
  refresh();
}

LibraryView::~LibraryView() = default;

void LibraryView::refresh() {
  const std::vector<std::int64_t> selected = selected_adapters();
  std::vector<AdapterRow> adapters;
  std::vector<Derivation> jobs;
  std::map<std::int64_t, int> in_compositions;
  try {
    Store store(db_);
    adapters = store.list_adapters();
    jobs = store.list_derivations();
    for (const CompositionRow& c : store.list_compositions())
      for (const CompositionMember& m : store.load_composition(c.id).members) ++in_compositions[m.adapter_id];
  } catch (const std::exception& e) {
    show_status(QString::fromUtf8(e.what()), true);
    return;
  }
  std::map<std::int64_t, const Derivation*> made_by;
  for (const Derivation& d : jobs)
    if (d.output_adapter_id) made_by[*d.output_adapter_id] = &d;
  table_->setSortingEnabled(false);
  table_->clearSelection();
  table_->setRowCount(static_cast<int>(adapters.size()));
  for (int r = 0; r < table_->rowCount(); ++r) {
    const AdapterRow& a = adapters[static_cast<std::size_t>(r)];
    const auto m = made_by.find(a.id);
    const QStringList cells = {qs(a.name) + (a.diverged.empty() ? QString() : tr(" (diverged)")),
                               qs(a.base_model),
                               qs(a.variant),
                               QString::number(a.rank),
                               qs(a.task),
                               source_text(a, m == made_by.end() ? nullptr : m->second),
                               QString::number(in_compositions[a.id]),
                               number(a.eval_loss, 4),
                               qs(compose::percent_text(a.eval_accuracy)),
                               qs(a.created)};
    for (int c = 0; c < kColumns; ++c) {
      auto* item = new QTableWidgetItem(cells[c]);
      item->setData(Qt::UserRole, static_cast<qlonglong>(a.id));
      if (!a.diverged.empty()) item->setForeground(QColor(214, 39, 40));
      table_->setItem(r, c, item);
    }
    table_->item(r, kName)->setToolTip(tr("targets %1, base fingerprint %2").arg(qs(a.targets), qs(a.base_fingerprint)));
  }
  table_->setSortingEnabled(true);
  select_adapters(selected);
  apply_filter();

  jobs_->setRowCount(static_cast<int>(jobs.size()));
  for (int r = 0; r < jobs_->rowCount(); ++r) {
    const Derivation& d = jobs[static_cast<std::size_t>(r)];
    const QStringList cells = {QString::number(d.id), qs(d.tool), qs(d.created), inputs_text(d),
                               d.output_adapter_id ? qs(d.output_name) : qs(d.output_path),
                               qs(compose::describe_derivation(d))};
    for (int c = 0; c < kJobColumns; ++c) {
      auto* item = new QTableWidgetItem(cells[c]);
      item->setData(Qt::UserRole, static_cast<qlonglong>(d.id));
      item->setToolTip(cells[c]);
      jobs_->setItem(r, c, item);
    }
  }
  show_lineage();
}

void LibraryView::set_filter(const QString& text) { filter_->setText(text); }

void LibraryView::apply_filter() {
  const QString text = filter_->text().trimmed();
  for (int r = 0; r < table_->rowCount(); ++r) {
    bool match = text.isEmpty();
    for (int c = 0; c < kColumns && !match; ++c) match = table_->item(r, c)->text().contains(text, Qt::CaseInsensitive);
    table_->setRowHidden(r, !match);
  }
}

int LibraryView::row_of(const QString& name) const {
  for (int r = 0; r < table_->rowCount(); ++r)
    if (table_->item(r, kName)->text() == name) return r;
  return -1;
}

void LibraryView::select_adapters(const std::vector<std::int64_t>& ids) {
  table_->clearSelection();
  for (int r = 0; r < table_->rowCount(); ++r)
    if (std::find(ids.begin(), ids.end(), table_->item(r, kName)->data(Qt::UserRole).toLongLong()) != ids.end()) {
      table_->selectionModel()->select(table_->model()->index(r, 0),
                                       QItemSelectionModel::Select | QItemSelectionModel::Rows);
      table_->setCurrentCell(r, kName, QItemSelectionModel::NoUpdate);
    }
}

std::vector<std::int64_t> LibraryView::selected_adapters() const {
  std::vector<std::int64_t> ids;
  for (const QModelIndex& row : table_->selectionModel()->selectedRows())
    ids.push_back(table_->item(row.row(), kName)->data(Qt::UserRole).toLongLong());
  return ids;
}

std::int64_t LibraryView::current_adapter() const {
  const std::vector<std::int64_t> ids = selected_adapters();
  return ids.size() == 1 ? ids.front() : 0;
}

void LibraryView::show_lineage() {
  const std::int64_t id = current_adapter();
  if (!id) {
    lineage_->setHtml(tr("<i>Select one adapter to see where it comes from and where it went.</i>"));
    return;
  }
  try {
    Store store(db_);
    AdapterRow row;
    for (const AdapterRow& a : store.list_adapters())
      if (a.id == id) row = a;
    const AdapterLineage l = store.adapter_lineage(id);
    QString html = tr("<b>%1</b>: %2 r=%3 on %4, base %5 (fingerprint %6)")
                       .arg(qs(row.name).toHtmlEscaped(), qs(row.variant))
                       .arg(row.rank)
                       .arg(qs(row.targets), qs(row.base_model).toHtmlEscaped(), qs(row.base_fingerprint));
    html += "<ul>";
    if (!l.runs.empty()) {
      QStringList chain;
      for (std::int64_t r : l.runs) chain << tr("run %1").arg(r);
      html += tr("<li>trained by %1</li>").arg(chain.join(tr(", which resumed ")));
    }
    if (l.made_by)
      html += tr("<li>made by <b>%1</b> from %2: %3</li>")
                  .arg(qs(l.made_by->tool), inputs_text(*l.made_by).toHtmlEscaped(),
                       qs(compose::describe_derivation(*l.made_by)).toHtmlEscaped());
    if (l.runs.empty() && !l.made_by) html += tr("<li>imported, or kept from a composition</li>");
    if (!row.task.empty()) html += tr("<li>task: %1</li>").arg(qs(row.task));
    for (const auto& [cid, name] : l.compositions)
      html += tr("<li>member of composition \"%1\" (id %2)</li>").arg(qs(name).toHtmlEscaped()).arg(cid);
    for (const Derivation& d : l.used_by)
      html += tr("<li>input of %1 job %2 → %3</li>")
                  .arg(qs(d.tool))
                  .arg(d.id)
                  .arg((d.output_adapter_id ? qs(d.output_name) : d.output_path.empty() ? tr("a report")
                                                                                        : qs(d.output_path))
                           .toHtmlEscaped());
    html += "</ul>";
    lineage_->setHtml(html);
  } catch (const std::exception& e) {
    show_status(QString::fromUtf8(e.what()), true);
  }
}

void LibraryView::show_job(const Derivation& d) {
  const QJsonObject rep = QJsonDocument::fromJson(QByteArray::fromStdString(d.report_json)).object();
  const QJsonArray modules = rep.value("modules").toArray();
  energy_->clearPlottables();
  if (modules.isEmpty()) {
    energy_->setVisible(false);
    return;
  }
  // One bar per module: how much of its update's energy the new rank keeps.
  auto* bars = new QCPBars(energy_->xAxis, energy_->yAxis);
  bars->setBrush(QColor(31, 119, 180));
  bars->setPen(Qt::NoPen);
  bars->setName(tr("%1 to rank %2: %3% of the energy kept overall")
                    .arg(qs(d.tool))
                    .arg(rep.value("rank").toInt())
                    .arg(100 * rep.value("retained").toDouble(), 0, 'f', 1));
  auto ticker = QSharedPointer<QCPAxisTickerText>(new QCPAxisTickerText);
  for (int i = 0; i < modules.size(); ++i) {
    const QJsonObject m = modules[i].toObject();
    bars->addData(i, 100 * m.value("retained").toDouble());
    // "model.layers.3.self_attn.q_proj" -> "3 q"
    const QStringList parts = m.value("module").toString().split('.');
    ticker->addTick(i, parts.size() > 2 ? parts[2] + " " + parts.last().section('_', 0, 0) : m.value("module").toString());
  }
  energy_->xAxis->setTicker(ticker);
  energy_->xAxis->setTickLabelRotation(60);
  energy_->xAxis->setTickLabelFont(QFont(font().family(), 8));
  energy_->xAxis->setRange(-0.7, modules.size() - 0.3);
  energy_->yAxis->setRange(0, 105);
  if (!energy_->legend->visible()) {
    energy_->legend->setFont(QFont(font().family(), 8));
    put_legend_below(energy_, 1);
  }
  energy_->setVisible(true);
  energy_->replot(QCustomPlot::rpQueuedReplot);
}

void LibraryView::show_status(const QString& text, bool error) {
  status_->setStyleSheet(error ? "color: #d62728" : "");
  status_->setText(text);
}

void LibraryView::set_busy(bool busy) {
  for (QPushButton* b : tools_) b->setEnabled(!busy);
  cancel_->setEnabled(busy);
  if (!busy) stage_->clear();
}

bool LibraryView::busy() const { return runner_->busy(); }

void LibraryView::cancel() {
  runner_->cancel();
  stage_->setText(tr("Cancelling after the current module..."));
}

bool LibraryView::start(const QString& what, std::function<void(const std::atomic<bool>*)> job) {
  const std::atomic<bool>* flag = runner_->cancel_flag();
  if (!runner_->start([job = std::move(job), flag] { job(flag); })) {
    show_status(tr("Another library job is running; wait for it or cancel it."), true);
    return false;
  }
  set_busy(true);
  progress_->setValue(0);
  stage_->setText(what);
  show_status(what);
  return true;
}

namespace {

// Progress and notices from the job's thread to the view, queued.
compose::JobControl control_for(LibraryView* view, QProgressBar* bar, QLabel* stage, const std::atomic<bool>* cancel) {
  compose::JobControl c;
  c.cancel = cancel;
  c.progress = [view, bar, stage](const std::string& s, double fraction) {
    QMetaObject::invokeMethod(view, [bar, stage, text = qs(s), fraction] {
      bar->setValue(static_cast<int>(std::lround(1000 * fraction)));
      stage->setText(text);
    }, Qt::QueuedConnection);
  };
  return c;
}

}  // namespace

void LibraryView::show_kept(const Derivation& d) {
  show_status(tr("Kept \"%1\": %2.").arg(qs(d.output_name), qs(compose::describe_derivation(d))));
  show_job(d);
  emit library_changed();
}

bool LibraryView::resize(std::int64_t adapter_id, int rank, const QString& name) {
  return start(tr("Resizing to rank %1...").arg(rank), [this, adapter_id, rank, name](const std::atomic<bool>* cancel) {
    Store store(db_);
    const Derivation d = compose::resize_library_adapter(store, adapter_id, rank, name.trimmed().toStdString(),
                                                         control_for(this, progress_, stage_, cancel));
    QMetaObject::invokeMethod(this, [this, d] { show_kept(d); }, Qt::QueuedConnection);
  });
}

bool LibraryView::extract(std::int64_t run_id, int rank, const std::vector<Target>& targets, const QString& name) {
  return start(tr("Extracting rank %1 from run %2...").arg(rank).arg(run_id),
               [this, run_id, rank, targets, name](const std::atomic<bool>* cancel) {
                 Store store(db_);
                 const Derivation d = compose::extract_library_lora(store, run_id, rank, targets,
                                                                    name.trimmed().toStdString(), TrainerEnvironment{},
                                                                    control_for(this, progress_, stage_, cancel));
                 QMetaObject::invokeMethod(this, [this, d] { show_kept(d); }, Qt::QueuedConnection);
               });
}

bool LibraryView::merge(const std::vector<std::pair<std::int64_t, double>>& adapters, const QString& out_file,
                        bool overwrite) {
  return start(tr("Merging %1 adapter(s) into their base...").arg(adapters.size()),
               [this, adapters, out_file, overwrite](const std::atomic<bool>* cancel) {
                 Store store(db_);
                 const Derivation d = compose::merge_library_adapters(store, adapters, out_file.toStdString(), overwrite,
                                                                      TrainerEnvironment{},
                                                                      control_for(this, progress_, stage_, cancel));
                 QMetaObject::invokeMethod(this, [this, d] {
                   show_status(tr("%1. A run starts from it with model.base = %2.")
                                   .arg(qs(compose::describe_derivation(d)), qs(d.output_path)));
                   show_job(d);
                 }, Qt::QueuedConnection);
               });
}

bool LibraryView::verify(std::int64_t adapter_id, const QString& base) {
  return start(tr("Verifying..."), [this, adapter_id, base](const std::atomic<bool>* cancel) {
    Store store(db_);
    const Derivation d = compose::verify_library_adapter(store, adapter_id, base.toStdString(), TrainerEnvironment{},
                                                         control_for(this, progress_, stage_, cancel));
    const bool ok = QJsonDocument::fromJson(QByteArray::fromStdString(d.report_json)).object().value("ok").toBool();
    QMetaObject::invokeMethod(this, [this, d, ok] { show_status(qs(compose::describe_derivation(d)) + ".", !ok); },
                              Qt::QueuedConnection);
  });
}

bool LibraryView::export_adapter(std::int64_t adapter_id, const QString& dir, bool merged, bool overwrite,
                                 const QString& base_name) {
  try {
    check_export_folder(dir.toStdString(), overwrite);
  } catch (const std::exception& e) {
    show_status(QString::fromUtf8(e.what()), true);
    return false;
  }
  return start(merged ? tr("Merging into the base and writing %1...").arg(dir) : tr("Writing %1...").arg(dir),
               [this, adapter_id, dir, merged, overwrite, base_name](const std::atomic<bool>*) {
                 Store store(db_);
                 if (merged) {
                   MergedExport options;
                   options.overwrite = overwrite;
                   export_adapter_merged(store, adapter_id, dir.toStdString(), options, TrainerEnvironment{});
                 }
                 else
                   export_adapter_peft(store, adapter_id, dir.toStdString(), overwrite, base_name.trimmed().toStdString());
                 const QString line = merged ? tr("Wrote the base with the adapter merged in (Hugging Face "
                                                  "checkpoint) to %1.").arg(dir)
                                             : tr("Wrote the adapter as a PEFT folder to %1.").arg(dir);
                 QMetaObject::invokeMethod(this, [this, line] { show_status(line); }, Qt::QueuedConnection);
               });
}

bool LibraryView::import_adapter(const QString& dir, const QString& name, const QString& base, const QString& task) {
  return start(tr("Checking %1 against base %2...").arg(dir, base),
               [this, dir, name, base, task](const std::atomic<bool>*) {
                 Store store(db_);
                 import_adapter_peft(store, dir.toStdString(), name.trimmed().toStdString(),
                                     base.trimmed().toStdString(), task.toStdString(), TrainerEnvironment{});
                 QMetaObject::invokeMethod(this, [this, dir, name] {
                   show_status(tr("Imported %1 into the library as \"%2\".").arg(dir, name));
                   emit library_changed();
                 }, Qt::QueuedConnection);
               });
}

void LibraryView::ask_export() {
  const std::int64_t id = current_adapter();
  if (!id) return show_status(tr("Select the adapter to export."), true);
  const QStringList forms = {tr("PEFT adapter folder"), tr("merged into its base (Hugging Face checkpoint)")};
  bool ok = false;
  const QString form = QInputDialog::getItem(this, tr("Export adapter"), tr("Export as:"), forms, 0, false, &ok);
  if (!ok) return;
  QString base_name;
  if (form == forms[0]) {
    const auto items = table_->selectedItems();
    const QString base = items.isEmpty() ? QString() : table_->item(items.front()->row(), kBase)->text();
    base_name = QInputDialog::getText(
        this, tr("Export adapter"),
        tr("base_model_name_or_path, where PEFT loads the base from (a hub id such as org/name, or a path):"),
        QLineEdit::Normal, qs(peft_base_model_name(base.toStdString())), &ok);
    if (!ok) return;
  }
  const QString dir = QFileDialog::getExistingDirectory(this, tr("Export to"));
  if (dir.isEmpty()) return;
  const std::filesystem::path out = dir.toStdString();
  const bool taken = std::filesystem::exists(out) && !std::filesystem::is_empty(out);
  if (taken && QMessageBox::question(this, tr("Export adapter"), tr("%1 is not empty. Replace its files?").arg(dir)) !=
                   QMessageBox::Yes)
    return;
  export_adapter(id, dir, form == forms[1], taken, base_name);
}

void LibraryView::ask_import() {
  const QString dir = QFileDialog::getExistingDirectory(this, tr("PEFT adapter folder to import"));
  if (dir.isEmpty()) return;
  bool ok = false;
  const QString name = QInputDialog::getText(this, tr("Import adapter"), tr("Name in the library:"), QLineEdit::Normal,
                                             QFileInfo(dir).fileName(), &ok);
  if (!ok) return;
  const QString base = QInputDialog::getItem(this, tr("Import adapter"),
                                             tr("Base model (a preset, or the path of a checkpoint):"),
                                             {"tiny", "small"}, 0, true, &ok);
  if (!ok) return;
  QStringList tasks = {QString()};
  for (const auto& t : data::builtin_tasks()) tasks << qs(t.name);
  const QString task = QInputDialog::getItem(this, tr("Import adapter"), tr("Task it was trained on (optional):"),
                                             tasks, 0, true, &ok);
  if (ok) import_adapter(dir, name, base, task);
}

void LibraryView::ask_merge() {
  const std::vector<std::int64_t> ids = selected_adapters();
  if (ids.empty()) return show_status(tr("Select the adapters to merge (one or more)."), true);
  QDialog dialog(this);
  dialog.setWindowTitle(tr("Merge into the base"));
  auto* form = new QFormLayout(&dialog);
  form->addRow(new QLabel(tr("W = W_base + Σ ratio · ΔW of each adapter, written as a base checkpoint.")));
  std::vector<QDoubleSpinBox*> ratios;
  QStringList names;
  for (std::int64_t id : ids) {
    for (int r = 0; r < table_->rowCount(); ++r)
      if (table_->item(r, kName)->data(Qt::UserRole).toLongLong() == id) names << table_->item(r, kName)->text();
    auto* spin = new QDoubleSpinBox;
    spin->setRange(-10, 10);
    spin->setDecimals(3);
    spin->setSingleStep(0.1);
    spin->setValue(1.0);
    form->addRow(names.back(), spin);
    ratios.push_back(spin);
  }
  std::filesystem::path models;
  try {
    models = Store(db_).models_dir();
  } catch (const std::exception& e) {
    return show_status(QString::fromUtf8(e.what()), true);
  }
  auto* out = new QLineEdit(qs((models / ("merged-" + names.join("+").toStdString() + ".safetensors")).string()));
  out->setMinimumWidth(420);
  form->addRow(tr("Write to"), out);
  auto* buttons = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel);
  connect(buttons, &QDialogButtonBox::accepted, &dialog, &QDialog::accept);
  connect(buttons, &QDialogButtonBox::rejected, &dialog, &QDialog::reject);
  form->addRow(buttons);
  if (dialog.exec() != QDialog::Accepted) return;
  std::vector<std::pair<std::int64_t, double>> chosen;
  for (std::size_t i = 0; i < ids.size(); ++i) chosen.emplace_back(ids[i], ratios[i]->value());
  bool overwrite = false;
  if (QFileInfo::exists(out->text())) {
    if (QMessageBox::question(this, tr("Merge"), tr("%1 exists. Replace it?").arg(out->text())) != QMessageBox::Yes)
      return;
    overwrite = true;
  }
  merge(chosen, out->text(), overwrite);
}

void LibraryView::ask_resize() {
  const std::int64_t id = current_adapter();
  if (!id) return show_status(tr("Select the adapter to resize."), true);
  const int row = table_->currentRow();
  const QString name = table_->item(row, kName)->text();
  const int rank = table_->item(row, kRank)->text().toInt();
  QDialog dialog(this);
  dialog.setWindowTitle(tr("Resize %1").arg(name));
  auto* form = new QFormLayout(&dialog);
  auto* new_rank = new QSpinBox;
  new_rank->setRange(1, 65536);
  new_rank->setValue(std::max(1, rank / 2));
  auto* new_name = new QLineEdit(name + "-r" + QString::number(new_rank->value()));
  connect(new_rank, &QSpinBox::valueChanged, new_name,
          [new_name, name](int r) { new_name->setText(name + "-r" + QString::number(r)); });
  form->addRow(new QLabel(tr("Rank %1 now; the energy each module keeps is shown when the job ends.").arg(rank)));
  form->addRow(tr("New rank"), new_rank);
  form->addRow(tr("Name"), new_name);
  auto* buttons = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel);
  connect(buttons, &QDialogButtonBox::accepted, &dialog, &QDialog::accept);
  connect(buttons, &QDialogButtonBox::rejected, &dialog, &QDialog::reject);
  form->addRow(buttons);
  if (dialog.exec() == QDialog::Accepted) resize(id, new_rank->value(), new_name->text());
}

void LibraryView::ask_extract() {
  std::vector<RunRow> runs;
  try {
    for (RunRow& r : Store(db_).list_runs())
      if (r.has_model) runs.push_back(std::move(r));
  } catch (const std::exception& e) {
    return show_status(QString::fromUtf8(e.what()), true);
  }
  if (runs.empty())
    return show_status(tr("No full fine-tuning run has kept its weights yet (method full, finished or stopped in this "
                          "window)."),
                       true);
  QDialog dialog(this);
  dialog.setWindowTitle(tr("Extract a LoRA from a full fine-tuning run"));
  auto* form = new QFormLayout(&dialog);
  auto* run = new QComboBox;
  for (const RunRow& r : runs)
    run->addItem(tr("run %1 %2 (%3, %4 steps)").arg(r.id).arg(qs(r.experiment), qs(r.task)).arg(r.steps_done), static_cast<qlonglong>(r.id));
  auto* rank = new QSpinBox;
  rank->setRange(1, 65536);
  rank->setValue(8);
  auto* targets = new TargetPicker;
  targets->set_targets({kAllTargets.begin(), kAllTargets.end()});
  auto* name = new QLineEdit;
  auto update_name = [&] { name->setText(QString("run%1-extract-r%2").arg(run->currentData().toLongLong()).arg(rank->value())); };
  update_name();
  connect(run, &QComboBox::currentIndexChanged, name, update_name);
  connect(rank, &QSpinBox::valueChanged, name, update_name);
  form->addRow(new QLabel(tr("ΔW = W_fine-tuned − W_base of each targeted projection, cut to rank r by SVD.")));
  form->addRow(tr("Run"), run);
  form->addRow(tr("Rank"), rank);
  form->addRow(tr("Targets"), targets);
  form->addRow(tr("Name"), name);
  auto* buttons = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel);
  connect(buttons, &QDialogButtonBox::accepted, &dialog, &QDialog::accept);
  connect(buttons, &QDialogButtonBox::rejected, &dialog, &QDialog::reject);
  form->addRow(buttons);
  if (dialog.exec() == QDialog::Accepted)
    extract(run->currentData().toLongLong(), rank->value(), targets->targets(), name->text());
}

}  // namespace lwb::ui
