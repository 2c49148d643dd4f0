#include "ui/queue_view.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDialog>
#include <QDialogButtonBox>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QRegularExpression>
#include <QTableWidget>
#include <QVBoxLayout>

#include "core/train/compare.h"
#include "ui/run_queue.h"

namespace lwb::ui {

namespace {

enum Column { kState, kLabel, kMethod, kRank, kAlpha, kTask, kSteps, kRun, kOutcome, kColumns };

// "4, 8 16" -> {4, 8, 16}; false naming the first bad entry.
template <class T>
bool parse_list(const QString& text, std::vector<T>& out, QString& bad) {
  for (const QString& part : text.split(QRegularExpression("[,\\s]+"), Qt::SkipEmptyParts)) {
    bool ok = false;
    const double v = part.toDouble(&ok);
    if (!ok || !(v > 0)) {
      bad = part;
      return false;
    }
    out.push_back(static_cast<T>(v));
  }
  return true;
}

}  // namespace

QueueView::QueueView(RunQueue* queue, std::function<ExperimentConfig()> form_config, QStringList methods,
                     QWidget* parent)
    : QWidget(parent), queue_(queue), form_config_(std::move(form_config)), methods_(std::move(methods)) {
  table_ = new QTableWidget(0, kColumns);
  table_->setObjectName("queue_table");
  table_->setHorizontalHeaderLabels({tr("state"), tr("experiment"), tr("method"), tr("rank"), tr("alpha"), tr("data"),
                                     tr("steps"), tr("run"), tr("outcome")});
  table_->setSelectionBehavior(QAbstractItemView::SelectRows);
  table_->setSelectionMode(QAbstractItemView::SingleSelection);
  table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  table_->verticalHeader()->setVisible(false);
  table_->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
  table_->horizontalHeader()->setStretchLastSection(true);

  run_ = new QPushButton(tr("Run queue"));
  run_->setObjectName("queue_run");
  run_->setToolTip(tr("Run the waiting experiments one after another"));
  add_ = new QPushButton(tr("Add the Setup experiment"));
  add_->setObjectName("queue_add");
  auto* sweep = new QPushButton(tr("Sweep..."));
  sweep->setObjectName("queue_sweep");
  sweep->setToolTip(tr("Queue the Setup experiment over several ranks, alphas and methods"));
  comparison_ = new QComboBox;
  comparison_->setObjectName("queue_comparison");
  for (const std::string& n : comparison_preset_names()) {
    comparison_->addItem(QString::fromStdString(n));
    comparison_->setItemData(comparison_->count() - 1, QString::fromStdString(comparison_preset(n).description),
                             Qt::ToolTipRole);
  }
  add_comparison_ = new QPushButton(tr("Queue comparison"));
  add_comparison_->setObjectName("queue_add_comparison");
  add_comparison_->setToolTip(tr("Every run of a comparison preset, as `lora-workbench compare` runs them"));
  auto* up = new QPushButton(tr("Up"));
  auto* down = new QPushButton(tr("Down"));
  auto* remove = new QPushButton(tr("Remove"));
  remove->setObjectName("queue_remove");
  auto* clear = new QPushButton(tr("Clear finished"));
  status_ = new QLabel(tr("Runs start one after another; Stop pauses the queue after the run it stops."));
  status_->setObjectName("queue_status");
  status_->setWordWrap(true);

  connect(run_, &QPushButton::clicked, this, [this] { running_ ? emit pause_requested() : emit run_requested(); });
  connect(add_, &QPushButton::clicked, this, [this] {
    const ExperimentConfig c = form_config_();
    try {
      c.validate();
    } catch (const std::exception& e) {
      status_->setText(tr("Not queued: %1").arg(QString::fromUtf8(e.what())));
      return;
    }
    queue_->add(c);
    status_->setText(tr("Queued %1.").arg(QString::fromStdString(c.name)));
  });
  connect(sweep, &QPushButton::clicked, this, &QueueView::ask_sweep);
  connect(add_comparison_, &QPushButton::clicked, this, [this] {
    const int n = queue_->add_comparison(comparison_->currentText().toStdString());
    status_->setText(tr("Queued the %1 runs of %2.").arg(n).arg(comparison_->currentText()));
  });
  connect(up, &QPushButton::clicked, this, [this] { queue_->move(selected_key(), -1); });
  connect(down, &QPushButton::clicked, this, [this] { queue_->move(selected_key(), 1); });
  connect(remove, &QPushButton::clicked, this, [this] { queue_->remove(selected_key()); });
  connect(clear, &QPushButton::clicked, queue_, &RunQueue::clear_done);
  connect(queue_, &RunQueue::changed, this, &QueueView::rebuild);

  auto* adders = new QHBoxLayout;
  adders->addWidget(add_);
  adders->addWidget(sweep);
  adders->addSpacing(16);
  adders->addWidget(comparison_);
  adders->addWidget(add_comparison_);
  adders->addStretch(1);
  auto* order = new QHBoxLayout;
  order->addWidget(run_);
  order->addSpacing(16);
  order->addWidget(up);
  order->addWidget(down);
  order->addWidget(remove);
  order->addWidget(clear);
  order->addStretch(1);
  auto* layout = new QVBoxLayout(this);
  layout->addLayout(adders);
  layout->addWidget(table_, 1);
  layout->addLayout(order);
  layout->addWidget(status_);
  rebuild();
}

void QueueView::set_running(bool running) {
  running_ = running;
  run_->setText(running ? tr("Pause queue") : tr("Run queue"));
  run_->setToolTip(running ? tr("Let the current run finish, then wait") : tr("Run the waiting experiments one after another"));
}

qint64 QueueView::selected_key() const {
  const int r = table_->currentRow();
  return r < 0 ? 0 : table_->item(r, kState)->data(Qt::UserRole).toLongLong();
}

void QueueView::rebuild() {
  const qint64 keep = selected_key();
  const auto& items = queue_->items();
  table_->setRowCount(static_cast<int>(items.size()));
  for (int r = 0; r < static_cast<int>(items.size()); ++r) {
    const QueueItem& i = items[static_cast<std::size_t>(r)];
    const ExperimentConfig& c = i.config;
    const QString data = c.data.kind == "task" ? QString::fromStdString(c.data.task) : QString::fromStdString(c.data.kind);
    const QStringList cells = {queue_state_name(i.state),
                               i.label + (i.resume_state.isEmpty() ? QString() : tr(" (resumes run %1)").arg(i.parent_run)),
                               QString::fromStdString(c.get("adapter.method")),
                               c.adapter.is_adapter() ? QString::number(c.adapter.r) : QString("-"),
                               c.adapter.is_adapter() ? QString::fromStdString(c.get("adapter.alpha")) : QString("-"),
                               data,
                               QString::number(c.train.steps),
                               i.run_id ? QString::number(i.run_id) : QString(),
                               i.outcome};
    for (int col = 0; col < kColumns; ++col) {
      auto* item = new QTableWidgetItem(cells[col]);
      item->setData(Qt::UserRole, i.key);
      if (i.state == QueueItem::State::Running) {
        QFont f = item->font();
        f.setBold(true);
        item->setFont(f);
      }
      table_->setItem(r, col, item);
    }
    if (i.key == keep) table_->setCurrentCell(r, kState);
  }
}

int QueueView::add_sweep(const QString& ranks, const QString& alphas, const QStringList& methods) {
  std::vector<int> rs;
  std::vector<double> as;
  QString bad;
  if (!parse_list(ranks, rs, bad) || !parse_list(alphas, as, bad)) {
    status_->setText(tr("Not queued: \"%1\" is not a positive number (lists read \"4, 8, 16\").").arg(bad));
    return 0;
  }
  QStringList refused;
  const std::vector<ExperimentConfig> configs = sweep_configs(form_config_(), rs, as, methods, &refused);
  for (const ExperimentConfig& c : configs) queue_->add(c);
  status_->setText(tr("Queued %1 experiments of the sweep.").arg(configs.size()) +
                   (refused.isEmpty() ? QString() : tr(" Left out: %1").arg(refused.join("; "))));
  return static_cast<int>(configs.size());
}

void QueueView::ask_sweep() {
  const ExperimentConfig base = form_config_();
  QDialog dialog(this);
  dialog.setWindowTitle(tr("Sweep around %1").arg(QString::fromStdString(base.name)));
  auto* ranks = new QLineEdit(QString::number(base.adapter.r));
  ranks->setObjectName("sweep_ranks");
  ranks->setToolTip(tr("Ranks r, separated by commas: 4, 8, 16"));
  auto* alphas = new QLineEdit(QString::fromStdString(base.get("adapter.alpha")));
  alphas->setObjectName("sweep_alphas");
  alphas->setToolTip(tr("lora_alpha values, separated by commas (the scaling is alpha / r, rsLoRA alpha / sqrt r)"));
  auto* methods = new QWidget;
  auto* methods_row = new QHBoxLayout(methods);
  methods_row->setContentsMargins(0, 0, 0, 0);
  std::vector<QCheckBox*> boxes;
  for (const QString& m : methods_) {
    auto* b = new QCheckBox(m);
    b->setChecked(QString::fromStdString(base.get("adapter.method")) == m);
    methods_row->addWidget(b);
    boxes.push_back(b);
  }
  auto* buttons = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel);
  connect(buttons, &QDialogButtonBox::accepted, &dialog, &QDialog::accept);
  connect(buttons, &QDialogButtonBox::rejected, &dialog, &QDialog::reject);
  auto* form = new QFormLayout(&dialog);
  form->addRow(new QLabel(tr("Every combination is queued as a copy of the Setup experiment.")));
  form->addRow(tr("Ranks"), ranks);
  form->addRow(tr("Alphas"), alphas);
  form->addRow(tr("Methods"), methods);
  form->addRow(buttons);
  if (dialog.exec() != QDialog::Accepted) return;
  QStringList chosen;
  for (QCheckBox* b : boxes)
    if (b->isChecked()) chosen << b->text();
  add_sweep(ranks->text(), alphas->text(), chosen);
}

}  // namespace lwb::ui
