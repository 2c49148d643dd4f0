#include "ui/compose_view.h"

#include <QCheckBox>
#include <QComboBox>
#include <QFileDialog>
#include <QFileInfo>
#include <QFrame>
#include <QGridLayout>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QInputDialog>
#include <QJsonDocument>
#include <QJsonObject>
#include <QLabel>
#include <QMessageBox>
#include <QPlainTextEdit>
#include <QProgressBar>
#include <QScrollArea>
#include <QPushButton>
#include <QSpinBox>
#include <QSplitter>
#include <QTabWidget>
#include <QTableWidget>
#include <QVBoxLayout>
#include <algorithm>
#include <cmath>
#include <qcustomplot.h>
#include <utility>

#include "core/compose/library.h"
#include "core/compose/seeds.h"
#include "core/data/tasks.h"
#include "core/store/store.h"
#include "ui/adapter_library.h"
#include "ui/compose_canvas.h"
#include "ui/compose_worker.h"
#include "ui/objective_plot.h"
#include "ui/report_plot.h"

namespace lwb::ui {

namespace {

using namespace lwb::compose;

constexpr double kDropSpacing = 250;  // between nodes dropped together
// The library's column: its filter's text and the adapters' names readable.
constexpr int kLibraryMinWidth = 300;

QString qstr(const std::string& s) { return QString::fromStdString(s); }

// Two parts in a 3:2 proportion, at first as when it grows (the first layout
// would otherwise follow the children's size hints).
QSplitter* three_to_two(Qt::Orientation orientation, QWidget* first, QWidget* second) {
  auto* s = new QSplitter(orientation);
  s->addWidget(first);
  s->addWidget(second);
  s->setStretchFactor(0, 3);
  s->setStretchFactor(1, 2);
  s->setSizes({3000, 2000});
  return s;
}
QString number(double v) { return std::isfinite(v) ? QString::number(v, 'f', 4) : "-"; }
QString percent(double v) { return qstr(percent_text(v)); }

QString duration_text(double s) {
  const long t = std::lround(s);
  return t >= 3600 ? QString("%1 h %2 min").arg(t / 3600).arg((t / 60) % 60)
         : t >= 60 ? QString("%1 min %2 s").arg(t / 60).arg(t % 60)
                   : QString("%1 s").arg(t);
}

QString subtitle_of(const AdapterRow& row) {
  return QString("%1 r=%2 · %3").arg(qstr(row.variant)).arg(row.rank).arg(row.task.empty() ? "-" : qstr(row.task));
}

}  // namespace

ComposeView::ComposeView(std::filesystem::path db, QWidget* parent)
    : QWidget(parent), db_(std::move(db)), hub_preset_(hub_preset()) {
  library_ = new AdapterLibrary(db_);
  canvas_ = new ComposeCanvas;
  canvas_->setObjectName("compose_canvas");
  plot_ = new ObjectivePlot;
  // Each row scores one adapter on its own (the weights are on the canvas's
  // edges): zero-shot, every member alone, then the composition.
  scores_ = new QTableWidget(0, 4);
  scores_->setObjectName("compose_scores");
  scores_->setHorizontalHeaderLabels({tr("Scored alone"), tr("Few-shot loss"), tr("Held-out loss"), tr("Exact match")});
  scores_->horizontalHeaderItem(0)->setToolTip(
      tr("Zero-shot (the base), each member on its own, and the composition at its weights"));
  scores_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  scores_->verticalHeader()->setVisible(false);
  scores_->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
  scores_->horizontalHeader()->setSectionResizeMode(0, QHeaderView::Stretch);
  intervals_ = new QCustomPlot;
  intervals_->setObjectName("compose_intervals");
  // Beside the search's plot, shown when an evaluation has seeds.
  plots_ = new QTabWidget;
  plots_->setObjectName("compose_plots");
  plots_->addTab(plot_, tr("Search"));
  plots_->addTab(intervals_, tr("Seeds"));
  plots_->setTabVisible(1, false);
  status_ = new QLabel(tr("Drag adapters from the library onto the canvas."));
  status_->setObjectName("compose_status");
  status_->setWordWrap(true);
  summary_ = new QLabel;
  summary_->setObjectName("compose_summary");
  summary_->setWordWrap(true);
  summary_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  hub_progress_ = new QProgressBar;
  hub_progress_->setObjectName("compose_hub_progress");
  hub_progress_->setVisible(false);
  hub_stage_ = new QLabel;
  hub_stage_->setObjectName("compose_hub_stage");
  hub_stage_->setVisible(false);
  log_ = new QPlainTextEdit;
  log_->setObjectName("compose_log");
  log_->setReadOnly(true);
  log_->setMaximumBlockCount(2000);
  worker_ = new ComposeWorker(db_, this);
  choose_export_dir_ = [this] { return QFileDialog::getExistingDirectory(this, tr("Export to")); };

  plots_->addTab(log_, tr("Log"));
  // The settings and the buttons over the whole width; under them the canvas
  // beside its plots, then the scores beside what they say (the seeds'
  // intervals and verdicts, scrolled when long), so that on a laptop screen
  // neither squeezes the other; the library keeps a column wide enough to
  // filter and read.
  QSplitter* view = three_to_two(Qt::Horizontal, canvas_, plots_);
  auto* summary_scroll = new QScrollArea;
  summary_scroll->setObjectName("compose_summary_scroll");
  summary_scroll->setWidget(summary_);
  summary_scroll->setWidgetResizable(true);
  summary_scroll->setFrameShape(QFrame::NoFrame);
  summary_->setAlignment(Qt::AlignTop | Qt::AlignLeft);
  QSplitter* results = three_to_two(Qt::Horizontal, scores_, summary_scroll);
  QSplitter* stack = three_to_two(Qt::Vertical, view, results);
  auto* body = new QWidget;
  auto* body_layout = new QVBoxLayout(body);
  body_layout->setContentsMargins(0, 0, 0, 0);
  body_layout->addWidget(build_controls());
  body_layout->addWidget(build_buttons());
  body_layout->addWidget(stack, 1);
  body_layout->addWidget(hub_progress_);
  body_layout->addWidget(hub_stage_);
  body_layout->addWidget(status_);
  library_->setMinimumWidth(kLibraryMinWidth);
  auto* split = new QSplitter(Qt::Horizontal);
  split->addWidget(library_);
  split->addWidget(body);
  split->setStretchFactor(0, 1);
  split->setStretchFactor(1, 4);
  split->setCollapsible(0, false);
  auto* layout = new QVBoxLayout(this);
  layout->addWidget(split);

  connect(library_, &AdapterLibrary::error, this, [this](const QString& m) { show_status(m, true); });
  // Queued: the drop that asks for the removal may come from the node's own drag.
  connect(library_, &AdapterLibrary::member_returned, this, &ComposeView::remove_member, Qt::QueuedConnection);
  connect(canvas_, &ComposeCanvas::adapters_dropped, this, [this](const QList<qint64>& ids, QPointF pos) {
    for (int i = 0; i < ids.size(); ++i) add_adapter(ids[i], pos + QPointF(kDropSpacing * i, 0));
  });
  // Queued: the request comes from the node's own button, which the removal deletes.
  connect(canvas_, &ComposeCanvas::remove_requested, this, &ComposeView::remove_member, Qt::QueuedConnection);
  connect(canvas_, &ComposeCanvas::weight_edited, this, &ComposeView::mark_dirty);
  connect(canvas_, &ComposeCanvas::node_moved, this, &ComposeView::mark_dirty);
  connect(worker_, &ComposeWorker::trial, this, &ComposeView::on_trial);
  connect(worker_, &ComposeWorker::searched, this, &ComposeView::on_searched);
  connect(worker_, &ComposeWorker::evaluated, this, [this](const Evaluation& e) {
    evaluation_ = e;
    show_evaluation();
    mark_dirty();
    show_status(e.seeds.empty() ? tr("Evaluated on %1 held-out examples.").arg(e.zero_shot().heldout.examples)
                                : tr("Searched and evaluated over %1 seeds%2, each on %3 held-out examples of its "
                                     "own; the weights are the first seed's.")
                                      .arg(e.seeds.size())
                                      .arg(static_cast<int>(e.seeds.size()) < seeds_->value()
                                               ? tr(" (stopped: %1 asked for)").arg(seeds_->value())
                                               : QString())
                                      .arg(e.zero_shot().heldout.examples));
  });
  connect(worker_, &ComposeWorker::exported, this, [this](const QString& dir, const QString& adapter) {
    QString text = tr("Wrote the merged adapter as a PEFT folder to %1").arg(dir);
    if (!adapter.isEmpty()) {
      text += tr("; added to the library as \"%1\"").arg(adapter);
      library_->refresh();
    }
    show_status(text + ".");
    log(text);
  });
  connect(worker_, &ComposeWorker::hub_finished, this, [this](qint64 id, const QString& report) {
    log(report);
    library_->refresh();
    if (id == 0)
      show_status(tr("Hub demo stopped while training; the adapters trained so far are in the library."));
    hub_composition_ = id;
  });
  connect(worker_, &ComposeWorker::hub_progress, this,
          [this](qint64 done, qint64 total, const QString& stage, double eta_s) {
            hub_progress_->setVisible(true);
            hub_stage_->setVisible(true);
            hub_progress_->setRange(0, static_cast<int>(total));
            hub_progress_->setValue(static_cast<int>(done));
            hub_stage_->setText(std::isfinite(eta_s) ? tr("%1 · about %2 left").arg(stage, duration_text(eta_s))
                                                     : stage);
          });
  connect(worker_, &ComposeWorker::notice, this, &ComposeView::log);
  connect(worker_, &ComposeWorker::failed, this, [this](const QString& m) {
    show_status(m, true);
    log(tr("error: %1").arg(m));
  });
  connect(worker_, &ComposeWorker::done, this, [this] {
    set_busy(false);
    hub_progress_->setVisible(false);
    hub_stage_->setVisible(false);
    // The hub's result opens once the worker is free (open refuses while busy).
    if (hub_composition_ != 0) open_composition(std::exchange(hub_composition_, 0));
    emit job_finished();
  });
  set_busy(false);
}

ComposeView::~ComposeView() = default;

QWidget* ComposeView::build_controls() {
  auto* box = new QWidget;
  auto* grid = new QGridLayout(box);
  grid->setContentsMargins(0, 0, 0, 0);
  task_ = new QComboBox;
  task_->setObjectName("compose_task");
  for (const data::TaskInfo& t : data::builtin_tasks()) {
    task_->addItem(qstr(t.name));
    task_->setItemData(task_->count() - 1, qstr(t.description), Qt::ToolTipRole);
  }
  task_->setCurrentText(qstr(hub_preset_.target));
  mode_ = new QComboBox;
  mode_->setObjectName("compose_mode");
  for (MergeMode m : {MergeMode::LoraHub, MergeMode::Linear, MergeMode::Cat, MergeMode::Svd})
    mode_->addItem(merge_mode_name(m));
  svd_rank_ = new QSpinBox;
  svd_rank_->setObjectName("compose_svd_rank");
  svd_rank_->setRange(0, 4096);
  svd_rank_->setSpecialValueText(tr("largest member rank"));
  optimizer_ = new QComboBox;
  optimizer_->setObjectName("compose_optimizer");
  for (Optimizer o : {Optimizer::Cobyla, Optimizer::CmaEs}) optimizer_->addItem(optimizer_name(o));
  const SearchOptions defaults;
  shots_ = new QSpinBox;
  shots_->setObjectName("compose_shots");
  shots_->setRange(1, 1000);
  shots_->setValue(kDefaultShots);
  budget_ = new QSpinBox;
  budget_->setObjectName("compose_budget");
  budget_->setRange(1, 100000);
  budget_->setValue(defaults.budget);
  budget_->setToolTip(tr("Objective evaluations, the start point (all weights 0) included"));
  seed_ = new QSpinBox;
  seed_->setObjectName("compose_seed");
  seed_->setRange(0, 1 << 30);
  seed_->setValue(static_cast<int>(defaults.seed));
  seeds_ = new QSpinBox;
  seeds_->setObjectName("compose_seeds");
  seeds_->setRange(1, kMaxSeeds);
  seeds_->setValue(kDefaultSeeds);
  seeds_->setToolTip(tr("Search weights runs the search and the evaluation this many times, each seed with its own "
                        "few-shot and held-out examples, and shows the mean with its 95% interval; 1 searches once "
                        "and Evaluate scores the weights"));

  auto add = [&](int row, int col, const QString& label, QWidget* w) {
    grid->addWidget(new QLabel(label), row, 2 * col);
    grid->addWidget(w, row, 2 * col + 1);
  };
  add(0, 0, tr("Target task"), task_);
  add(0, 1, tr("Mode"), mode_);
  add(0, 2, tr("SVD rank"), svd_rank_);
  add(0, 3, tr("Seeds"), seeds_);
  add(1, 0, tr("Optimizer"), optimizer_);
  add(1, 1, tr("Shots"), shots_);
  add(1, 2, tr("Budget"), budget_);
  add(1, 3, tr("Seed"), seed_);

  connect(task_, &QComboBox::currentIndexChanged, this, &ComposeView::drop_results);
  connect(shots_, &QSpinBox::valueChanged, this, &ComposeView::drop_results);
  connect(svd_rank_, &QSpinBox::valueChanged, this, &ComposeView::drop_results);
  connect(mode_, &QComboBox::currentIndexChanged, this, &ComposeView::on_mode_changed);
  connect(optimizer_, &QComboBox::currentIndexChanged, this, &ComposeView::mark_dirty);
  for (QSpinBox* s : {budget_, seed_, seeds_}) connect(s, &QSpinBox::valueChanged, this, &ComposeView::mark_dirty);
  on_mode_changed();
  return box;
}

QWidget* ComposeView::build_buttons() {
  // One row: the jobs on this composition, the composition as a file, and
  // the hub demo at the end.
  auto* box = new QWidget;
  auto* row = new QHBoxLayout(box);
  row->setContentsMargins(0, 0, 0, 0);
  auto button = [&](const QString& text, const char* name) {
    auto* b = new QPushButton(text);
    b->setObjectName(name);
    row->addWidget(b);
    return b;
  };
  search_ = button(tr("Search weights"), "compose_search");
  cancel_ = button(tr("Cancel"), "compose_cancel");
  evaluate_ = button(tr("Evaluate"), "compose_evaluate");
  row->addSpacing(16);
  new_ = button(tr("New"), "compose_new");
  open_ = button(tr("Open..."), "compose_open");
  save_ = button(tr("Save..."), "compose_save");
  export_ = button(tr("Export..."), "compose_export");
  add_to_library_ = new QCheckBox(tr("add to library"));
  add_to_library_->setObjectName("compose_add_to_library");
  add_to_library_->setToolTip(tr("Also keep the merged adapter in the adapter library"));
  row->addWidget(add_to_library_);
  row->addStretch(1);
  hub_ = button(tr("Run hub demo"), "compose_hub");
  hub_->setToolTip(tr("Trains one tiny adapter per built-in task (reusing those already in the library) and "
                      "composes them for the held-out task %1")
                       .arg(qstr(hub_preset_.target)));

  connect(search_, &QPushButton::clicked, this, &ComposeView::start_search);
  connect(cancel_, &QPushButton::clicked, this, [this] {
    worker_->cancel();
    show_status(tr("Stopping after the current evaluation..."));
  });
  connect(evaluate_, &QPushButton::clicked, this, &ComposeView::start_evaluation);
  connect(new_, &QPushButton::clicked, this, &ComposeView::clear_composition);
  connect(hub_, &QPushButton::clicked, this, &ComposeView::start_hub_demo);
  connect(save_, &QPushButton::clicked, this, [this] {
    const QString suggestion =
        name_.isEmpty() ? QString("%1-%2").arg(task_->currentText(), mode_->currentText()) : name_;
    bool ok = false;
    const QString name =
        QInputDialog::getText(this, tr("Save composition"), tr("Name:"), QLineEdit::Normal, suggestion, &ok);
    if (ok) save_as(name.trimmed());
  });
  connect(open_, &QPushButton::clicked, this, [this] {
    std::vector<CompositionRow> rows;
    try {
      rows = Store(db_).list_compositions();
    } catch (const std::exception& e) {
      return show_status(QString::fromUtf8(e.what()), true);
    }
    if (rows.empty()) return show_status(tr("No composition is stored yet."));
    QStringList items;
    for (const CompositionRow& r : rows)
      items << tr("%1  (%2, %3 members, task %4, %5)")
                   .arg(qstr(r.name), qstr(r.mode))
                   .arg(r.members)
                   .arg(qstr(r.target_task), qstr(r.created));
    bool ok = false;
    const QString item = QInputDialog::getItem(this, tr("Open composition"), tr("Composition:"), items, 0, false, &ok);
    if (ok) open_composition(rows[static_cast<std::size_t>(items.indexOf(item))].id);
  });
  connect(export_, &QPushButton::clicked, this, [this] {
    const QString dir = choose_export_dir_();
    if (!dir.isEmpty()) export_to(dir, add_to_library_->isChecked());
  });
  return box;
}

SessionOptions ComposeView::session_options() const {
  SessionOptions o;
  o.task = task_->currentText().toStdString();
  o.mode = parse_merge_mode(mode_->currentText().toStdString());
  o.svd_rank = o.mode == MergeMode::Svd ? svd_rank_->value() : 0;
  o.shots = shots_->value();
  return o;
}

SearchOptions ComposeView::search_options() const {
  SearchOptions o;
  o.optimizer = parse_optimizer(optimizer_->currentText().toStdString());
  o.budget = budget_->value();
  o.seed = static_cast<std::uint64_t>(seed_->value());
  return o;
}

std::vector<Member> ComposeView::member_list() const {
  std::vector<Member> m;
  for (const Entry& e : members_) m.push_back(e.member);
  return m;
}

std::vector<double> ComposeView::weights() const {
  std::vector<double> w;
  for (int i = 0; i < canvas_->size(); ++i) w.push_back(canvas_->weight(i));
  return w;
}

bool ComposeView::busy() const { return worker_->busy(); }

void ComposeView::show_status(const QString& text, bool error) {
  status_->setStyleSheet(error ? "color: #d62728" : "");
  status_->setText(text);
}

void ComposeView::log(const QString& line) { log_->appendPlainText(line); }

void ComposeView::set_busy(bool busy, bool cancellable) {
  for (QWidget* w : std::initializer_list<QWidget*>{search_, evaluate_, new_, open_, save_, export_, hub_, library_,
                                                    canvas_, task_, mode_, optimizer_, shots_, budget_, seed_,
                                                    seeds_})
    w->setEnabled(!busy);
  cancel_->setEnabled(busy && cancellable);
  svd_rank_->setEnabled(!busy && mode_->currentText() == merge_mode_name(MergeMode::Svd));
}

bool ComposeView::add_adapter(std::int64_t adapter_id, QPointF pos) {
  if (busy()) {
    show_status(tr("Wait for the running job to finish before changing the members."), true);
    return false;
  }
  for (const Entry& e : members_)
    if (e.adapter_id == adapter_id) {
      show_status(tr("\"%1\" is already on the canvas.").arg(qstr(e.member.name)), true);
      return false;
    }
  Entry entry;
  entry.adapter_id = adapter_id;
  try {
    Store store(db_);
    for (const AdapterRow& row : store.list_adapters())
      if (row.id == adapter_id) {
        entry.member.name = row.name;
        entry.subtitle = subtitle_of(row);
      }
    if (entry.member.name.empty()) throw StoreError("adapter id " + std::to_string(adapter_id) + " is not in the library");
    entry.member.state = store.load_adapter(adapter_id);
    std::vector<Member> candidates = member_list();
    candidates.push_back(entry.member);
    check_members(candidates, session_options().mode);
  } catch (const IncompatibleMemberError& e) {
    show_status(tr("Refused: %1").arg(QString::fromUtf8(e.what())), true);
    return false;
  } catch (const std::exception& e) {
    show_status(QString::fromUtf8(e.what()), true);
    return false;
  }
  show_status(tr("Added \"%1\" at weight 0 (where the search starts): set its weight or search.")
                  .arg(qstr(entry.member.name)));
  add_entry(std::move(entry), 0, pos);
  drop_results();
  return true;
}

void ComposeView::add_entry(Entry entry, double weight, QPointF pos) {
  canvas_->add_node(qstr(entry.member.name), entry.subtitle, weight, pos);
  members_.push_back(std::move(entry));
}

void ComposeView::remove_member(int i) {
  if (busy() || i < 0 || i >= members()) return;
  show_status(tr("Removed \"%1\".").arg(qstr(members_[static_cast<std::size_t>(i)].member.name)));
  members_.erase(members_.begin() + i);
  canvas_->remove_node(i);
  drop_results();
}

void ComposeView::drop_results() {
  canvas_->set_composition_label(tr("composition · %1").arg(mode_->currentText()), tr("not searched yet"));
  trace_.clear();
  trace_optimizer_.clear();
  plot_->clear();
  evaluation_.reset();
  show_evaluation();
  mark_dirty();
}

void ComposeView::on_mode_changed() {
  const MergeMode mode = parse_merge_mode(mode_->currentText().toStdString());
  if (!members_.empty()) {
    try {
      check_members(member_list(), mode);
    } catch (const IncompatibleMemberError& e) {
      const QSignalBlocker block(mode_);
      mode_->setCurrentIndex(mode_index_);
      show_status(tr("These members cannot be merged in %1 mode: %2").arg(merge_mode_name(mode), e.what()), true);
      return;
    }
  }
  mode_index_ = mode_->currentIndex();
  svd_rank_->setEnabled(mode == MergeMode::Svd);
  drop_results();
}

bool ComposeView::start_search() {
  if (busy()) return false;
  if (members_.empty()) {
    show_status(tr("Drop adapters on the canvas first."), true);
    return false;
  }
  drop_results();
  if (!worker_->search(member_list(), session_options(), search_options(), seeds_->value())) return false;
  trace_optimizer_ = optimizer_->currentText();
  set_busy(true, true);
  show_status(tr("Searching %1 weights with %2 (%3 evaluations)%4...")
                  .arg(members())
                  .arg(optimizer_->currentText())
                  .arg(budget_->value())
                  .arg(seeds_->value() > 1 ? tr(" over %1 seeds, each then evaluated").arg(seeds_->value()) : QString()));
  return true;
}

void ComposeView::on_trial(const Trial& t) {
  trace_.push_back(t);
  plot_->add_point(t.iteration + 1, t.objective);
  // During the hub demo the canvas is empty until the result opens.
  if (static_cast<int>(t.weights.size()) == canvas_->size())
    for (int i = 0; i < canvas_->size(); ++i) canvas_->set_weight(i, t.weights[static_cast<std::size_t>(i)]);
  show_status(tr("Evaluation %1/%2: objective %3").arg(t.iteration + 1).arg(budget_->value()).arg(number(t.objective)));
}

void ComposeView::on_searched(const SearchResult& r) {
  if (r.trace.empty()) {  // cancelled while the session was still loading
    show_status(tr("Search cancelled before the first evaluation; the weights are unchanged."));
    return;
  }
  for (int i = 0; i < canvas_->size(); ++i) canvas_->set_weight(i, r.best_weights[static_cast<std::size_t>(i)]);
  mark_dirty();
  show_status(tr("Best few-shot objective %1 after %2 evaluations (%3 at w = 0); %4 %5. Evaluate to score it on "
                 "held-out examples.")
                  .arg(number(r.best_objective))
                  .arg(r.trace.size())
                  .arg(number(r.trace.front().objective))
                  .arg(optimizer_->currentText(), QString::fromStdString(r.stop_reason)));
  canvas_->set_composition_label(tr("composition · %1").arg(mode_->currentText()),
                                 tr("best few-shot objective %1").arg(number(r.best_objective)));
}

bool ComposeView::start_evaluation() {
  if (members_.empty()) {
    show_status(tr("Drop adapters on the canvas first."), true);
    return false;
  }
  if (!worker_->evaluate(member_list(), session_options(), weights())) return false;
  set_busy(true);
  show_status(tr("Evaluating zero-shot, each member and the composition..."));
  return true;
}

void ComposeView::show_evaluation() {
  scores_->setRowCount(0);
  summary_->clear();
  plots_->setTabVisible(1, evaluation_ && !evaluation_->seeds.empty());
  if (!evaluation_) return;
  const Evaluation& e = *evaluation_;
  const std::vector<RowIntervals> spread = seed_intervals(e);
  scores_->setRowCount(static_cast<int>(e.rows.size()));
  for (int r = 0; r < scores_->rowCount(); ++r) {
    const ScoreRow& row = e.rows[static_cast<std::size_t>(r)];
    const RowIntervals& i = spread[static_cast<std::size_t>(r)];
    // Over several seeds each cell is the mean ± its 95% half-width.
    const QStringList cells =
        e.seeds.empty() ? QStringList{qstr(row.label), number(row.few_shot.loss), number(row.heldout.loss),
                                      percent(row.heldout.accuracy)}
                        : QStringList{qstr(row.label), qstr(interval_text(i.few_shot_loss, 1, 4)),
                                      qstr(interval_text(i.heldout_loss, 1, 4)),
                                      qstr(interval_text(i.accuracy, 100, 1, false, "%"))};
    for (int c = 0; c < cells.size(); ++c) scores_->setItem(r, c, new QTableWidgetItem(cells[c]));
    if (row.kind == ScoreRow::Kind::Member)
      scores_->item(r, 0)->setToolTip(tr("this member on its own (weight 1), not at its weight in the composition"));
  }
  canvas_->set_composition_label(tr("composition · %1").arg(mode_->currentText()),
                                 tr("held-out %1, exact match %2")
                                     .arg(number(e.composition().heldout.loss), percent(e.composition().heldout.accuracy)));
  QStringList lines;
  try {
    if (!e.seeds.empty()) lines << tr("First seed (the weights on the canvas):");
    for (const std::string& line : evaluation_summary(e)) lines << qstr(line);
    for (const std::string& line : seed_summary(e)) lines << qstr(line);
  } catch (const std::exception& ex) {  // an evaluation without member rows
    lines << QString::fromUtf8(ex.what());
  }
  summary_->setText(lines.join('\n'));
  if (e.seeds.empty()) return;
  // Held-out loss: exact match is often 0 for every row at small scale, and
  // its intervals are in the table.
  PlotSpec plot{"", tr("Held-out loss over %1 seeds (mean, 95% CI)").arg(e.seeds.size()).toStdString(),
                "held-out loss", {}, {{"held-out loss", {}, {}}}, false};
  for (const RowIntervals& i : spread) {
    plot.categories.push_back(i.label);
    plot.series[0].values.push_back(i.heldout_loss.mean);
    plot.series[0].errors.push_back(i.heldout_loss.has_spread() ? i.heldout_loss.half_width() : NAN);
  }
  draw_plot(intervals_, plot);
  intervals_->replot();
  plots_->setCurrentIndex(1);
}

QString ComposeView::canvas_settings_json() const {
  // What the composition row has no column for, so that Open restores the controls.
  const QJsonObject o{{"shots", shots_->value()},
                      {"svd_rank", svd_rank_->value()},
                      {"optimizer", optimizer_->currentText()},
                      {"budget", budget_->value()},
                      {"seed", seed_->value()},
                      {"seeds", seeds_->value()}};
  return QString::fromUtf8(QJsonDocument(o).toJson(QJsonDocument::Compact));
}

bool ComposeView::save_as(const QString& name) {
  if (name.isEmpty()) {
    show_status(tr("A composition needs a name."), true);
    return false;
  }
  if (members_.empty()) {
    show_status(tr("Nothing to save: the canvas has no members."), true);
    return false;
  }
  try {
    Store store(db_);
    Composition c;
    c.id = name == name_ ? composition_id_ : 0;
    for (const CompositionRow& row : store.list_compositions())
      if (qstr(row.name) == name && row.id != c.id) {
        show_status(tr("A composition named \"%1\" already exists; choose another name.").arg(name), true);
        return false;
      }
    c.name = name.toStdString();
    c.mode = mode_->currentText().toStdString();
    c.optimizer = trace_.empty() ? "none" : trace_optimizer_.toStdString();
    c.base_fingerprint = members_.front().member.state.base_fingerprint;
    c.target_task = task_->currentText().toStdString();
    if (evaluation_) c.scores_json = evaluation_to_json(*evaluation_);
    c.canvas_json = canvas_settings_json().toStdString();
    for (int i = 0; i < members(); ++i) {
      const QPointF p = canvas_->position(i);
      c.members.push_back({members_[static_cast<std::size_t>(i)].adapter_id, canvas_->weight(i), p.x(), p.y()});
    }
    for (const Trial& t : trace_) c.trials.push_back({t.iteration, t.weights, t.objective});
    composition_id_ = store.save_composition(c);
  } catch (const std::exception& e) {
    show_status(QString::fromUtf8(e.what()), true);
    return false;
  }
  name_ = name;
  dirty_ = false;
  show_status(tr("Saved composition \"%1\".").arg(name));
  return true;
}

bool ComposeView::confirm_discard() {
  if (!dirty_ || members_.empty()) return true;
  return QMessageBox::question(this, tr("Unsaved composition"),
                               tr("The composition on the canvas has unsaved changes. Discard them?"),
                               QMessageBox::Discard | QMessageBox::Cancel,
                               QMessageBox::Cancel) == QMessageBox::Discard;
}

bool ComposeView::clear_composition() {
  if (busy() || !confirm_discard()) return false;
  members_.clear();
  canvas_->clear_nodes();
  drop_results();
  composition_id_ = 0;
  name_.clear();
  dirty_ = false;
  show_status(tr("New composition: drag adapters from the library onto the canvas."));
  return true;
}

bool ComposeView::open_composition(std::int64_t composition_id) {
  if (busy() || !confirm_discard()) return false;
  // Everything is read and checked before the canvas changes.
  Composition c;
  std::vector<Entry> entries;
  std::optional<Evaluation> evaluation;
  std::vector<std::string> skipped;
  try {
    Store store(db_);
    c = store.load_composition(composition_id);
    std::vector<Member> loaded = load_members(store, c);
    std::vector<std::int64_t> ids;
    for (const CompositionMember& m : c.members) ids.push_back(m.adapter_id);
    skipped = drop_non_finite_members(loaded, ids);
    // The weights, positions, trace and scores were of all members: keep only the members' own.
    if (!skipped.empty()) {
      std::erase_if(c.members, [&](const CompositionMember& m) {
        return std::find(ids.begin(), ids.end(), m.adapter_id) == ids.end();
      });
      c.trials.clear();
      c.scores_json.clear();
    }
    std::vector<AdapterRow> rows = store.list_adapters();
    for (std::size_t i = 0; i < loaded.size(); ++i) {
      Entry e{c.members[i].adapter_id, std::move(loaded[i]), {}};
      for (const AdapterRow& row : rows)
        if (row.id == e.adapter_id) e.subtitle = subtitle_of(row);
      entries.push_back(std::move(e));
    }
    const std::string source = "composition \"" + c.name + "\"";
    if (!c.scores_json.empty() && c.scores_json != "{}") evaluation = evaluation_from_json(c.scores_json, source);
    parse_merge_mode(c.mode);
    if (task_->findText(qstr(c.target_task)) < 0)
      throw ConfigError("compose.task", source + " targets task \"" + c.target_task + "\", which is not built in");
  } catch (const std::exception& e) {
    show_status(QString::fromUtf8(e.what()), true);
    return false;
  }

  members_.clear();
  canvas_->clear_nodes();
  const QJsonObject settings = QJsonDocument::fromJson(QByteArray::fromStdString(c.canvas_json)).object();
  const SearchOptions defaults;
  task_->setCurrentText(qstr(c.target_task));
  mode_->setCurrentText(qstr(c.mode));
  svd_rank_->setValue(settings.value("svd_rank").toInt(0));
  shots_->setValue(settings.value("shots").toInt(kDefaultShots));
  budget_->setValue(settings.value("budget").toInt(defaults.budget));
  seed_->setValue(settings.value("seed").toInt(static_cast<int>(defaults.seed)));
  seeds_->setValue(settings.value("seeds").toInt(evaluation && !evaluation->seeds.empty()
                                                     ? static_cast<int>(evaluation->seeds.size())
                                                     : kDefaultSeeds));
  optimizer_->setCurrentText(
      settings.value("optimizer").toString(c.optimizer == "none" ? optimizer_name(defaults.optimizer) : qstr(c.optimizer)));
  for (std::size_t i = 0; i < entries.size(); ++i)
    add_entry(std::move(entries[i]), c.members[i].weight, QPointF(c.members[i].x, c.members[i].y));
  drop_results();
  for (const CompositionTrial& t : c.trials) on_trial({static_cast<int>(t.iteration), t.weights, t.objective});
  for (int i = 0; i < members(); ++i) canvas_->set_weight(i, c.members[static_cast<std::size_t>(i)].weight);
  trace_optimizer_ = c.optimizer == "none" ? QString() : qstr(c.optimizer);
  evaluation_ = std::move(evaluation);
  show_evaluation();
  composition_id_ = c.id;
  name_ = qstr(c.name);
  dirty_ = false;
  canvas_->show_all();
  QString opened = tr("Opened composition \"%1\" (%2 members, %3 evaluations in its trace).")
                       .arg(name_)
                       .arg(members())
                       .arg(trace_.size());
  for (const std::string& line : skipped) opened += " " + qstr(line) + ".";
  if (!skipped.empty()) opened += tr(" Its trace and scores were of the full set and are not shown.");
  show_status(opened, !skipped.empty());
  return true;
}

bool ComposeView::export_to(const QString& dir, bool add_to_library) {
  if (members_.empty()) {
    show_status(tr("Nothing to export: the canvas has no members."), true);
    return false;
  }
  const std::filesystem::path out = dir.toStdString();
  if (std::filesystem::exists(out / "adapter_config.json") &&
      QMessageBox::question(this, tr("Export"), tr("%1 already holds an adapter. Replace it?").arg(dir)) !=
          QMessageBox::Yes)
    return false;
  std::string library_name;
  if (add_to_library) {
    const QString stem = (name_.isEmpty() ? QString("%1-%2").arg(task_->currentText(), mode_->currentText()) : name_) +
                         "-merged";
    try {
      Store store(db_);
      library_name = stem.toStdString();
      for (int n = 2; store.find_adapter(library_name); ++n) library_name = (stem + "-" + QString::number(n)).toStdString();
    } catch (const std::exception& e) {
      show_status(QString::fromUtf8(e.what()), true);
      return false;
    }
  }
  // The scores go with it only if they were measured at these weights.
  const std::vector<double> w = weights();
  Score heldout;
  if (evaluation_ && evaluation_->composition().weights == w) heldout = evaluation_->composition().heldout;
  if (!worker_->export_merged(member_list(), session_options(), w, out, library_name, heldout)) return false;
  set_busy(true);
  show_status(tr("Merging and writing %1...").arg(dir));
  return true;
}

bool ComposeView::start_hub_demo() {
  if (busy() || !clear_composition()) return false;
  HubPreset preset = hub_preset_;
  preset.search = search_options();
  preset.seeds = seeds_->value();
  if (!worker_->run_hub(preset)) return false;
  set_busy(true, true);
  plots_->setCurrentWidget(log_);  // what the demo trains and reuses, as it goes
  log(tr("hub demo: held-out task %1. Why: %2.").arg(qstr(preset.target), qstr(preset.why)));
  show_status(tr("Running the hub demo: training the member adapters that are not in the library yet, then composing "
                 "them for %1...")
                  .arg(qstr(preset.target)));
  return true;
}

}  // namespace lwb::ui
