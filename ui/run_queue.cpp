#include "ui/run_queue.h"

#include <algorithm>

#include "core/train/compare.h"

namespace lwb::ui {

QString queue_state_name(QueueItem::State s) {
  switch (s) {
    case QueueItem::State::Waiting: return QObject::tr("waiting");
    case QueueItem::State::Running: return QObject::tr("running");
    case QueueItem::State::Finished: return QObject::tr("finished");
    case QueueItem::State::Stopped: return QObject::tr("stopped");
    default: return QObject::tr("failed");
  }
}

std::vector<ExperimentConfig> sweep_configs(const ExperimentConfig& base, const std::vector<int>& ranks,
                                            const std::vector<double>& alphas, const QStringList& methods,
                                            QStringList* refused) {
  const std::vector<int> rs = ranks.empty() ? std::vector<int>{base.adapter.r} : ranks;
  const std::vector<double> as = alphas.empty() ? std::vector<double>{base.adapter.alpha} : alphas;
  const QStringList ms = methods.isEmpty() ? QStringList{QString::fromStdString(base.get("adapter.method"))} : methods;
  std::vector<ExperimentConfig> out;
  for (const QString& m : ms)
    for (int r : rs)
      for (double a : as) {
        ExperimentConfig c = base;
        try {
          c.set("adapter.method", m.toStdString());
          c.set("adapter.r", std::to_string(r));
          c.set("adapter.alpha", QString::number(a, 'g', 10).toStdString());
          c.name = base.name + "-" + m.toStdString() + "-r" + std::to_string(r) + "-a" +
                   QString::number(a, 'g', 10).toStdString();
          c.validate();
          out.push_back(std::move(c));
        } catch (const std::exception& e) {
          if (refused) *refused << QString("%1 r=%2 alpha=%3: %4").arg(m).arg(r).arg(a).arg(QString::fromUtf8(e.what()));
        }
      }
  return out;
}

QueueItem RunQueue::make(const ExperimentConfig& config, const QString& label, const QString& resume_state,
                         qint64 parent_run) {
  QueueItem i;
  i.key = next_key_++;
  i.label = label.isEmpty() ? QString::fromStdString(config.name) : label;
  i.config = config;
  i.resume_state = resume_state;
  i.parent_run = parent_run;
  return i;
}

qint64 RunQueue::add(const ExperimentConfig& config, const QString& label, const QString& resume_state,
                     qint64 parent_run) {
  items_.push_back(make(config, label, resume_state, parent_run));
  emit changed();
  return items_.back().key;
}

qint64 RunQueue::insert_before(qint64 before, const ExperimentConfig& config, const QString& label,
                               const QString& resume_state, qint64 parent_run) {
  const auto at = std::find_if(items_.begin(), items_.end(), [&](const QueueItem& x) {
    return before ? x.key == before : x.state == QueueItem::State::Waiting;
  });
  const qint64 key = items_.insert(at, make(config, label, resume_state, parent_run))->key;
  emit changed();
  return key;
}

int RunQueue::add_comparison(const std::string& preset) {
  const ComparisonPreset p = comparison_preset(preset);
  for (const ComparisonEntry& e : p.entries)
    add(e.config, QString("%1: %2").arg(QString::fromStdString(p.name), QString::fromStdString(e.label)));
  return static_cast<int>(p.entries.size());
}

QueueItem* RunQueue::find(qint64 key) {
  const auto it = std::find_if(items_.begin(), items_.end(), [&](const QueueItem& x) { return x.key == key; });
  return it == items_.end() ? nullptr : &*it;
}

const QueueItem* RunQueue::item(qint64 key) const { return const_cast<RunQueue*>(this)->find(key); }

void RunQueue::remove(qint64 key) {
  const auto n = std::erase_if(items_, [&](const QueueItem& x) { return x.key == key && x.state != QueueItem::State::Running; });
  if (n) emit changed();
}

void RunQueue::move(qint64 key, int delta) {
  const auto it = std::find_if(items_.begin(), items_.end(), [&](const QueueItem& x) { return x.key == key; });
  if (it == items_.end()) return;
  const auto from = it - items_.begin();
  const auto to = std::clamp<std::ptrdiff_t>(from + delta, 0, static_cast<std::ptrdiff_t>(items_.size()) - 1);
  if (to == from) return;
  QueueItem moved = std::move(*it);
  items_.erase(it);
  items_.insert(items_.begin() + to, std::move(moved));
  emit changed();
}

void RunQueue::clear_done() {
  const auto n = std::erase_if(items_, [](const QueueItem& x) {
    return x.state != QueueItem::State::Waiting && x.state != QueueItem::State::Running;
  });
  if (n) emit changed();
}

const QueueItem* RunQueue::next_waiting() const {
  const auto it = std::find_if(items_.begin(), items_.end(),
                               [](const QueueItem& x) { return x.state == QueueItem::State::Waiting; });
  return it == items_.end() ? nullptr : &*it;
}

int RunQueue::waiting() const {
  return static_cast<int>(std::count_if(items_.begin(), items_.end(),
                                        [](const QueueItem& x) { return x.state == QueueItem::State::Waiting; }));
}

void RunQueue::set_running(qint64 key, qint64 run_id) {
  if (QueueItem* i = find(key)) {
    i->state = QueueItem::State::Running;
    i->run_id = run_id;
    i->outcome.clear();
    emit changed();
  }
}

void RunQueue::set_run_id(qint64 key, qint64 run_id) {
  if (QueueItem* i = find(key)) {
    i->run_id = run_id;
    emit changed();
  }
}

void RunQueue::set_ended(qint64 key, QueueItem::State state, const QString& outcome) {
  if (QueueItem* i = find(key)) {
    i->state = state;
    i->outcome = outcome;
    emit changed();
  }
}

}  // namespace lwb::ui
