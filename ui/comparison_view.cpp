#include "ui/comparison_view.h"

#include <qcustomplot.h>

#include <QCheckBox>
#include <QComboBox>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QMessageBox>
#include <QProgressBar>
#include <QPushButton>
#include <QSpinBox>
#include <QSplitter>
#include <QTableWidget>
#include <QVBoxLayout>
#include <cmath>

#include "core/common/errors.h"
#include "core/store/store.h"
#include "core/source/model_source.h"
#include "core/study/stored_comparison.h"
#include "core/train/compare.h"
#include "ui/comparison_worker.h"
#include "ui/report_plot.h"

namespace lwb::ui {

namespace {

QString qs(const std::string& s) { return QString::fromStdString(s); }

QString interval_cell(const Interval& i, double scale, int decimals) { return qs(interval_text(i, scale, decimals)); }

}  // namespace

void ReportBrowser::show_report(const QString& markdown, std::map<QString, QImage> images) {
  images_ = std::move(images);
  setMarkdown(markdown);
}

QVariant ReportBrowser::loadResource(int type, const QUrl& name) {
  if (type == QTextDocument::ImageResource)
    if (const auto it = images_.find(name.toString()); it != images_.end()) return it->second;
  return QTextBrowser::loadResource(type, name);
}

ComparisonView::ComparisonView(std::filesystem::path db, Kind kind, QWidget* parent)
    : QWidget(parent), db_(std::move(db)), kind_(kind), worker_(new ComparisonWorker(db_, this)) {
  const bool compare = kind_ == Kind::Compare;
  auto* form = new QFormLayout;
  what_ = new QComboBox;
  what_->setObjectName("what");
  if (compare)
    for (const std::string& name : comparison_preset_names()) what_->addItem(qs(name));
  else
    for (const StudyInfo& s : study_list()) what_->addItem(qs(s.name));
  form->addRow(compare ? tr("Preset") : tr("Study"), what_);
  if (!compare) {
    base_ = new QComboBox;
    base_->setToolTip(tr("SmolLM2-135M-Instruct appears here once it is fetched (Setup's Fetch, or "
                         "lora-workbench fetch smollm2)"));
    form->addRow(tr("Base"), base_);
  }
  seeds_ = new QSpinBox;
  seeds_->setRange(1, kMaxComparisonSeeds);
  seeds_->setValue(ComparisonOptions{}.seeds);
  seeds_->setToolTip(tr("Training seeds per arm: the report gives each metric's mean with its 95% confidence "
                        "interval and pairs the arms by seed"));
  form->addRow(tr("Seeds"), seeds_);
  pick_lr_ = new QCheckBox(tr("Pick each arm's learning rate first"));
  pick_lr_->setToolTip(tr("Each arm's rate times the grid, scored on a validation split that is neither training "
                          "data nor the test split; the seeds then train at the best rate"));
  form->addRow(QString(), pick_lr_);
  if (compare) {
    grid_ = new QLineEdit("0.333, 1, 3");
    grid_->setToolTip(tr("Factors of each arm's own learning rate (2 to 6 values)"));
    grid_->setEnabled(false);
    connect(pick_lr_, &QCheckBox::toggled, grid_, &QWidget::setEnabled);
    form->addRow(tr("Grid (× rate)"), grid_);
  }
  description_ = new QLabel;
  description_->setWordWrap(true);
  description_->setTextFormat(Qt::PlainText);
  run_ = new QPushButton(compare ? tr("Run comparison") : tr("Run study"));
  stop_ = new QPushButton(tr("Stop"));
  stop_->setEnabled(false);
  auto* buttons = new QHBoxLayout;
  buttons->addWidget(run_);
  buttons->addWidget(stop_);
  progress_ = new QProgressBar;
  progress_->setFormat("%v / %m");
  status_ = new QLabel;
  status_->setWordWrap(true);
  history_ = new QListWidget;
  history_->setObjectName("history");
  auto* remove = new QPushButton(tr("Delete"));
  remove->setToolTip(tr("Deletes the stored comparison with its rows and report; its runs stay in the history"));

  auto* left = new QWidget;
  auto* left_layout = new QVBoxLayout(left);
  left_layout->addLayout(form);
  left_layout->addWidget(description_);
  left_layout->addLayout(buttons);
  left_layout->addWidget(progress_);
  left_layout->addWidget(status_);
  left_layout->addWidget(new QLabel(compare ? tr("Stored comparisons") : tr("Stored studies")));
  left_layout->addWidget(history_, 1);
  left_layout->addWidget(remove);
  left->setMaximumWidth(380);

  report_ = new ReportBrowser;
  report_->setObjectName("report");
  report_->setOpenLinks(false);
  // Until one is chosen: what will show here, rather than empty axes.
  report_->setPlaceholderText(
      compare ? tr("No comparison chosen. Run one (left), or choose a stored one: each arm is trained over the seeds, "
                   "the table gives its means with 95% intervals, the plot their error bars, and this report the "
                   "paired differences with their verdicts and what the numbers depend on.")
              : tr("No study chosen. Run one (left), or choose a stored one: its report, with its plots, shows "
                   "here, stating what held and what did not at this scale."));
  auto* right = new QSplitter(Qt::Vertical);
  if (compare) {
    table_ = new QTableWidget(0, 9);
    table_->setHorizontalHeaderLabels({tr("arm"), tr("method"), tr("lr"), tr("n"), tr("exact match %"),
                                       tr("95% CI"), tr("eval loss"), tr("tokens/s"), tr("peak MiB")});
    table_->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
    table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
    table_->verticalHeader()->setVisible(false);
    plot_ = new QCustomPlot;
    plot_->setMinimumHeight(220);
    plot_->setVisible(false);  // shown with a comparison
    right->addWidget(table_);
    right->addWidget(plot_);
  }
  right->addWidget(report_);
  if (compare) {
    right->setStretchFactor(0, 1);
    right->setStretchFactor(1, 2);
    right->setStretchFactor(2, 2);
  }
  auto* layout = new QHBoxLayout(this);
  layout->addWidget(left);
  layout->addWidget(right, 1);

  connect(what_, &QComboBox::currentIndexChanged, this, &ComparisonView::describe);
  connect(run_, &QPushButton::clicked, this, &ComparisonView::start);
  connect(stop_, &QPushButton::clicked, this, [this] {
    worker_->cancel();
    status_->setText(tr("stopping after the current step..."));
  });
  connect(remove, &QPushButton::clicked, this, &ComparisonView::delete_selected);
  connect(history_, &QListWidget::currentItemChanged, this, [this](QListWidgetItem* item) {
    if (item) show_stored(item->data(Qt::UserRole).toLongLong());
  });
  connect(worker_, &ComparisonWorker::run_started, this, [this](const QString& label, int index, int total) {
    progress_->setRange(0, total);
    progress_->setValue(index - 1);
    status_->setText(tr("training %1").arg(label));
  });
  connect(worker_, &ComparisonWorker::notice, this, [this](const QString& line) { status_->setText(line); });
  connect(worker_, &ComparisonWorker::compared, this, [this](qint64 id) {
    refresh();
    show_stored(id);
    emit finished(id);
  });
  connect(worker_, &ComparisonWorker::studied, this, [this](std::shared_ptr<StudyResult> result) {
    try {
      // The plots are widgets: drawn here, on the GUI thread, then stored with the report.
      const std::vector<ComparisonFile> files = render_study_plots(result->plots);
      Store store(db_);
      finish_study(store, *result, files);
      refresh();
      show_stored(result->comparison_id);
      emit finished(result->comparison_id);
    } catch (const std::exception& e) {
      status_->setText(tr("error: %1").arg(QString::fromUtf8(e.what())));
      emit finished(0);
    }
  });
  connect(worker_, &ComparisonWorker::failed, this, [this](const QString& m) {
    status_->setText(tr("error: %1").arg(m));
    refresh();
    emit finished(0);
  });
  connect(worker_, &ComparisonWorker::done, this, [this] { set_busy(false); });
  describe();
  refresh();
}

ComparisonView::~ComparisonView() = default;

bool ComparisonView::busy() const { return worker_->busy(); }

void ComparisonView::set_busy(bool busy) {
  run_->setEnabled(!busy);
  stop_->setEnabled(busy);
  if (!busy) progress_->setValue(progress_->maximum());
}

void ComparisonView::describe() {
  try {
    if (kind_ == Kind::Compare) {
      description_->setText(qs(comparison_preset(what_->currentText().toStdString()).description));
    } else {
      const StudyInfo& s = study_info(what_->currentText().toStdString());
      description_->setText(tr("%1\n\nClaim: %2\n\nDesign: %3").arg(qs(s.title), qs(s.claim), qs(s.design)));
    }
  } catch (const std::exception& e) {
    description_->setText(QString::fromUtf8(e.what()));
  }
}

bool ComparisonView::start() {
  try {
    bool started = false;
    if (kind_ == Kind::Compare) {
      ComparisonDesign design{comparison_preset(what_->currentText().toStdString()), {}};
      design.options.seeds = seeds_->value();
      design.options.pick_lr = pick_lr_->isChecked();
      if (design.options.pick_lr) {
        design.options.lr_factors.clear();
        for (const QString& f : grid_->text().split(',', Qt::SkipEmptyParts)) {
          bool ok = false;
          const double v = f.trimmed().toDouble(&ok);
          if (!ok) throw ConfigError("compare.lr_grid", "\"" + f.trimmed().toStdString() + "\" is not a number");
          design.options.lr_factors.push_back(v);
        }
      }
      design.options.validate();
      started = worker_->compare(design);
    } else {
      if (base_->count() == 0) throw ConfigError("study.base", "no base is available");
      StudyOptions options;
      options.base = base_->currentText().toStdString();
      options.seeds = seeds_->value();
      options.pick_lr = pick_lr_->isChecked();
      started = worker_->study(what_->currentText().toStdString(), options);
    }
    if (!started) {
      status_->setText(tr("another comparison is running"));
      return false;
    }
    set_busy(true);
    status_->setText(tr("starting..."));
    return true;
  } catch (const std::exception& e) {
    status_->setText(QString::fromUtf8(e.what()));
    return false;
  }
}

void ComparisonView::refresh() {
  if (base_) {  // a base fetched since the last look becomes choosable
    const QString chosen = base_->currentText();
    QSignalBlocker block_base(base_);
    base_->clear();
    for (const std::string& b : study_bases(SourceEnvironment{}.data_folder())) base_->addItem(qs(b));
    if (const int i = base_->findText(chosen); i >= 0) base_->setCurrentIndex(i);
  }
  const qint64 selected = history_->currentItem() ? history_->currentItem()->data(Qt::UserRole).toLongLong() : 0;
  QSignalBlocker block(history_);
  history_->clear();
  try {
    Store store(db_);
    for (const ComparisonRecord& c : store.list_comparisons()) {
      if ((c.kind == "study") != (kind_ == Kind::Study)) continue;
      auto* item = new QListWidgetItem(tr("%1  %2 — %3, %4 runs").arg(c.id).arg(qs(c.name), qs(c.status)).arg(c.runs));
      item->setToolTip(tr("created %1%2").arg(qs(c.created), c.ended.empty() ? QString() : tr(", ended %1").arg(qs(c.ended))));
      item->setData(Qt::UserRole, static_cast<qint64>(c.id));
      history_->addItem(item);
      if (c.id == selected) history_->setCurrentItem(item);
    }
  } catch (const std::exception& e) {
    status_->setText(QString::fromUtf8(e.what()));
  }
}

void ComparisonView::show_stored(qint64 id) {
  try {
    Store store(db_);
    const ComparisonRecord c = store.get_comparison(id);
    const ComparisonSummary s = load_comparison_summary(store, id);
    QString header;
    if (c.status != "finished")
      header = tr("**%1** %2%3\n\n").arg(qs(c.status), c.error.empty() ? QString() : ": ", qs(c.error));
    if (kind_ == Kind::Study && !c.report_markdown.empty()) {
      std::map<QString, QImage> images;
      for (const ComparisonFile& f : store.comparison_files(id))
        images[qs(f.name)] = QImage::fromData(f.bytes.data(), static_cast<int>(f.bytes.size()), "PNG");
      report_->show_report(header + qs(c.report_markdown), std::move(images));
    } else {
      // Computed from the stored rows: a running or stopped one shows what it has.
      report_->show_report(header + qs(comparison_markdown(s)), {});
    }
    if (!table_) return;
    table_->setRowCount(static_cast<int>(s.arms.size()));
    for (int r = 0; r < static_cast<int>(s.arms.size()); ++r) {
      const ArmSummary& a = s.arms[static_cast<std::size_t>(r)];
      const QString ci = a.accuracy.has_spread()
                             ? QString("[%1, %2]").arg(100 * a.accuracy.lo, 0, 'f', 1).arg(100 * a.accuracy.hi, 0, 'f', 1)
                             : QString("-");
      const QStringList cells = {qs(a.label), qs(a.method), QString::number(a.lr, 'g', 3),
                                 QString::number(a.accuracy.n), interval_cell(a.accuracy, 100, 1), ci,
                                 interval_cell(a.eval_loss, 1, 4), interval_cell(a.tokens_per_s, 1, 0),
                                 interval_cell(a.peak_mib, 1, 1)};
      for (int col = 0; col < cells.size(); ++col) table_->setItem(r, col, new QTableWidgetItem(cells[col]));
    }
    draw_plot(plot_, quality_plot(s));
    plot_->setVisible(true);
    plot_->replot();
  } catch (const std::exception& e) {
    status_->setText(QString::fromUtf8(e.what()));
  }
}

void ComparisonView::delete_selected() {
  QListWidgetItem* item = history_->currentItem();
  if (!item) return;
  const qint64 id = item->data(Qt::UserRole).toLongLong();
  if (QMessageBox::question(this, tr("Delete"),
                            tr("Delete stored %1 %2 with its rows and report? Its runs stay in the history.")
                                .arg(kind_ == Kind::Study ? tr("study") : tr("comparison"))
                                .arg(id)) != QMessageBox::Yes)
    return;
  try {
    Store store(db_);
    store.delete_comparison(id);
    report_->clear();
    if (table_) table_->setRowCount(0);
    if (plot_) plot_->setVisible(false);
    refresh();
  } catch (const std::exception& e) {
    status_->setText(QString::fromUtf8(e.what()));
  }
}

}  // namespace lwb::ui
